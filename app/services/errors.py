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


class LineErrors(DomainError):
    """Several lines of a sheet or order refused at once: {key: message}, where the key is what
    the caller numbered them by (a product id, an order line id, a line of an uploaded file)."""

    def __init__(self, errors, message=None):
        from flask_babel import lazy_gettext as _l

        super().__init__(message or _l("Some lines need correcting; see the messages beside them."))
        self.errors = dict(errors)
