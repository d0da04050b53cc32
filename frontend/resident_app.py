"""The residents' mobile web app at ``/app``: phone sign-in, settings, installable shell.

Designed for a 390×844 viewport first. Works without JavaScript; ``/static/js/app.js`` adds the
service worker (offline shell and last known balance) and small conveniences.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from frontend.access import ResidentFace
from frontend.forms import check_anonymous_csrf, errors_by_field
from frontend.templating import STATIC_DIR, page_locale, render
from tanhui import identity, pii
from tanhui.api import client_ip
from tanhui.auth import (
    OptionalPrincipal,
    SessionDep,
    clear_session_cookie,
    set_session_cookie,
)
from tanhui.errors import DomainError
from tanhui.i18n import translate

router = APIRouter(prefix="/app", include_in_schema=False)

# Templates included on the app's home page, in order (points, receipts, vouchers ... register
# theirs here together with a function that adds their data to the page context).
HOME_SECTIONS: list[tuple[str, Any]] = []


@router.get("", response_class=HTMLResponse)
def app_home(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    if principal is None or principal.resident is None:
        return render(
            request,
            "app/sign_in.html",
            {"step": "phone", "phone": "", "errors": {}},
            principal=principal,
        )
    context: dict[str, Any] = {"sections": [template for template, _ in HOME_SECTIONS]}
    for _template, add_context in HOME_SECTIONS:
        context.update(add_context(session, principal.resident))
    return render(request, "app/home.html", context, principal=principal)


@router.post("/code", response_class=HTMLResponse)
def send_code(
    request: Request,
    session: SessionDep,
    phone: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    try:
        identity.request_login_code(session, phone=phone, ip=client_ip(request))
        normalised = pii.normalise_phone(phone)
    except DomainError as error:
        return render(
            request,
            "app/sign_in.html",
            {
                "step": "phone",
                "phone": phone,
                "errors": errors_by_field(error, page_locale(request)),
            },
            status_code=error.status,
        )
    return render(
        request,
        "app/sign_in.html",
        {
            "step": "code",
            "phone": normalised,
            "masked_phone": pii.mask_phone(normalised),
            "errors": {},
        },
    )


@router.post("/login", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    phone: Annotated[str, Form(max_length=32)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    try:
        resident = identity.verify_login_code(
            session, phone=phone, code=code, ip=client_ip(request)
        )
    except DomainError as error:
        session.commit()  # a wrong code counts towards the limit even though we answer an error
        masked = pii.mask_phone(phone) if phone.startswith("+") else phone
        return render(
            request,
            "app/sign_in.html",
            {
                "step": "code",
                "phone": phone,
                "masked_phone": masked,
                "errors": {"_form": translate(error.message, page_locale(request), **error.params)},
            },
            status_code=error.status,
        )
    started = identity.start_web_session(session, resident=resident)
    response = RedirectResponse("/app", status_code=303)
    set_session_cookie(response, started.key)
    return response


@router.post("/logout")
def sign_out(principal: OptionalPrincipal, session: SessionDep) -> Response:
    """Sign out of the app, back to its sign-in page. Posted to a path inside the app so that
    its service worker sees it and forgets the resident's pages before the request leaves; the
    sign-in page it then loads belongs to nobody, which also replaces whatever was kept (the
    worker's cache is not the HTTP cache: ``Clear-Site-Data: "cache"`` leaves it alone in
    Chromium, and ``"storage"`` would also drop the offline shell and the worker itself)."""
    if principal is not None and principal.web_session is not None:
        identity.end_web_session(session, principal.web_session)
    response = RedirectResponse("/app", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/signed-out", response_class=HTMLResponse)
def signed_out(request: Request) -> Response:
    """What the service worker shows after a sign-out made without network (it keeps this page
    with the app shell; it belongs to nobody, whoever asks)."""
    return render(request, "app/signed_out.html", {}, principal=None)


@router.get("/settings", response_class=HTMLResponse)
def settings_form(request: Request, principal: ResidentFace) -> Response:
    return render(request, "app/settings.html", {"saved": False}, principal=principal)


@router.post("/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    principal: ResidentFace,
    session: SessionDep,
    display_name: Annotated[str, Form(max_length=100)] = "",
    elder_mode: Annotated[str, Form(max_length=10)] = "",
    locale: Annotated[str, Form(max_length=8)] = "zh-CN",
) -> Response:
    assert principal.resident is not None
    identity.update_resident_preferences(
        session,
        principal.resident,
        elder_mode=elder_mode == "on",
        locale=locale,
        display_name=display_name,
    )
    response = render(request, "app/settings.html", {"saved": True}, principal=principal)
    response.delete_cookie("tanhui_lang", path="/")  # the saved preference now decides
    return response


@router.get("/manifest.webmanifest")
def manifest(request: Request) -> Response:
    locale = page_locale(request)
    return JSONResponse(
        {
            "name": translate("Tanhui carbon points", locale),
            "short_name": translate("Tanhui", locale),
            "lang": locale,
            "start_url": "/app",
            "scope": "/app",
            "display": "standalone",
            "background_color": "#f7faf7",
            "theme_color": "#1f6b3a",
            "icons": [
                {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
                {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            ],
        },
        media_type="application/manifest+json",
    )


@router.get("/sw.js")
def service_worker() -> Response:
    """Served under /app so that its scope is the app. Its path alone would allow the scope
    ``/app/`` only; ``Service-Worker-Allowed`` lets it also control ``/app`` itself, the page
    the app opens on (without it the browser refuses the registration)."""
    return FileResponse(
        STATIC_DIR / "js" / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/app"},
    )
