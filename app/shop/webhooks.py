"""Stripe's webhook: signed events about payments, applied once each."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.extensions import csrf, db, limiter
from app.services import payments, stripe_events
from app.services.clock import utcnow
from app.services.payments import InvalidSignature, PaymentUnavailable
from app.web.access import public

bp = Blueprint("webhooks", __name__)


@bp.post("/webhook")
@public  # Stripe signs the request; the signature is the check
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    """Verify Stripe's signature, then apply the event in one transaction."""
    gateway = payments.gateway()
    if gateway is None or not gateway.webhook_secret:
        return jsonify(error="online payment is not configured"), 404
    try:
        event = gateway.parse_event(request.get_data(), request.headers.get("Stripe-Signature"))
    except InvalidSignature:
        return jsonify(error="bad signature"), 400
    try:
        outcome = stripe_events.handle(db.session, event, gateway, utcnow())
        db.session.commit()
    except PaymentUnavailable:
        # A late payment could not be refunded yet: nothing is kept, and Stripe sends the
        # event again later.
        db.session.rollback()
        current_app.logger.warning("Stripe event %s deferred: Stripe unreachable", event["id"])
        return jsonify(error="try again later"), 503
    current_app.logger.info("Stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return jsonify(received=True, outcome=outcome)
