"""Small helpers for HTML forms: the pre-sign-in CSRF check and errors shown next to fields."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import Request
from sqlmodel import Session

from frontend.templating import page_locale
from tanhui.auth import ANON_CSRF_COOKIE, CsrfRejected, Principal
from tanhui.db import finish_failed
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


def refusal_errors(
    session: Session,
    request: Request,
    principal: Principal | None,
    error: DomainError,
    *,
    renamed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A refused form: undo what the handler half wrote, so that the page shown again reads the
    database as it was (unless the refusal is evidence that must be kept, such as an expired
    voucher closed on the way: ``tanhui.db.finish_failed``), and return the messages keyed by
    field in the reader's language.

    ``renamed`` maps a service's argument names to the form's field names where they differ
    (``{"amount_fen": "deposit_amount"}``), so that the message lands next to its field.
    """
    finish_failed(session, error)
    errors = errors_by_field(error, page_locale(request, principal))
    for argument, field in (renamed or {}).items():
        if argument in errors:
            errors[field] = errors.pop(argument)
    return errors
