"""Pages every visitor sees: home, sign-in and sign-out, language switch, problem types."""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from frontend.templating import page_locale, render
from tanhui import identity
from tanhui.api import client_ip
from tanhui.auth import (
    ANON_CSRF_COOKIE,
    CsrfRejected,
    OptionalPrincipal,
    SessionDep,
    clear_session_cookie,
    set_session_cookie,
)
from tanhui.errors import DomainError
from tanhui.i18n import LOCALE_COOKIE, SUPPORTED_LOCALES, translate

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a signed-in user to another host."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: OptionalPrincipal, next: str = "/") -> Response:
    return render(
        request,
        "login.html",
        {"next": safe_next(next), "email": "", "error": None},
        principal=principal,
    )


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    expected = request.cookies.get(ANON_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise CsrfRejected()
    try:
        user = identity.authenticate(session, email=email, password=password, ip=client_ip(request))
    except DomainError as error:
        session.commit()  # a failed attempt is evidence for the rate limit: keep it
        locale = page_locale(request)
        return render(
            request,
            "login.html",
            {
                "next": safe_next(next),
                "email": email,
                "error": translate(error.message, locale, **error.params),
            },
            status_code=error.status,
        )
    started = identity.start_web_session(session, user=user)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, started.key)
    return response


@router.post("/logout")
def logout(principal: OptionalPrincipal, session: SessionDep) -> Response:
    if principal is not None and principal.web_session is not None:
        identity.end_web_session(session, principal.web_session)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/lang/{locale}")
def switch_language(locale: str, next: str = "/") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in SUPPORTED_LOCALES:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/problems/{code:path}", response_class=HTMLResponse)
def problem_type(request: Request, code: str, principal: OptionalPrincipal) -> Response:
    """Documentation for a problem ``type``: every type our API answers with resolves here."""
    error = DomainError.registry.get(code)
    return render(
        request,
        "problem_type.html",
        {
            "code": code,
            "known": error is not None,
            "status": error.status if error else None,
            "title": error.title if error else code,
        },
        principal=principal,
        status_code=200 if error else 404,
    )


def render_error(request: Request, problem: dict[str, Any]) -> Response:
    """The HTML face of a problem, for browsers navigating to a page."""
    return render(request, "error.html", {"problem": problem}, status_code=int(problem["status"]))
