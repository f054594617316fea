"""A local stand-in for the parts of Stripe's API this shop uses, for tests and demos.

The real `stripe` library talks to it when STRIPE_API_BASE points here. It answers Checkout
Session create/retrieve/expire and refunds the way Stripe documents them (form-encoded requests,
JSON answers, errors as {"error": {...}}, a saved answer replayed for a reused Idempotency-Key),
records every request so tests can check exactly what was sent, and can be told to fail.

For a demo it also serves a minimal hosted payment page (`/pay/<session id>`): "Pay" marks the
session paid, sends the signed `checkout.session.completed` webhook to the shop, and returns the
buyer to the success URL, as Stripe would. Refunds send `charge.refunded` the same way.

    python -m tools.stripe_standin --port 12111 \\
        --webhook-url http://127.0.0.1:5000/stripe/webhook --webhook-secret whsec_demo

It is not Stripe: no card is checked, and only what the shop uses is implemented.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, by Stripe's documented scheme (HMAC-SHA256 of
    "<timestamp>.<payload>" with the endpoint secret, hex, as v1)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part, following in itertools.zip_longest(parts, parts[1:]):
            if following is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    headers: dict


@dataclass
class StripeStandIn:
    """The stand-in's state; `serve()` starts it on 127.0.0.1 in a daemon thread."""

    webhook_url: str | None = None
    webhook_secret: str | None = None
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    #: Answer the next N API calls with this HTTP status (500: Stripe's own error).
    fail_status: int = 500
    fail_next: int = 0
    #: Sleep this long before answering, to make the client's timeout fire.
    delay_seconds: float = 0.0
    #: Stripe delivers an event at least once: each one is also sent, at the same moment, to
    #: these URLs (e.g. the shop's other instances), so duplicates race each other.
    replay_urls: list[str] = field(default_factory=list)
    #: Like Stripe, deliver again after an answer that is not 2xx (or none), this many times.
    webhook_retries: int = 0
    webhook_retry_seconds: float = 1.0
    #: (event id, URL, HTTP status or None) of every delivery attempt.
    deliveries: list[tuple[str, str, int | None]] = field(default_factory=list)
    #: Deliveries scheduled or under way (retries included), not yet finished.
    pending: int = 0
    #: API calls being answered (one may sleep on delay_seconds after its client gave up).
    answering: int = 0
    _idempotent: dict = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: _QuietServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, port: int = 0) -> StripeStandIn:
        standin = self

        class Handler(_Handler):
            state = standin

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def reset(self, wait_seconds: float = 5.0) -> None:
        # A call a test left sleeping on delay_seconds (its client timed out) would otherwise
        # wake up in the next test and meet that test's settings: take the fail_next meant for
        # the next test's own call, or write into its sessions.
        deadline = time.monotonic() + wait_seconds
        while self.answering and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.requests.clear()
            self.sessions.clear()
            self.refunds.clear()
            self._idempotent.clear()
            self.fail_next = 0
            self.fail_status = 500
            self.delay_seconds = 0.0

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):06d}"

    # -- what Stripe would do ------------------------------------------------------------------

    def create_session(self, params: dict) -> tuple[int, dict]:
        items = params.get("line_items") or []
        amount = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items
        )
        session_id = self._new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params.get("mode"),
            "currency": params.get("currency"),
            "amount_total": amount,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "payment_intent_metadata": (params.get("payment_intent_data") or {}).get(
                "metadata", {}
            ),
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "url": f"{self.base_url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return 200, session

    def expire_session(self, session_id: str) -> tuple[int, dict]:
        session = self.sessions.get(session_id)
        if session is None:
            return _error(404, "No such checkout.session")
        if session["status"] != "open":
            return _error(
                400,
                f"Only Checkout Sessions with a status of open can be expired; "
                f"this one is {session['status']}.",
            )
        session["status"] = "expired"
        return 200, session

    def pay(self, session_id: str) -> dict:
        """The buyer pays on the hosted page: the session completes with a payment intent."""
        session = self.sessions[session_id]
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}")
        session.update(status="complete", payment_status="paid", payment_intent=self._new_id("pi"))
        return session

    def create_refund(self, params: dict) -> tuple[int, dict]:
        intent = params.get("payment_intent")
        paid = next(
            (s for s in self.sessions.values() if s["payment_intent"] == intent and intent), None
        )
        if paid is None:
            return _error(404, f"No such payment_intent: '{intent}'")
        amount = int(params.get("amount") or paid["amount_total"])
        already = self.refunded(intent)
        if amount <= 0 or already + amount > paid["amount_total"]:
            return _error(400, "Refund amount is greater than the unrefunded amount.")
        refund = {
            "id": self._new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": "cny",
            "payment_intent": intent,
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        self.send_webhook_later(self.charge_refunded_event(intent))
        return 200, refund

    def refunded(self, intent: str) -> int:
        return sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent)

    # -- events --------------------------------------------------------------------------------

    def event(self, type_: str, obj: dict) -> dict:
        return {
            "id": self._new_id("evt"),
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "data": {"object": obj},
        }

    def session_event(self, type_: str, session_id: str) -> dict:
        return self.event(type_, dict(self.sessions[session_id]))

    def charge_refunded_event(self, intent: str) -> dict:
        session = next(s for s in self.sessions.values() if s["payment_intent"] == intent)
        return self.event(
            "charge.refunded",
            {
                "id": "ch_" + intent.removeprefix("pi_"),
                "object": "charge",
                "amount": session["amount_total"],
                "amount_refunded": self.refunded(intent),
                "currency": "cny",
                "payment_intent": intent,
                "refunded": self.refunded(intent) == session["amount_total"],
                "metadata": session["payment_intent_metadata"],
            },
        )

    def send_webhook(self, event: dict, url: str | None = None) -> int | None:
        """Deliver a signed event to the shop, as Stripe does; returns the HTTP status."""
        url = url or self.webhook_url
        if not (url and self.webhook_secret):
            return None
        for attempt in range(self.webhook_retries + 1):
            if attempt:
                time.sleep(self.webhook_retry_seconds)
            status = self._deliver(event, url)
            with self._lock:
                self.deliveries.append((event["id"], url, status))
            if status is not None and 200 <= status < 300:
                break
        return status

    def _deliver(self, event: dict, url: str) -> int | None:
        payload = json.dumps(event).encode()
        request = urllib.request.Request(
            url,
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign(payload, self.webhook_secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def send_webhook_later(self, event: dict, delay: float = 0.2) -> None:
        # Stripe sends events on its own time, never inside the API call that caused them.
        if self.webhook_url and self.webhook_secret:
            for url in [self.webhook_url, *self.replay_urls]:
                with self._lock:
                    self.pending += 1
                threading.Timer(delay, self._send_counted, args=(event, url)).start()

    def _send_counted(self, event: dict, url: str) -> None:
        try:
            self.send_webhook(event, url)
        finally:
            with self._lock:
                self.pending -= 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe: nothing to report.
        pass


def _error(status: int, message: str, type_: str = "invalid_request_error") -> tuple[int, dict]:
    return status, {"error": {"type": type_, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    state: StripeStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: dict | str, content_type="application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _params(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = urlsplit(self.path).query
        return unflatten(parse_qsl(body or query, keep_blank_values=True))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        state = self.state
        path = urlsplit(self.path).path
        params = self._params()
        if path.startswith("/pay/"):
            return self._payment_page(method, path, params)
        state.requests.append(Recorded(method, path, params, dict(self.headers)))
        with state._lock:
            state.answering += 1
        try:
            self._answer(method, path, params)
        finally:
            with state._lock:
                state.answering -= 1

    def _answer(self, method: str, path: str, params: dict) -> None:
        state = self.state
        if state.delay_seconds:
            time.sleep(state.delay_seconds)
        with state._lock:
            if state.fail_next:
                state.fail_next -= 1
                return self._send(*_error(state.fail_status, "Stand-in failure", "api_error"))
            key = self.headers.get("Idempotency-Key")
            if method == "POST" and key and key in state._idempotent:
                return self._send(*state._idempotent[key])
            status, body = self._route(method, path, params)
            if method == "POST" and key:
                state._idempotent[key] = (status, body)
        self._send(status, body)

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        state = self.state
        if method == "POST" and path == "/v1/checkout/sessions":
            return state.create_session(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([\w]+)(/expire)?", path)
        if match and method == "POST" and match[2]:
            return state.expire_session(match[1])
        if match and method == "GET" and not match[2]:
            session = state.sessions.get(match[1])
            return (200, session) if session else _error(404, "No such checkout.session")
        if method == "POST" and path == "/v1/refunds":
            return state.create_refund(params)
        return _error(404, f"Unrecognized request URL ({method}: {path}).")

    def _payment_page(self, method: str, path: str, params: dict) -> None:
        """The demo's hosted payment page: Pay or Cancel, no card asked."""
        state = self.state
        session_id = path.removeprefix("/pay/")
        session = state.sessions.get(session_id)
        if session is None:
            return self._send(404, "No such payment page", "text/plain; charset=utf-8")
        if method == "POST":
            if params.get("choice") == "pay" and session["status"] == "open":
                state.pay(session_id)
                state.send_webhook_later(
                    state.session_event("checkout.session.completed", session_id), delay=1.0
                )
                target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            else:
                target = session["cancel_url"]
            self.send_response(303)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        amount = f"¥{session['amount_total'] / 100:.2f}"
        page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stripe stand-in</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem">
<p style="color:#a00">Stripe stand-in — no real payment (本地模拟，不会真实扣款)</p>
<h1>{html.escape(amount)}</h1><p>{html.escape(session["status"])}</p>
<form method="post"><button name="choice" value="pay" style="font-size:1.2rem">Pay 支付</button>
<button name="choice" value="cancel">Cancel 取消</button></form></body></html>"""
        return self._send(200, page, "text/html; charset=utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default="http://127.0.0.1:5000/stripe/webhook")
    parser.add_argument("--webhook-secret", default="whsec_demo")
    args = parser.parse_args()
    standin = StripeStandIn(webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    standin.serve(args.port)
    print(f"Stripe stand-in on {standin.base_url}; webhooks to {args.webhook_url}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.close()


if __name__ == "__main__":
    main()
