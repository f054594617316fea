"""Domain errors, raised by services and turned into form errors or HTTP statuses at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """Something the user asked for that the rules refuse.

    `field` names the form field the message belongs to (None for the whole form), so a view can
    show it beside the input that caused it.
    """

    status_code = 422

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404


class PermissionDenied(DomainError):
    status_code = 403
