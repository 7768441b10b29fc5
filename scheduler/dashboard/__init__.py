"""The web dashboard: Argo CD's application views (list, one app with its waves, history, diff, actions).

Served by the API server itself: `install_dashboard` adds the pages, their static assets and an offline
OpenAPI page to the FastAPI app `create_app` builds. Everything (CSS, script, Swagger UI) is served from
the installed package, so the dashboard works in an air-gapped cluster. Sign-in uses the REST API's
token (see `session`); reads come from Redis through `views`, never from git or the cluster.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from scheduler.dashboard.routes import create_dashboard_router
from scheduler.dashboard.session import CrossSiteRefused, PermissionDenied, Sessions, SignInRequired
from shared.pipeline.services import Services

if TYPE_CHECKING:
    from scheduler.task_sender import TaskSender

STATIC = Path(__file__).parent / "static"
STATIC_URL = "/ui/static"
VENDOR_URL = "/ui/vendor"


def _swagger_assets() -> Path:
    """Swagger UI's bundle and stylesheet, shipped by the `fastapi-offline` package."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def install_dashboard(api: FastAPI, services: Services, tasks: TaskSender, token: str) -> None:
    """Mount the dashboard, its assets and `/docs` (create the app with `docs_url=None`) on `api`."""
    readonly = services.settings.api_readonly_token
    sessions = Sessions(token, readonly.get_secret_value() if readonly is not None else None)
    api.mount(STATIC_URL, StaticFiles(directory=STATIC), name="dashboard-static")
    api.mount(VENDOR_URL, StaticFiles(directory=_swagger_assets()), name="dashboard-vendor")
    api.include_router(create_dashboard_router(services, tasks, sessions))

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The OpenAPI page, with Swagger UI served from this package instead of a CDN."""
        return get_swagger_ui_html(openapi_url=api.openapi_url or "/openapi.json", title=f"{api.title} - docs",
                                   swagger_js_url=f"{VENDOR_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{VENDOR_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC_URL}/favicon.svg")

    @api.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        if request.method == "GET" and not request.url.path.startswith("/ui/"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"error": "sign in first: the dashboard session is missing or expired", "code": 401},
                            status_code=401)

    @api.exception_handler(CrossSiteRefused)
    async def _cross_site(_: Request, exc: CrossSiteRefused) -> Response:
        return JSONResponse({"error": exc.message, "code": 403}, status_code=403)

    @api.exception_handler(PermissionDenied)
    async def _read_only(_: Request, exc: PermissionDenied) -> Response:
        return JSONResponse({"error": exc.message, "code": 403}, status_code=403)
