"""Small helpers for HTML forms: the pre-sign-in CSRF check and errors shown next to fields."""

from __future__ import annotations

import hmac

from fastapi import Request

from tanhui.auth import ANON_CSRF_COOKIE, CsrfRejected
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import translate


def check_anonymous_csrf(request: Request, submitted: str) -> None:
    """Forms shown before sign-in (login, phone code) use a double-submit cookie."""
    expected = request.cookies.get(ANON_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, submitted or ""):
        raise CsrfRejected()


def errors_by_field(error: DomainError, locale: str) -> dict[str, str]:
    """Messages keyed by form field; ``"_form"`` holds what belongs to no single field."""
    message = translate(error.message, locale, **error.params)
    fields: dict[str, str] = {}
    if isinstance(error, InvalidInput):
        for item in error.errors:
            field = item.get("field", "")
            if field:
                fields.setdefault(field, message)
    if not fields:
        fields["_form"] = message
    return fields
