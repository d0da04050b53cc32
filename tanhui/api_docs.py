"""The API's interactive documentation (Swagger UI), served from the installed package.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script: the app's
own Content-Security-Policy (``script-src 'self'``) blocks both, and CDNs are unreliable from
mainland China. Here the assets come from the ``fastapi-offline`` distribution (Swagger UI's
release files, MIT/Apache-2.0) and the page starts Swagger UI from a same-origin script.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_PATH = "/api/docs"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API</title>
<link rel="stylesheet" href="{docs}/assets/swagger-ui.css">
<link rel="icon" href="{docs}/assets/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{docs}/assets/swagger-ui-bundle.js"></script>
<script src="{docs}/start.js"></script>
</body>
</html>
"""

_START = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "%s",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    showExtensions: true,
    showCommonExtensions: true
  });
});
"""


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve the documentation page, its start script and Swagger UI's files under /api/docs."""
    page = _PAGE.format(title=html.escape(app.title), docs=DOCS_PATH)
    start = _START % openapi_url

    async def docs(_request: Request) -> Response:
        return HTMLResponse(page)

    async def start_script(_request: Request) -> Response:
        return Response(start, media_type="text/javascript")

    app.add_route(DOCS_PATH, docs, include_in_schema=False)
    app.add_route(f"{DOCS_PATH}/start.js", start_script, include_in_schema=False)
    app.mount(f"{DOCS_PATH}/assets", StaticFiles(directory=ASSETS), name="api-docs-assets")
