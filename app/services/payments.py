"""Stripe, through the official `stripe` library: the only module that talks to Stripe.

The gateway turns our orders into Checkout Sessions and refunds, and Stripe's answers into
small values the order state machine (app.services.orders) understands. Errors become
PaymentUnavailable, with `answered` telling an error Stripe sent back (a retry must use a new
idempotency key, because Stripe replays a saved answer for a reused key) from a network failure
(where the first request may have gone through, so a retry must reuse the key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import stripe
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from app.models import Order
from app.services.errors import DomainError

CURRENCY = "cny"

log = logging.getLogger(__name__)


class PaymentUnavailable(DomainError):
    """Stripe could not be reached or refused the request; nothing about the order changed."""

    status_code = 502

    def __init__(self, message, answered: bool):
        super().__init__(message)
        self.answered = answered


class InvalidSignature(Exception):
    """A webhook request that Stripe did not sign with our secret."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    #: "open", "complete" or "expired".
    status: str
    #: "paid", "unpaid" or "no_payment_required".
    payment_status: str
    payment_intent: str | None
    amount_total: int | None
    order_id: int | None

    @classmethod
    def from_stripe(cls, obj) -> CheckoutSession:
        obj = as_dict(obj)
        metadata = obj.get("metadata") or {}
        reference = obj.get("client_reference_id") or metadata.get("order_id")
        intent = obj.get("payment_intent")
        if intent is not None and not isinstance(intent, str):
            intent = intent.get("id")
        return cls(
            id=obj["id"],
            url=obj.get("url"),
            status=obj.get("status") or "",
            payment_status=obj.get("payment_status") or "",
            payment_intent=intent,
            amount_total=obj.get("amount_total"),
            order_id=int(reference) if str(reference or "").isdigit() else None,
        )


def as_dict(obj) -> dict:
    """Stripe's objects are not dicts; events and sessions are handled here as plain data."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def _unavailable(error: stripe.StripeError) -> PaymentUnavailable:
    if isinstance(error, stripe.APIConnectionError):
        return PaymentUnavailable(
            _l("Online payment cannot be reached just now. Try again, or pay at the counter."),
            answered=False,
        )
    log.warning("Stripe refused a request: %s", error)
    return PaymentUnavailable(
        _l("Online payment refused the request. Try again, or pay at the counter."),
        answered=True,
    )


class StripeGateway:
    def __init__(self, config):
        base = config.get("STRIPE_API_BASE")
        self.client = stripe.StripeClient(
            config["STRIPE_SECRET_KEY"],
            base_addresses={"api": base.rstrip("/")} if base else None,
            max_network_retries=config.get("STRIPE_NETWORK_RETRIES", 1),
            http_client=stripe.RequestsClient(timeout=config.get("STRIPE_TIMEOUT_SECONDS", 10)),
        )
        self.payment_methods = list(config.get("STRIPE_PAYMENT_METHODS") or ["card"])
        self.webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")

    def create_checkout_session(
        self, order: Order, success_url: str, cancel_url: str, expires_at: datetime
    ) -> CheckoutSession:
        """A hosted payment page for the order, in CNY, for exactly the order's total.

        Each order line is one Stripe line item of quantity 1 priced at the line's total:
        Stripe quantities are whole numbers and 1.5 kg is not, and this way the session's total
        is the order's total to the fen, with no second rounding.
        """
        metadata = {"order_id": str(order.id), "order_number": order.number}
        params = {
            "mode": "payment",
            "currency": CURRENCY,
            "client_reference_id": str(order.id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "allowed_payment_method_types": self.payment_methods,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": line.total_fen,
                        "product_data": {
                            "name": f"{line.name_zh} × {_quantity(line.quantity)} {line.unit.label}"
                        },
                    },
                }
                for line in order.lines
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": int(expires_at.timestamp()),
        }
        if "wechat_pay" in self.payment_methods:
            # Stripe requires the client type for WeChat Pay; the hosted page is a web client.
            params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
        try:
            session = self.client.v1.checkout.sessions.create(
                params,
                {"idempotency_key": f"shanhai-order-{order.id}-checkout-{order.checkout_attempt}"},
            )
        except stripe.StripeError as error:
            raise _unavailable(error) from error
        return CheckoutSession.from_stripe(session)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        try:
            return CheckoutSession.from_stripe(
                self.client.v1.checkout.sessions.retrieve(session_id)
            )
        except stripe.StripeError as error:
            raise _unavailable(error) from error

    def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        """Close the payment page so no payment can land; returns the session as it ends.

        Stripe refuses to expire a session that is no longer open (paid or already expired);
        then the session is fetched, and the caller sees whether the buyer paid after all.
        """
        try:
            return CheckoutSession.from_stripe(self.client.v1.checkout.sessions.expire(session_id))
        except stripe.InvalidRequestError:
            return self.retrieve_checkout_session(session_id)
        except stripe.StripeError as error:
            raise _unavailable(error) from error

    def refund(self, payment_intent: str, amount_fen: int, idempotency_key: str) -> str:
        """Send money back; the idempotency key makes a repeated call refund only once."""
        try:
            refund = self.client.v1.refunds.create(
                {"payment_intent": payment_intent, "amount": amount_fen},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _unavailable(error) from error
        return refund["id"]

    def parse_event(self, payload: bytes, signature: str | None) -> dict:
        """The event Stripe signed, as plain data; InvalidSignature for anything else."""
        try:
            return as_dict(self.client.construct_event(payload, signature, self.webhook_secret))
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise InvalidSignature(str(error)) from error


def _quantity(value) -> str:
    return format(value.normalize(), "f")


def init_app(app: Flask) -> None:
    app.extensions["stripe_gateway"] = (
        StripeGateway(app.config) if app.config.get("STRIPE_SECRET_KEY") else None
    )


def gateway() -> StripeGateway | None:
    """The app's Stripe gateway, or None when no key is configured (counter payment only)."""
    return current_app.extensions.get("stripe_gateway")
