"""The API documentation pages (/docs, /redoc), each under a Content-Security-Policy.

FastAPI's own pages come with none. They load their viewer from jsDelivr; Swagger UI is
started by an inline script, which is allowed by a nonce fresh on every response, and
nothing else inline may run. Styles may be inline (both viewers set them at run time),
and ReDoc's search runs in a worker it builds from a ``blob:`` URL.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
#: A blank icon rather than the framework's, so the page calls on no one else.
FAVICON = "data:,"
_COMMON = ("default-src 'none'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")
SWAGGER_CSP = "script-src 'nonce-{nonce}' " + CDN + "; style-src 'unsafe-inline' " + CDN
REDOC_CSP = (f"script-src {CDN}; worker-src blob:; "
             "style-src 'unsafe-inline' https://fonts.googleapis.com; "
             "font-src https://fonts.gstatic.com")
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc; the app must be built with ``docs_url=redoc_url=None``."""
    assert app.openapi_url, "the documentation pages read the OpenAPI document"
    openapi_url = app.openapi_url

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(openapi_url=root + openapi_url,
                                   title=f"{app.title} - Swagger UI",
                                   swagger_favicon_url=FAVICON)
        html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
        csp = f"{_COMMON}; {SWAGGER_CSP.format(nonce=nonce)}"
        return HTMLResponse(html, headers={**_HEADERS, "Content-Security-Policy": csp})

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
                              redoc_favicon_url=FAVICON)
        csp = f"{_COMMON}; {REDOC_CSP}"
        return HTMLResponse(bytes(page.body).decode(),
                            headers={**_HEADERS, "Content-Security-Policy": csp})
