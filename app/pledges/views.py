"""Pledges: the coordinator's pages (progress, pace, the ledger behind every figure)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pledges", __name__)
