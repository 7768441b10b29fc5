"""The API of projects, clusters and repositories: what `wavecd proj|cluster|repo` call.

Reads come from the catalog WaveCD's workers keep in Redis (never from a cluster, never a secret
value); project changes are checked here (Argo CD's refusals, as 4xx), stashed in Redis and applied by a
worker (`wavecd.project_admin`), whose outcome `GET /project-changes/{id}` reports.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.params import Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from scheduler.api_base import body_of
from scheduler.request_body import InvalidBody, parse_document
from shared.apps.project_admin import (
    ProjectAction,
    ProjectChange,
    add_destination,
    add_source,
    stash_change,
)
from shared.core.errors import WaveCDError
from shared.core.models import Application
from shared.pipeline import project_catalog as catalog
from shared.pipeline.services import Services
from shared.project.model import DEFAULT_PROJECT, AppProject, default_project
from shared.project.permissions import Destination, invalid_project_name
from shared.project.windows import can_sync, is_active, matching_windows, window_state
from shared.state import keys
from workers.catalogue import ProjectAdmin

_MAX_BODY = 256 * 1024
_STASH_ID = re.compile(r"[0-9a-f]{16}")


class ProjectApiError(HTTPException):
    """A refusal; the API's HTTPException handler answers it as `{"error": message, "code": status}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.message = message


class DestinationRequest(BaseModel):
    server: str = ""
    name: str = ""
    namespace: str = ""


class SourceRequest(BaseModel):
    repo_url: str = Field(alias="repoURL", min_length=1)


class ChangeAccepted(BaseModel):
    message: str
    name: str
    change: str


def _projects(svc: Services) -> dict[str, dict[str, Any]]:
    found = catalog.projects(svc.redis)
    found.setdefault(DEFAULT_PROJECT, default_project(svc.settings.app_namespace).dump())
    return found


def _load(svc: Services, name: str) -> dict[str, Any]:
    project = _projects(svc).get(name)
    if project is None:
        raise ProjectApiError(404, f"project '{name}' not found")
    return project


def _parse_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > _MAX_BODY:
        raise ProjectApiError(413, f"AppProject manifest is over the {_MAX_BODY}-byte limit")
    try:
        obj = parse_document(raw, None)  # the API's safe loader and limits (depth, nodes, aliases)
    except InvalidBody as exc:
        raise ProjectApiError(422, exc.message) from None
    if not isinstance(obj, dict):
        raise ProjectApiError(422, "the body must be one AppProject object")
    obj.setdefault("kind", "AppProject")
    try:
        project = AppProject.parse(obj)
    except WaveCDError as exc:
        raise ProjectApiError(422, exc.message) from None
    reason = invalid_project_name(project.name)
    if reason:
        raise ProjectApiError(422, reason)
    problems = project.api_problems()
    if problems:
        raise ProjectApiError(422, "; ".join(problems))
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {k: obj["metadata"][k] for k in ("name", "labels", "annotations") if k in obj["metadata"]},
            "spec": obj.get("spec") or {}}


def _parsed(project: dict[str, Any]) -> AppProject:
    """A catalog project as the model; one the cluster holds in an invalid form is a 409 naming why."""
    try:
        return AppProject.parse(project)
    except WaveCDError as exc:
        raise ProjectApiError(409, exc.message) from None


