"""Turning every error into RFC 9457 problem+json (or an HTML page for a browser).

Installed once by the app factory. Domain errors keep their own status and stable type; request
validation errors become 422 with the failing fields (or 415 when the body is not of a media type
the route reads); HTTP errors (unknown route, method, too large body) get problem types too; a
transaction the database aborted to resolve a conflict (deadlock, serialization failure, SQLite
busy) is a 503 with ``Retry-After`` (nothing was written: send the request again); an unexpected
exception is logged with its traceback and answered with a plain 500 problem.
"""

from __future__ import annotations

import email.message
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tanhui.db import is_disconnect, is_retryable
from tanhui.errors import PROBLEM_MEDIA_TYPE, DomainError, InvalidInput
from tanhui.i18n import LOCALE_COOKIE, N_, both, negotiate, translate

log = logging.getLogger("tanhui.errors")

HtmlErrorRenderer = Callable[[Request, dict[str, Any]], Response]


class UnsupportedMediaType(DomainError):
    code = "unsupported-media-type"
    status = 415
    title = N_("Unsupported media type")


class RouteNotFound(DomainError):
    code = "not-found"
    status = 404
    title = N_("Not found")


# The types below are answered by the handlers of this module rather than raised by services;
# declaring them registers their codes, so that every ``type`` we answer with has its page.


class BadRequest(DomainError):
    code = "bad-request"
    status = 400
    title = N_("Bad request")


class MethodNotAllowed(DomainError):
    code = "method-not-allowed"
    status = 405
    title = N_("Method not allowed")


class NotAcceptable(DomainError):
    code = "not-acceptable"
    status = 406
    title = N_("Not acceptable")


class PayloadTooLarge(DomainError):
    code = "payload-too-large"
    status = 413
    title = N_("The request body is too large")


class InternalError(DomainError):
    code = "internal-error"
    status = 500
    title = N_("Internal error")


class DatabaseBusy(DomainError):
    """A serialization failure or deadlock that the database resolved by aborting this request's
    transaction: nothing was written, and the same request may simply be sent again."""

    code = "database-busy"
    status = 503
    title = N_("The database is busy")


class DatabaseUnavailable(DomainError):
    """The connection to the database was lost while answering: the request may or may not
    have been applied, and sending it again with the same Idempotency-Key tells which."""

    code = "database-unavailable"
    status = 503
    title = N_("The database is unavailable")


DATABASE_BUSY_RETRY_AFTER_S = 1


_HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", N_("Bad request")),
    401: ("unauthorized", N_("Authentication required")),
    403: ("forbidden", N_("Not allowed")),
    404: ("not-found", N_("Not found")),
    405: ("method-not-allowed", N_("Method not allowed")),
    406: ("not-acceptable", N_("Not acceptable")),
    413: ("payload-too-large", N_("The request body is too large")),
    415: ("unsupported-media-type", N_("Unsupported media type")),
    429: ("rate-limited", N_("Too many attempts")),
}


def request_locale(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"), request.cookies.get(LOCALE_COOKIE))


def wants_html(request: Request) -> bool:
    """A browser navigating to a page (not an API client) gets an HTML error page."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def problem_response(
    request: Request,
    problem: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    renderer: HtmlErrorRenderer | None = getattr(request.app.state, "html_error_renderer", None)
    if renderer is not None and wants_html(request):
        response = renderer(request, problem)
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response
    return JSONResponse(
        problem,
        status_code=int(problem["status"]),
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    problem = exc.to_problem(request_locale(request), instance=request.url.path)
    headers = {}
    retry_after = exc.params.get("retry_after")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    return problem_response(request, problem, headers=headers)


def _route_body(request: Request) -> str | None:
    """``"form"`` or ``"json"``: what the matched route reads from the body (None: nothing)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return None
    return "form" if isinstance(route.body_field.field_info, Form) else "json"


def _media_type(content_type: str) -> str:
    message = email.message.Message()
    message["content-type"] = content_type
    maintype, subtype = message.get_content_maintype(), message.get_content_subtype()
    if maintype == "application" and (subtype == "json" or subtype.endswith("+json")):
        return "json"
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return "form"
    return "other"


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    locale = request_locale(request)
    expected = _route_body(request)
    content_type = request.headers.get("content-type")
    if expected is not None and content_type and _media_type(content_type) != expected:
        unsupported = UnsupportedMediaType(
            N_("This endpoint reads {expected}; the request sent {sent}."),
            expected="application/json" if expected == "json" else "multipart/form-data",
            sent=content_type,
        )
        return problem_response(request, unsupported.to_problem(locale, request.url.path))
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        errors.append(
            {
                "field": ".".join(location[1:]) if len(location) > 1 else ".".join(location),
                "in": location[0] if location else "body",
                "message": str(error.get("msg", "")),
                "code": str(error.get("type", "")),
            }
        )
    invalid = InvalidInput(
        N_("The request has {count} invalid field(s): {fields}."),
        count=len(errors),
        fields=", ".join(error["field"] or error["in"] for error in errors),
    )
    problem = invalid.to_problem(locale, request.url.path)
    problem["errors"] = errors
    return problem_response(request, problem)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_PROBLEMS.get(exc.status_code, (f"http-{exc.status_code}", N_("Error")))
    locale = request_locale(request)
    detail = title
    if exc.status_code == 404:
        detail = N_("There is nothing at {path}.")
    elif exc.status_code == 405:
        detail = N_("{method} is not allowed on {path}.")
    elif exc.status_code == 413:
        detail = N_("The request body is larger than this endpoint accepts.")
    params = {"path": request.url.path, "method": request.method}
    problem = {
        "type": "/problems/" + code,
        "title": translate(title, locale),
        "status": exc.status_code,
        "detail": translate(detail, locale, **params),
        "messages": both(detail, **params),
        "instance": request.url.path,
    }
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, problem, headers=headers)


def _database_error(request: Request, exc: Exception) -> Response:
    """Conflicts PostgreSQL resolves by aborting one transaction (deadlock, serialization
    failure) or a SQLite database busy past its timeout: 503, retry; a lost connection: 503,
    retry with the same key to learn the outcome; anything else is a 500."""
    if is_disconnect(exc):
        log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc)
        return _retry_later(
            request,
            DatabaseUnavailable(
                N_(
                    "The connection to the database was lost while answering; the request may "
                    "or may not have been applied. Send it again with the same Idempotency-Key "
                    "to get its result."
                ),
                retry_after=DATABASE_BUSY_RETRY_AFTER_S,
            ),
        )
    if not is_retryable(exc):
        return _unexpected(request, exc)
    log.warning("database conflict on %s %s: %s", request.method, request.url.path, exc)
    return _retry_later(
        request,
        DatabaseBusy(
            N_(
                "The database could not apply this request because of a concurrent one; nothing "
                "was changed. Send it again (with the same Idempotency-Key, if it had one)."
            ),
            retry_after=DATABASE_BUSY_RETRY_AFTER_S,
        ),
    )


def _retry_later(request: Request, error: DomainError) -> Response:
    return problem_response(
        request,
        error.to_problem(request_locale(request), request.url.path),
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER_S)},
    )


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    locale = request_locale(request)
    message = N_("Something went wrong on our side; nothing was changed. Please try again.")
    problem = {
        "type": "/problems/internal-error",
        "title": translate(N_("Internal error"), locale),
        "status": 500,
        "detail": translate(message, locale),
        "messages": both(message),
    }
    return problem_response(request, problem)


def install(app: FastAPI, html_renderer: HtmlErrorRenderer | None = None) -> None:
    app.state.html_error_renderer = html_renderer
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
