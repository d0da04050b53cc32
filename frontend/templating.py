"""Rendering pages: one Jinja2 environment, the caller's locale, CSRF token and principal.

Templates call ``_("English text")`` for every user-facing string; the catalogue translates it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from frontend.navigation import links_for
from tanhui.auth import ANON_CSRF_COOKIE, Principal
from tanhui.i18n import LOCALE_COOKIE, N_, SUPPORTED_LOCALES, negotiate, translate
from tanhui.models import OrgKind, Role
from tanhui.settings import get_settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
# Names the resident an /app page belongs to (empty: nobody signed in); see static/js/sw.js.
RESIDENT_HEADER = "Tanhui-Resident"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html", "svg", "xml"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_locale(request: Request, principal: Principal | None = None) -> str:
    """The language cookie wins, then a resident's saved preference, then Accept-Language."""
    cookie = request.cookies.get(LOCALE_COOKIE)
    if cookie is None and principal is not None and principal.resident is not None:
        cookie = principal.resident.locale
    return negotiate(request.headers.get("accept-language"), cookie)


def _translator(locale: str) -> Callable[..., str]:
    """The page's ``_``: ``translate`` in the page's locale (its locale is positional-only, so a
    ``partial(translate, locale=...)`` would pass the locale as a placeholder and answer zh-CN)."""

    def _(message: str, /, **params: object) -> str:
        return translate(message, locale, **params)

    return _


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a UTC datetime in Asia/Shanghai, as people in Huzhou read it."""
    if value is None:
        return ""
    return value.astimezone(DISPLAY_TZ).strftime(fmt)


def last_day(value: datetime | None) -> str:
    """The last Asia/Shanghai day before ``value`` ends (an end at midnight ends the day
    before): how an end date chosen as a day reads back."""
    if value is None:
        return ""
    return (value.astimezone(DISPLAY_TZ) - timedelta(microseconds=1)).date().isoformat()


def cny(amount_fen: int) -> str:
    """Integer fen as ``¥1,234.56``."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"


ORG_KIND_LABELS = {
    OrgKind.cooperative: N_("Cooperative"),
    OrgKind.enterprise: N_("Enterprise"),
    OrgKind.verifier: N_("Verifier"),
    OrgKind.authority: N_("Authority"),
    OrgKind.court: N_("Court"),
    OrgKind.compensation_fund: N_("Compensation fund"),
    OrgKind.merchant: N_("Merchant"),
    OrgKind.data_partner: N_("Data partner"),
    OrgKind.platform: N_("Platform"),
}
ROLE_LABELS = {Role.owner: N_("Owner"), Role.member: N_("Member"), Role.viewer: N_("Viewer")}

environment.globals["org_kind_labels"] = ORG_KIND_LABELS
environment.globals["role_labels"] = ROLE_LABELS
environment.filters["local_time"] = local_time
environment.filters["last_day"] = last_day
environment.filters["cny"] = cny


def anonymous_csrf(request: Request) -> str:
    """The double-submit token for forms shown before sign-in (login): cookie == form field."""
    token = request.cookies.get(ANON_CSRF_COOKIE)
    if not token:
        token = request.state.__dict__.setdefault("new_anon_csrf", secrets.token_urlsafe(24))
    return token


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    locale = page_locale(request, principal)
    csrf = principal.csrf_token if principal and principal.csrf_token else anonymous_csrf(request)
    values: dict[str, Any] = {
        "request": request,
        "locale": locale,
        "locales": SUPPORTED_LOCALES,
        "_": _translator(locale),
        "principal": principal,
        "csrf_token": csrf,
        "base_url": get_settings().base_url,
        "path": request.url.path,
        "nav_links": links_for(principal),
        "elder_mode": bool(principal and principal.resident and principal.resident.elder_mode),
    }
    values.update(context or {})
    body = environment.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    if request.url.path == "/app" or request.url.path.startswith("/app/"):
        # Whose page this is, for the app's service worker: it keeps one person's pages at a
        # time and forgets them when a page of someone else (or of nobody) arrives.
        resident = principal.resident if principal is not None else None
        response.headers[RESIDENT_HEADER] = str(resident.id) if resident is not None else ""
        if resident is not None:
            response.headers["Cache-Control"] = "private, no-store"
    new_token = request.state.__dict__.get("new_anon_csrf")
    if new_token:
        response.set_cookie(ANON_CSRF_COOKIE, new_token, httponly=True, samesite="lax", path="/")
    return response
