"""The public board (no login, nothing private) and /api/v1/pledges."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("board", __name__)
