"""The app factory: the composition root that mounts every package's router."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import frontend.admin_pages
import frontend.authority_pages
import frontend.coop_pages
import frontend.court_pages
import frontend.market_pages
import frontend.merchant_pages
import frontend.pages
import frontend.points_admin_pages
import frontend.points_pages
import frontend.public_pages
import frontend.resident_app
import frontend.templating
import frontend.verifier_pages
import market.api
import market.rewards.api
import mrv.api
import registry.api
import registry.inclusion.api
import registry.public_api
import tanhui.translog.api
import wallet.api
from tanhui import __version__, api_docs, problems
from tanhui import api as kernel_api
from tanhui.db import create_engine
from tanhui.errors import PROBLEM_MEDIA_TYPE
from tanhui.i18n import N_, both, negotiate, translate
from tanhui.migrate import is_at_head
from tanhui.settings import Settings, load_settings, use_settings, with_local_secrets

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; manifest-src 'self'; worker-src 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every response (plain ASGI: no per-request overhead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse request bodies over a limit with a 413 problem, before or while they are read.

    The limit is ``default`` unless the request's path is one of the route templates of
    ``overrides`` (uploads declare their own, larger limits in their package's ``BODY_LIMITS``,
    keyed by the route's path: ``"/coop/projects/{project_id}/mrv"``). A whole template, not a
    prefix: under ``/coop/projects/`` only the MRV upload takes 256 MB, every other form the
    default (issue 16: anonymous 250 MB form bodies were parsed under ``/coop/projects/*``).
    Bodies without a ``Content-Length`` (chunked) are counted as they stream.
    """

    def __init__(self, app: ASGIApp, default: int, overrides: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.overrides = [(compile_path(path)[0], limit) for path, limit in overrides.items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.overrides:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_too_large(scope, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counting_receive, send)


async def _send_too_large(scope: Scope, send: Send) -> None:
    body = json.dumps(_too_large_problem(scope), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _too_large_problem(scope: Scope) -> dict[str, Any]:
    headers = {key.decode().lower(): value.decode() for key, value in scope.get("headers", [])}
    locale = negotiate(headers.get("accept-language"), None)
    message = N_("The request body is larger than this endpoint accepts.")
    return {
        "type": "/problems/payload-too-large",
        "title": translate(N_("The request body is too large"), locale),
        "status": 413,
        "detail": translate(message, locale),
        "messages": both(message),
        "instance": scope.get("path", ""),
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web application for ``settings`` (from the environment when omitted)."""
    settings = with_local_secrets(settings or load_settings())
    use_settings(settings)
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Tanhui 碳惠",
        version=__version__,
        description="Carbon-sink trading and carbon inclusion (碳汇交易与碳普惠).",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served from the package by tanhui.api_docs (no CDN, under the CSP)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    problems.install(app, html_renderer=frontend.pages.render_error)
    body_limits = {**wallet.api.BODY_LIMITS, **registry.api.BODY_LIMITS, **market.api.BODY_LIMITS}
    body_limits.update(mrv.api.BODY_LIMITS)
    body_limits.update(frontend.court_pages.BODY_LIMITS)
    body_limits.update(frontend.coop_pages.BODY_LIMITS)
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, overrides=body_limits)
    app.add_middleware(SecurityHeaders)

    api = APIRouter(prefix="/api/v1")
    api.include_router(kernel_api.router)
    api.include_router(kernel_api.admin_router)
    api.include_router(wallet.api.router)
    api.include_router(registry.api.router)
    api.include_router(registry.public_api.router)
    api.include_router(tanhui.translog.api.router)
    api.include_router(registry.inclusion.api.router)
    api.include_router(market.rewards.api.router)
    api.include_router(market.api.router)
    api.include_router(mrv.api.router)
    app.include_router(api)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable and migrated to head",
        responses={503: {"description": "not ready"}},
    )
    def readyz(request: Request) -> Any:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            migrated = is_at_head(engine)
        except Exception as error:
            return JSONResponse(
                {"status": "unavailable", "database": type(error).__name__}, status_code=503
            )
        if not migrated:
            return JSONResponse({"status": "unavailable", "migrations": "behind"}, status_code=503)
        return {"status": "ok"}

    app.include_router(frontend.public_pages.router)
    app.include_router(frontend.pages.router)
    app.include_router(frontend.resident_app.router)
    app.include_router(frontend.admin_pages.router)
    app.include_router(frontend.points_pages.router)
    app.include_router(frontend.points_pages.public_router)
    app.include_router(frontend.merchant_pages.router)
    app.include_router(frontend.points_admin_pages.router)
    app.include_router(frontend.coop_pages.router)
    app.include_router(frontend.verifier_pages.router)
    app.include_router(frontend.authority_pages.router)
    app.include_router(frontend.market_pages.router)
    app.include_router(frontend.court_pages.router)
    app.mount("/static", StaticFiles(directory=frontend.templating.STATIC_DIR), name="static")
    api_docs.install(app, openapi_url="/api/openapi.json")
    kernel_api.document_auth_problems(app)
    return app
