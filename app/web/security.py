"""Security headers on every response: a content security policy, no framing, no sniffing,
and HSTS in production.

The policy allows no inline script or style at all: templates draw dynamic bars as inline SVG
(whose width attributes are not CSS) and scripts come only from static/js. A view that sets
a header of its own (the photo view's stricter sandbox policy) keeps it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

#: Where Stripe's hosted Checkout page lives. A checkout form's POST is answered with a 303 to
#: it, and Chromium checks form-action against redirects that follow a form submission.
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(config) -> str:
    form_targets = ["'self'", STRIPE_CHECKOUT_ORIGIN]
    if config.get("STRIPE_API_BASE"):
        # The local Stripe stand-in serves its payment page from the API's own origin.
        form_targets.append(_origin(config["STRIPE_API_BASE"]))
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",  # Bootstrap's form controls draw their arrows as data: SVG
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "frame-ancestors": "'none'",
        "form-action": " ".join(form_targets),
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(config) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(config),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    # Only production is served over HTTPS for certain; a development machine that once got
    # HSTS for 127.0.0.1 would refuse plain http there for a year.
    if config["APP_ENV"] == "production" and config["HSTS_SECONDS"] > 0:
        headers["Strict-Transport-Security"] = (
            f"max-age={config['HSTS_SECONDS']}; includeSubDomains"
        )
    return headers


def init_app(app: Flask) -> None:
    headers = security_headers(app.config)

    @app.after_request
    def _add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
