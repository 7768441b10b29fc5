"""The dashboard's HTTP routes: server-rendered pages, the fragments their script polls, and the actions.

Pages live where Argo CD's UI has them (`/applications`, `/applications/<name>`, `/login`). The script
refreshes a page's live part by fetching `/ui/fragments/...` every two seconds (the same templates,
server-rendered), so nothing but HTML and a small script reaches the browser. Actions are JSON POSTs
under `/ui/actions/...`: checked by `shared.apps.app_actions` with Argo CD's refusals, handed to the workers
exactly as the REST API hands them, and refused errors come back as the API's `{"error", "code"}`. An
action's body is read only after the session and CSRF checks (`body_of`, a dependency, not a FastAPI body
parameter, which FastAPI would read first): without a session any body is answered 401, never 413 or 422.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from scheduler.api_base import body_of
from scheduler.dashboard.session import Role, Sessions, check_origin, safe_next
from scheduler.dashboard.views import AppDetail, AppRow, DashboardReader
from shared.apps.app_actions import ActionConflict, ActionNotFound, AppActions
from shared.core.errors import WaveCDError
from shared.core.models import Application
from shared.pipeline.services import Services

if TYPE_CHECKING:
    from scheduler.task_sender import TaskSender

TEMPLATES = Path(__file__).parent / "templates"
_MAX_FORM_BYTES = 16 * 1024
DASHBOARD_USER = "dashboard"
_STATUS_FILTERS = ("Synced", "OutOfSync", "Unknown", "Healthy", "Progressing", "Degraded", "Suspended",
                   "Missing")


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SyncResourceRef(_Body):
    group: str = ""
    kind: str = Field(min_length=1)
    namespace: str = ""
    name: str = Field(min_length=1)


class DashboardSync(_Body):
    prune: bool = False
    dry_run: bool = False
    apply_out_of_sync_only: bool = False
    resources: list[SyncResourceRef] | None = None


class DashboardRollback(_Body):
    id: int = Field(ge=0)
    prune: bool = False
    dry_run: bool = False


class DashboardDelete(_Body):
    cascade: bool = True


class Filters(BaseModel):
    status: str = ""
    project: str = ""
    q: str = ""

    def keep(self, row: AppRow) -> bool:
        if self.status and self.status not in (row.sync_status, row.health):
            return False
        if self.project and row.project != self.project:
            return False
        text = self.q.strip().lower()
        haystack = " ".join((row.name, row.project, row.repo_url, row.path, row.namespace)).lower()
        return not text or text in haystack


def _security_headers(response: Response) -> Response:
    """Everything from our own origin, no inline script, never framed, never cached."""
    response.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                                   "img-src 'self' data:; frame-ancestors 'none'; "
                                                   "base-uri 'none'; form-action 'self'")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _list_context(rows: list[AppRow], filters: Filters) -> dict[str, Any]:
    """The rows the filters keep, the total, and how many apps have each status (Argo CD's summary)."""
    counts = Counter(r.sync_status for r in rows) + Counter(r.health for r in rows)
    return {"rows": [r for r in rows if filters.keep(r)], "total": len(rows),
            "counts": [(s, counts[s]) for s in _STATUS_FILTERS if counts[s]]}


def create_dashboard_router(svc: Services, tasks: TaskSender, sessions: Sessions) -> APIRouter:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    reader = DashboardReader(svc)
    actions = AppActions(svc.store, svc.locks)
    router = APIRouter(include_in_schema=False)
    signed_in = [Depends(sessions.require)]
    writes = [Depends(sessions.require_write)]

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:  # noqa: ANN401
        role = sessions.role(request)
        context.setdefault("csrf_token", sessions.csrf_token(role) if role is not None else "")
        context.setdefault("read_only", role == Role.READ_ONLY)
        return _security_headers(templates.TemplateResponse(request, name, context, status_code=status))

    def repo_of(name: str) -> str:
        doc = svc.store.get_app(name)
        if doc is None:
            raise ActionNotFound(f"application '{name}' not found")
        try:
            return Application.parse(doc).spec.primary_source.repo_url
        except WaveCDError as exc:
            raise ActionConflict(f"the application's spec is invalid: {exc.message}") from None

    # -- signing in ---------------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - Argo CD's name
        if sessions.signed_in(request):
            return RedirectResponse(safe_next(next), status_code=303)
        return page(request, "login.html", next=safe_next(next), error="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        check_origin(request)
        raw = await request.body()
        if len(raw) > _MAX_FORM_BYTES:
            return page(request, "login.html", status=413, next="/applications", error="the form is too large")
        form = parse_qs(raw.decode("utf-8", errors="replace"))  # application/x-www-form-urlencoded
        token = (form.get("token") or [""])[0]
        next = (form.get("next") or ["/applications"])[0]  # noqa: A001 - Argo CD's parameter name
        role = sessions.role_of_token(token)
        if role is None:
            return page(request, "login.html", status=401, next=safe_next(next),
                        error="invalid API token" if token.strip() else "enter the API token")
        response = RedirectResponse(safe_next(next), status_code=303)
        sessions.set_cookie(request, response, role)
        return _security_headers(response)

    @router.post("/logout", dependencies=[Depends(sessions.require_same_site)])
    def logout() -> Response:
        response = JSONResponse({"message": "signed out"})
        sessions.clear_cookie(response)
        return response

    # -- pages ----------------------------------------------------------------------------------------
    @router.get("/", dependencies=signed_in)
    def home() -> Response:
        return RedirectResponse("/applications", status_code=303)

    @router.get("/applications", dependencies=signed_in)
    def applications(request: Request, filters: Annotated[Filters, Query()]) -> Response:
        rows = reader.rows()
        return page(request, "applications.html", filters=filters, projects=sorted({r.project for r in rows}),
                    statuses=_STATUS_FILTERS, **_list_context(rows, filters))

    @router.get("/applications/{name}", dependencies=signed_in)
    def application(request: Request, name: str) -> Response:
        detail = reader.detail(name)
        if detail is None:
            return page(request, "not_found.html", status=404, name=name)
        return page(request, "application.html", d=detail)

    # -- live fragments ------------------------------------------------------------------------------
    @router.get("/ui/fragments/applications", dependencies=signed_in, response_class=HTMLResponse)
    def applications_fragment(request: Request, filters: Annotated[Filters, Query()]) -> Response:
        return page(request, "_app_rows.html", **_list_context(reader.rows(), filters))

    @router.get("/ui/fragments/applications/{name}", dependencies=signed_in, response_class=HTMLResponse)
    def application_fragment(request: Request, name: str) -> Response:
        detail: AppDetail | None = reader.detail(name)
        if detail is None:
            return page(request, "_gone.html", status=404, name=name)
        return page(request, "_app_live.html", d=detail)

    # -- actions ---------------------------------------------------------------------------------------
    @router.post("/ui/actions/applications/{name}/sync", dependencies=writes, status_code=202)
    def sync(name: str,
             body: Annotated[DashboardSync, Depends(body_of(DashboardSync, optional=True))]) -> dict[str, Any]:
        repo = repo_of(name)
        options = ["ApplyOutOfSyncOnly=true"] if body.apply_out_of_sync_only else None
        resources = [r.model_dump() for r in body.resources] if body.resources else None
        actions.sync(name, prune=body.prune, dry_run=body.dry_run, resources=resources, sync_options=options,
                     username=DASHBOARD_USER)
        tasks.fetch(repo, [name])  # resolve the branch head now, as the REST API's sync does
        return {"message": f"sync of application '{name}' requested"}

    @router.post("/ui/actions/applications/{name}/refresh", dependencies=writes, status_code=202)
    def refresh(name: str, hard: bool = False) -> dict[str, Any]:
        repo = repo_of(name)
        actions.refresh(name, hard=hard)
        tasks.fetch(repo, [name])
        return {"message": f"{'hard refresh' if hard else 'refresh'} of application '{name}' requested"}

    @router.post("/ui/actions/applications/{name}/rollback", dependencies=writes, status_code=202)
    def rollback(name: str,
                 body: Annotated[DashboardRollback, Depends(body_of(DashboardRollback))]) -> dict[str, Any]:
        actions.rollback(name, body.id, prune=body.prune, dry_run=body.dry_run)
        tasks.refresh(name)
        return {"message": f"rollback of application '{name}' to history id {body.id} requested"}

    @router.post("/ui/actions/applications/{name}/terminate", dependencies=writes)
    def terminate(name: str) -> dict[str, Any]:
        actions.terminate(name)
        return {"message": f"operation of application '{name}' is terminating"}

    @router.post("/ui/actions/applications/{name}/delete", dependencies=writes, status_code=202)
    def delete(name: str,
               body: Annotated[DashboardDelete, Depends(body_of(DashboardDelete, optional=True))]) -> dict[str, Any]:
        repo_of(name)
        tasks.delete_app(name, body.cascade)
        return {"message": f"application '{name}' delete requested"}

    return router