def _window_rows(project: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    parsed = _parsed(project)
    rows = []
    for index, window in enumerate(parsed.spec.sync_windows):
        rows.append({"id": index, "active": is_active(window, now), **window.dump()})
    return rows


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body `body_of` reads (after the token check, so FastAPI does not)."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}}}}


def create_project_router(svc: Services, tasks: Any, read: list[Depends], write: list[Depends]  # noqa: ANN401
                          ) -> APIRouter:
    """Routes under /api/v1 for projects, clusters and repositories; `tasks` sends Celery tasks (its
    `celery` app is routed like the workers')."""
    router = APIRouter(prefix="/api/v1")

    def send(change: ProjectChange) -> dict[str, Any]:
        key = stash_change(svc, change)
        tasks.send(ProjectAdmin(stash=key))
        return {"message": f"project '{change.name}' {change.action.value} requested", "name": change.name,
                "change": key.rsplit(":", 1)[-1]}

    def referenced_by(name: str) -> int:
        count = 0
        for doc in svc.store.all_apps().values():
            if ((doc.get("spec") or {}).get("project") or DEFAULT_PROJECT) == name:
                count += 1
        return count

    @router.get("/projects", dependencies=read, tags=["projects"])
    def list_projects() -> dict[str, Any]:
        return {"items": [p for _, p in sorted(_projects(svc).items())]}

    @router.get("/projects/{name}", dependencies=read, tags=["projects"])
    def get_project(name: str) -> dict[str, Any]:
        return _load(svc, name)

    @router.get("/projects/{name}/windows", dependencies=read, tags=["projects"])
    def list_windows(name: str) -> dict[str, Any]:
        """The project's sync windows with whether each is active now (`argocd proj windows list`)."""
        return {"items": _window_rows(_load(svc, name), datetime.now(UTC))}

    @router.post("/projects", status_code=202, response_model=ChangeAccepted, dependencies=write,
                 tags=["projects"])
    async def create_project(request: Request, upsert: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Create an AppProject from its manifest (JSON or YAML); `upsert` replaces an existing one."""
        body = await run_in_threadpool(_parse_body, await request.body())  # off the event loop
        name = body["metadata"]["name"]
        if name in catalog.projects(svc.redis) and not upsert:
            raise ProjectApiError(409, f"project '{name}' already exists")
        return send(ProjectChange(action=ProjectAction.CREATE, name=name, project=body, upsert=upsert))

    @router.delete("/projects/{name}", status_code=202, response_model=ChangeAccepted, dependencies=write,
                   tags=["projects"])
    def delete_project(name: str) -> dict[str, Any]:
        _load(svc, name)
        if name == DEFAULT_PROJECT:
            raise ProjectApiError(409, "the default project cannot be deleted")
        users = referenced_by(name)
        if users:
            raise ProjectApiError(409, f"project is referenced by {users} applications")
        return send(ProjectChange(action=ProjectAction.DELETE, name=name))

    @router.post("/projects/{name}/destinations", status_code=202, response_model=ChangeAccepted,
                 dependencies=write, tags=["projects"], openapi_extra=_json_body(DestinationRequest))
    def add_project_destination(name: str, body: Annotated[DestinationRequest, Depends(body_of(DestinationRequest))],
                                ) -> dict[str, Any]:
        project = _load(svc, name)
        if not (body.server or body.name) or (body.server and body.name):
            raise ProjectApiError(422, "a destination names a cluster by server or by name (exactly one)")
        destination = body.model_dump(exclude_defaults=True)
        destination.setdefault("namespace", body.namespace)
        try:
            AppProject.parse({**project, "spec": add_destination(project.get("spec") or {}, destination, name)})
        except WaveCDError as exc:
            raise ProjectApiError(409 if "already added" in exc.message else 422, exc.message) from None
        return send(ProjectChange(action=ProjectAction.ADD_DESTINATION, name=name, destination=destination))

    @router.post("/projects/{name}/sources", status_code=202, response_model=ChangeAccepted,
                 dependencies=write, tags=["projects"], openapi_extra=_json_body(SourceRequest))
    def add_project_source(name: str,
                           body: Annotated[SourceRequest, Depends(body_of(SourceRequest))]) -> dict[str, Any]:
        project = _load(svc, name)
        url = body.repo_url.strip()
        if "://" in url:
            try:
                parts = urlsplit(url)
            except ValueError:
                raise ProjectApiError(422, "repoURL is not a valid URL") from None
            if parts.password is not None:
                raise ProjectApiError(422, "repoURL must not carry credentials; declare a repository Secret")
        try:
            add_source(project.get("spec") or {}, url, name)
        except WaveCDError as exc:
            raise ProjectApiError(409, exc.message) from None
        return send(ProjectChange(action=ProjectAction.ADD_SOURCE, name=name, source=url))

    @router.get("/project-changes/{change}", dependencies=read, tags=["projects"])
    def change_outcome(change: str) -> dict[str, Any]:
        """`pending` until a worker applied the change, then `succeeded` or `failed` with its message."""
        if not _STASH_ID.fullmatch(change):
            raise ProjectApiError(404, f"change '{change}' not found")
        key = keys.project_stash(change)
        raw = svc.redis.get(keys.stash_result(key))
        if raw is not None:
            result = json.loads(raw)
            return {"state": "succeeded" if result["ok"] else "failed", "message": result["message"]}
        if svc.redis.exists(key):
            return {"state": "pending", "message": ""}
        raise ProjectApiError(404, f"change '{change}' not found")

    @router.get("/applications/{name}/syncwindows", dependencies=read, tags=["applications"])
    def app_sync_windows(name: str) -> dict[str, Any]:
        """Argo CD's application sync windows: assigned and active windows, and whether a sync may run now
        (`status` is what `app get` shows as SyncWindow: Sync Allowed / Sync Denied / Manual Allowed)."""
        doc = svc.store.get_app(name)
        if doc is None:
            raise ProjectApiError(404, f"application '{name}' not found")
        try:
            app = Application.parse(doc)
        except WaveCDError as exc:
            raise ProjectApiError(409, f"the application's spec is invalid: {exc.message}") from None
        project = _projects(svc).get(app.spec.project)
        if project is None:
            raise ProjectApiError(409, f"Application referencing project {app.spec.project} which does not exist")
        parsed = _parsed(project)
        dst = app.spec.destination
        name_, server = (dst.name or ""), (dst.server or "").rstrip("/")
        for cluster in catalog.clusters(svc.redis):
            if name_ and cluster.name == name_:
                server = server or cluster.server
            if server and cluster.server.rstrip("/") == server:
                name_ = name_ or cluster.name
        dest = Destination(server, name_, dst.namespace)
        now = datetime.now(UTC)
        windows = matching_windows(parsed, app.name, dest)
        state = window_state(parsed, app.name, dest, now)
        return {"assignedWindows": [w.dump() for w in windows],
                "activeWindows": [w.dump() for w in windows if is_active(w, now)],
                "canSync": can_sync(windows, now, manual=False), "canManualSync": can_sync(windows, now, manual=True),
                "status": (state.verdict.value if state else "Sync Allowed")}

    @router.get("/clusters", dependencies=read, tags=["clusters"])
    def list_clusters() -> dict[str, Any]:
        found = {c.name: c for c in catalog.clusters(svc.redis)}
        if "in-cluster" not in found:
            found["in-cluster"] = catalog.ClusterSummary(name="in-cluster", server="https://kubernetes.default.svc",
                                                         source="in-cluster")
        return {"items": [c.model_dump() for _, c in sorted(found.items())]}

    @router.get("/repositories", dependencies=read, tags=["repositories"])
    def list_repositories() -> dict[str, Any]:
        return {"items": [r.model_dump(by_alias=True) for r in sorted(catalog.repos(svc.redis), key=lambda r: r.url)]}

    return router

