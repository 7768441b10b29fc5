"""The REST API: what `wavecd app ...` and scripts call to read apps and ask for syncs, rollbacks, refreshes.

It never talks to git or to a cluster. Reads come from Redis (the status WaveCD's workers publish);
writes are checked by `shared.apps.app_actions` (Argo CD's refusals), recorded in Redis, and handed to the
workers as Celery tasks. Errors are JSON `{"error": "...", "code": N}` with the status that fits
(400 unknown query parameter or missing confirmation, 404 unknown app, 409 operation in progress,
413 body too large, 422 invalid request, 401/403 auth, 503 Redis down); a client's input never produces
a 5xx.

Authentication is a bearer token, checked before any request body is read (see
`scheduler.request_body`). `WAVECD_API_TOKEN` may do everything; `WAVECD_API_READONLY_TOKEN`, when set,
may only read. As in Argo CD, a missing or unknown token is 401 and a known token without the right is
403. Mutating calls always need a token; reads too unless `WAVECD_API_OPEN_READS=true`. When no admin
token is configured (a laptop `wavecd up`), the server makes one at start and writes it to
`<WAVECD_HOME>/api-token` (mode 0600); the CLI reads that file when no other token is given, so a local
user is authenticated without configuring anything, and nobody without access to that home directory
is. Several API replicas must share a configured token.

Writes refuse query parameters they do not know (a `?` typed into a path, as in
`DELETE /applications/demo?x=1/operation`, must not turn into a delete of `demo`), and deleting an app
needs an explicit `cascade=true|false`.

Run it with `uvicorn scheduler.api:app` (the app is built on first access) or
`uvicorn --factory scheduler.api:create_app`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import secrets
import threading
from collections.abc import Iterator
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from scheduler.api_base import ApiError, body_of, validation_message
from scheduler.api_models import (
    Accepted,
    ApplicationList,
    ApplicationView,
    DiffView,
    ErrorBody,
    Health,
    HistoryList,
    LabelSelector,
    Pending,
    ResourceDiff,
    RollbackRequest,
    SelectorError,
    SyncRequest,
    VersionInfo,
)
from scheduler.dashboard import install_dashboard  # the web UI and an offline /docs (Swagger UI bundled)
from scheduler.metrics import create_metrics_router, webhook_result
from scheduler.project_api import create_project_router  # projects, clusters, repositories
from scheduler.request_body import BodyLimitMiddleware, InvalidBody, read_document
from scheduler.task_sender import TaskSender
from scheduler.webhook import WEBHOOK_PATH, create_webhook_router
from shared.apps.app_actions import ActionConflict, ActionError, ActionInvalid, ActionNotFound, AppActions
from shared.apps.app_lifecycle import stash_manifest, stash_resource_delete
from shared.apps.app_manifests import TTL_SECONDS as MANIFESTS_TTL
from shared.apps.app_manifests import ManifestsRequest, read_manifests, request_manifests
from shared.core.errors import ConfigurationError, WaveCDError
from shared.core.models import Application
from shared.core.repo_url import redact_text
from shared.core.settings import Settings, get_settings
from shared.operation.model import public_view
from shared.pipeline.revision_metadata import record_webhook_push
from shared.pipeline.services import Services
from shared.state import keys
from shared.state.redis_conn import resolve_redis_url
from workers.catalogue import AppAction, AppAdmin

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
TOKEN_FILE_NAME = "api-token"
VERSION_PATH = "/api/version"

# Fields of the Application's metadata a client may set on create; the rest belongs to the server.
_CREATE_METADATA = ("name", "labels", "annotations", "finalizers")
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


# -- the token -------------------------------------------------------------------------------------------


def token_file(settings: Settings) -> Path:
    return settings.home / TOKEN_FILE_NAME


def laptop_token(settings: Settings) -> str:
    """The generated token for a server with none configured: reused from the home file, else created."""
    path = token_file(settings)
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise ConfigurationError(f"no WAVECD_API_TOKEN is set and the generated token cannot be written to "
                                 f"{path}: {exc.strerror or exc}; set WAVECD_API_TOKEN") from None
    log.info("no WAVECD_API_TOKEN configured: generated one in %s for the CLI", path)
    return token


def server_token(settings: Settings) -> str:
    if settings.api_token is not None and settings.api_token.get_secret_value():
        return settings.api_token.get_secret_value()
    return laptop_token(settings)


class Role(StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    READ_ONLY = "read-only"


class Tokens:
    """The server's tokens and the role each grants, compared in constant time."""

    def __init__(self, settings: Settings) -> None:
        self._admin = server_token(settings).encode()
        readonly = settings.api_readonly_token.get_secret_value() if settings.api_readonly_token else ""
        self._readonly = readonly.encode() if readonly else None
        if self._readonly is not None and secrets.compare_digest(self._readonly, self._admin):
            raise ConfigurationError("WAVECD_API_READONLY_TOKEN must differ from WAVECD_API_TOKEN")

    @property
    def admin(self) -> str:
        return self._admin.decode()

    def role(self, request: Request) -> Role:
        """The caller's role; 401 (`WWW-Authenticate: Bearer`) without a known bearer token."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>'",
                           {"WWW-Authenticate": "Bearer"})
        sent = value.strip().encode()
        if secrets.compare_digest(sent, self._admin):
            return Role.ADMIN
        if self._readonly is not None and secrets.compare_digest(sent, self._readonly):
            return Role.READ_ONLY
        raise ApiError(401, "invalid API token", {"WWW-Authenticate": "Bearer"})

    def optional_role(self, request: Request) -> Role | None:
        try:
            return self.role(request)
        except ApiError:
            return None


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def refuse_unknown_query(request: Request) -> None:
    """400 for a query parameter the route does not declare: a typo must not be silently ignored."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted({key for key in request.query_params if key not in known})
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise ApiError(400, f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(repr(u) for u in unknown)} for {request.method} {request.url.path}; "
                            f"{takes}")


class ParsedApps:
    """The app index as parsed Applications, re-parsing only entries whose stored JSON changed.

    Every webhook matches the push against all apps; in a monorepo of hundreds of apps, parsing them all
    per request would dominate the webhook's answer time.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._cache: dict[bytes, tuple[bytes, Application | None]] = {}
        self._lock = threading.Lock()

    def current(self) -> list[Application]:
        raw = self._redis.hgetall(keys.APPS)
        with self._lock:
            fresh: dict[bytes, tuple[bytes, Application | None]] = {}
            for name, doc in raw.items():
                cached = self._cache.get(name)
                if cached is not None and cached[0] == doc:
                    fresh[name] = cached
                    continue
                try:
                    fresh[name] = (doc, Application.parse(json.loads(doc)))
                except (WaveCDError, ValueError):
                    log.debug("skipping app %s with an invalid spec", name.decode(errors="replace"))
                    fresh[name] = (doc, None)
            self._cache = fresh
        return [app for _, app in fresh.values() if app is not None]


# -- views -----------------------------------------------------------------------------------------------

_INTERNAL_STATUS = ("inventory",)


def app_view(svc: Services, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """An Application with its status as Argo CD shows it; the live operation replaces the mirrored one."""
    status = {k: v for k, v in svc.store.status(name).items() if k not in _INTERNAL_STATUS}
    op = public_view(svc.store.operation(name))  # the stored JSON: a damaged document is still shown
    if op is not None:
        status["operationState"] = op
    pending = Pending(sync=svc.store.peek_sync_request(name) is not None, refresh=svc.coalescer.is_queued(name))
    return {"apiVersion": doc.get("apiVersion") or "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": doc.get("metadata") or {}, "spec": doc.get("spec") or {}, "status": status,
            "pending": pending.model_dump()}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message, code=status).model_dump(), status_code=status, headers=headers)


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}

# -- request bodies: read after the token check (a dependency, not a FastAPI body parameter) --------------

# Documented in /openapi.json under components/schemas (FastAPI only documents declared body parameters).
_BODY_MODELS: tuple[type[BaseModel], ...] = (SyncRequest, RollbackRequest)


async def manifest_body(request: Request) -> dict[str, Any]:
    """The Application manifest of a create request, parsed and checked off the event loop."""
    return await run_in_threadpool(_parse_manifest, await read_document(request))


def _body_doc(model: type[BaseModel] | None, *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` documenting a body read by `body_of` (a model) or `manifest_body` (None)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"} if model else {"type": "object"}
    types = ("application/json",) if model else ("application/json", "application/yaml")
    return {"requestBody": {"required": required, "content": {t: {"schema": schema} for t in types}}}


def _version_info(detailed: bool) -> dict[str, Any]:
    try:
        number = version("wavecd")
    except PackageNotFoundError:
        number = "0.0.0+unknown"
    info = VersionInfo(version=f"v{number}")
    if detailed:
        info.python_version = platform.python_version()
        info.platform = f"{platform.system().lower()}/{platform.machine().lower()}"
    return info.model_dump(by_alias=True, exclude_none=True)


# -- the application -------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, services: Services | None = None,
               sender: TaskSender | None = None) -> FastAPI:
    """The API server. Tests pass their own settings/services; production reads `WAVECD_*`."""
    settings = settings or (services.settings if services is not None else get_settings())
    svc = services or Services(settings)
    tokens = Tokens(settings)
    redis_url = resolve_redis_url(settings)
    tasks = sender or TaskSender(redis_url, svc.coalescer)
    actions = AppActions(svc.store, svc.locks)

    api = FastAPI(title="WaveCD API", version="1", responses=_ERROR_RESPONSES, docs_url=None, redoc_url=None,
                  description="GitOps continuous delivery for Kubernetes, Argo CD-compatible. "
                              "Authenticate with `Authorization: Bearer <token>`.")
    api.state.services = svc
    api.state.tasks = tasks
    # Every body is capped (the webhook caps its own, larger); see scheduler.request_body.
    api.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes, exempt_paths={WEBHOOK_PATH})
    _document_bodies(api)

    _install_error_handlers(api, redis_url)
    install_dashboard(api, svc, tasks, tokens.admin)

    def require_read(request: Request) -> None:
        if not settings.api_open_reads:
            tokens.role(request)

    def require_write(request: Request) -> None:
        if tokens.role(request) is not Role.ADMIN:
            raise ApiError(403, "permission denied: the read-only API token may not change anything")
        refuse_unknown_query(request)

    read = [Depends(require_read)]
    write = [Depends(require_write)]

    def load(name: str) -> dict[str, Any]:
        doc = svc.store.get_app(name)
        if doc is None:
            raise ApiError(404, f"application '{name}' not found")
        return doc

    # -- probes ----------------------------------------------------------------------------------------
    @api.get("/healthz", response_model=Health, tags=["probes"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @api.get("/readyz", response_model=Health, tags=["probes"])
    def readyz() -> dict[str, str]:
        """Redis answers."""
        svc.redis.ping()
        return {"status": "ok"}

    @api.get(VERSION_PATH, response_model=VersionInfo, response_model_exclude_none=True, tags=["probes"])
    def get_version(request: Request) -> dict[str, Any]:
        """The server's version, as Argo CD's `/api/version`; build details only to an authenticated caller."""
        return _version_info(detailed=tokens.optional_role(request) is not None)

    router = APIRouter(prefix=API_PREFIX, tags=["applications"])

    # -- reads -----------------------------------------------------------------------------------------
    @router.get("/applications", response_model=ApplicationList, dependencies=read)
    def list_applications(
        project: Annotated[list[str], Query(description="only apps of these projects (repeatable)")] = [],  # noqa: B006
        selector: Annotated[str | None, Query(description="label selector, e.g. 'team=a,tier!=db'")] = None,
    ) -> dict[str, Any]:
        try:
            wanted = LabelSelector.parse(selector) if selector else None
        except SelectorError as exc:
            raise ApiError(422, f"invalid selector: {exc}") from None
        items = []
        for name, doc in sorted(svc.store.all_apps().items()):
            if project and (doc.get("spec") or {}).get("project", "default") not in project:
                continue
            labels = (doc.get("metadata") or {}).get("labels") or {}
            if wanted is not None and not wanted.matches({str(k): str(v) for k, v in labels.items()}):
                continue
            items.append(app_view(svc, name, doc))
        return {"items": items}

    @router.get("/applications/{name}", response_model=ApplicationView, dependencies=read)
    def get_application(name: str) -> dict[str, Any]:
        return app_view(svc, name, load(name))

    @router.get("/applications/{name}/diff", response_model=DiffView, dependencies=read)
    def get_diff(name: str) -> dict[str, Any]:
        """Masked unified diffs of the OutOfSync resources found by the app's last comparison."""
        load(name)
        status = svc.store.status(name)
        raw = svc.redis.get(keys.diff(name))
        diffs: dict[str, str] = json.loads(raw) if raw else {}
        sync = status.get("sync") or {}
        return {"name": name, "syncStatus": sync.get("status") or "Unknown", "revision": sync.get("revision"),
                "reconciledAt": status.get("reconciledAt"),
                "items": [ResourceDiff(resource=k, diff=v).model_dump() for k, v in sorted(diffs.items())]}

    @router.get("/applications/{name}/history", response_model=HistoryList, dependencies=read)
    def get_history(name: str) -> dict[str, Any]:
        load(name)
        return {"items": list(svc.store.status(name).get("history") or [])}

    # -- actions ---------------------------------------------------------------------------------------
    @router.post("/applications/{name}/sync", response_model=Accepted, status_code=202, dependencies=write,
                 openapi_extra=_body_doc(SyncRequest, required=False))
    def sync(name: str, req: Annotated[SyncRequest, Depends(body_of(SyncRequest, optional=True))]
             ) -> dict[str, Any]:
        """Ask for a sync; it starts when a worker takes the app's refresh (see `status.operationState`)."""
        doc = load(name)
        recorded = actions.sync(name, prune=req.prune, dry_run=req.dry_run, revision=req.revision,
                                resources=[r.model_dump() for r in req.resources] if req.resources else None,
                                sync_options=req.sync_options)
        if req.revision:
            tasks.refresh(name)
        else:  # resolve the branch head now: a commit pushed without a webhook is synced too
            tasks.fetch(_repo_of(doc), [name])
        return {"message": f"sync of application '{name}' requested", "name": name, "request": recorded}

    @router.post("/applications/{name}/rollback", response_model=Accepted, status_code=202,
                 dependencies=write, openapi_extra=_body_doc(RollbackRequest))
    def rollback(name: str, body: Annotated[RollbackRequest, Depends(body_of(RollbackRequest))]) -> dict[str, Any]:
        recorded = actions.rollback(name, body.id, prune=body.prune, dry_run=body.dry_run)
        tasks.refresh(name)
        return {"message": f"rollback of application '{name}' to history id {body.id} requested",
                "name": name, "request": recorded}

    @router.delete("/applications/{name}/operation", response_model=Accepted, dependencies=write)
    def terminate_operation(name: str) -> dict[str, Any]:
        actions.terminate(name)
        return {"message": f"operation of application '{name}' is terminating", "name": name}

    @router.post("/applications/{name}/refresh", response_model=Accepted, status_code=202, dependencies=write)
    def refresh(name: str, hard: Annotated[bool, Query(description="also drop cached manifests")] = False,
                ) -> dict[str, Any]:
        doc = load(name)
        actions.refresh(name, hard=hard)
        tasks.fetch(_repo_of(doc), [name])
        kind = "hard refresh" if hard else "refresh"
        return {"message": f"{kind} of application '{name}' requested", "name": name}

    @router.post("/applications", response_model=Accepted, status_code=202, dependencies=write,
                 openapi_extra=_body_doc(None))
    def create_application(obj: Annotated[dict[str, Any], Depends(manifest_body)]) -> dict[str, Any]:
        """Create an Application from its manifest (JSON with a JSON content type, else YAML)."""
        name = obj["metadata"]["name"]
        if svc.store.get_app(name) is not None:
            raise ApiError(409, f"application '{name}' already exists")
        key = stash_manifest(svc, obj)
        tasks.send(AppAdmin(action=AppAction.CREATE, stash=key))
        return {"message": f"application '{name}' create requested", "name": name}

    @router.delete("/applications/{name}", response_model=Accepted, status_code=202, dependencies=write)
    def delete_application(
        name: str,
        cascade: Annotated[bool | None, Query(description="required: true also deletes the app's resources, "
                                                          "false keeps them")] = None,
    ) -> dict[str, Any]:
        load(name)
        if cascade is None:
            raise ApiError(400, "say what to delete: cascade=true deletes the application and its resources, "
                                "cascade=false only the application")
        tasks.delete_app(name, cascade)
        return {"message": f"application '{name}' delete requested", "name": name}

    @router.put("/applications/{name}/spec", response_model=Accepted, status_code=202, dependencies=write)
    def update_spec(name: str, spec: Annotated[Any, Depends(read_document)]) -> dict[str, Any]:
        """Replace an application's spec (Argo CD's UpdateSpec; `wavecd app set/unset/patch`)."""
        doc = load(name)
        if not isinstance(spec, dict):
            raise ApiError(422, "the body must be the application's spec, one object")
        obj = _parse_manifest({**doc, "metadata": {**(doc.get("metadata") or {}), "name": name}, "spec": spec})
        key = stash_manifest(svc, obj)
        tasks.send(AppAdmin(action=AppAction.UPDATE, stash=key))
        return {"message": f"application '{name}' spec update requested", "name": name}

    @router.delete("/applications/{name}/resource", response_model=Accepted, status_code=202, dependencies=write)
    def delete_resource(
        name: str,
        kind: Annotated[str, Query(min_length=1, description="the object's kind")],
        resource_name: Annotated[str, Query(alias="resourceName", min_length=1, description="the object's name")],
        group: Annotated[str, Query(description="API group ('' for the core group)")] = "",
        namespace: Annotated[str, Query(description="namespace ('' for a cluster-scoped object)")] = "",
        orphan: Annotated[bool, Query(description="leave the object's dependents in place")] = False,
    ) -> dict[str, Any]:
        """Delete one object the application manages (Argo CD's DeleteResource)."""
        load(name)
        wanted = {"group": group, "kind": kind, "namespace": namespace, "name": resource_name}
        entry = next((r for r in svc.store.status(name).get("resources") or []
                      if {k: str(r.get(k) or "") for k in wanted} == wanted), None)
        if entry is None:
            raise ApiError(404, f"application '{name}' has no resource {group}/{kind} {namespace}/{resource_name}")
        tasks.send(AppAdmin(action=AppAction.DELETE_RESOURCE, stash=stash_resource_delete(svc, name, entry, orphan)))
        return {"message": f"delete of {group}/{kind} {namespace}/{resource_name} of application '{name}' "
                           "requested", "name": name}

    @router.post("/applications/{name}/manifests", response_model=Accepted, status_code=202, dependencies=read)
    def request_app_manifests(
        name: str,
        source: Annotated[Literal["git", "live"], Query(description="git: the target manifests; live: the "
                                                                    "cluster's objects")] = "git",
        revision: Annotated[str | None, Query(min_length=1, max_length=255,
                                              description="with source=git: this revision")] = None,
    ) -> dict[str, Any]:
        """Ask a worker for the app's manifests; read them at `.../manifests/{id}` (Secret values masked)."""
        load(name)
        request_id = request_manifests(svc, name, source, revision)
        tasks.send(AppAdmin(action=AppAction.MANIFESTS, request=request_id))
        return {"message": f"{source} manifests of application '{name}' requested", "name": name,
                "request": {"id": request_id}}

    @router.get("/applications/{name}/manifests/{request_id}", response_model=ManifestsRequest,
                dependencies=read)
    def get_app_manifests(name: str, request_id: str) -> ManifestsRequest:
        record = read_manifests(svc, request_id) if re.fullmatch(r"[0-9a-f]{16}", request_id) else None
        if record is None or record.app != name:
            raise ApiError(404, f"no manifests request {request_id} for application '{name}' (they expire after "
                                f"{MANIFESTS_TTL}s)")
        return record

    api.include_router(router)
    api.include_router(create_project_router(svc, tasks, read, write))
    api.include_router(create_metrics_router(svc))  # /metrics; webhook outcomes are counted through it
    parsed_apps = ParsedApps(svc.redis)

    def list_apps() -> Iterator[Application]:
        return iter(parsed_apps.current())

    def enqueue_fetch(repo_url: str, apps: list[str], revision: str | None) -> None:
        record_webhook_push(svc.redis, revision)  # the dashboard says which syncs a webhook started
        # The matched apps are refreshed as soon as the repository is fetched; the fetch's own tree
        # comparison then finds what paths cannot show (a kustomize base outside an overlay's path).
        tasks.fetch(repo_url, [], urgent=apps)

    api.include_router(create_webhook_router(lambda: settings, list_apps, enqueue_fetch, webhook_result))
    return api


def _repo_of(doc: dict[str, Any]) -> str:
    try:
        return Application.parse(doc).spec.primary_source.repo_url
    except WaveCDError as exc:
        raise ApiError(409, f"the application's spec is invalid: {exc.message}") from None


def _parse_manifest(obj: Any) -> dict[str, Any]:  # noqa: ANN401 - a parsed document
    if not isinstance(obj, dict):
        raise ApiError(422, "the body must be one Application object")
    if obj.get("kind", "Application") != "Application":
        raise ApiError(422, f"kind must be Application, not {obj.get('kind')!r}")
    try:
        app = Application.parse(obj)
    except WaveCDError as exc:
        raise ApiError(422, exc.message) from None
    meta = {k: app.metadata[k] for k in _CREATE_METADATA if k in app.metadata}
    name = str(meta["name"])
    if len(name) > 253 or not _NAME_RE.fullmatch(name):
        raise ApiError(422, f"metadata.name {name!r} is not a valid Kubernetes name")
    return {"apiVersion": obj.get("apiVersion") or "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": meta, "spec": obj["spec"]}


def _document_bodies(api: FastAPI) -> None:
    """Add the models `body_of` reads to /openapi.json's components, where the routes' `$ref`s point."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _BODY_MODELS:
                doc = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
                components.update(doc.pop("$defs", {}))
                components[model.__name__] = doc
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


ACTION_STATUS: dict[type[ActionError], int] = {ActionNotFound: 404, ActionConflict: 409, ActionInvalid: 422}


def action_status(exc: ActionError) -> int:
    """The HTTP status of a refused action: the refusal's type decides (Argo CD's codes)."""
    return next((code for kind, code in ACTION_STATUS.items() if isinstance(exc, kind)), 400)


def _install_error_handlers(api: FastAPI, redis_url: str) -> None:
    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @api.exception_handler(InvalidBody)
    async def _invalid_body(_: Request, exc: InvalidBody) -> JSONResponse:
        return _error(422, exc.message)

    @api.exception_handler(ActionError)
    async def _action_error(_: Request, exc: ActionError) -> JSONResponse:
        return _error(action_status(exc), exc.message)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, validation_message(exc))

    @api.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @api.exception_handler(redis.RedisError)
    async def _redis_down(_: Request, exc: redis.RedisError) -> JSONResponse:
        log.warning("Redis error: %s", redact_text(str(exc), redis_url))
        return _error(503, f"Redis is unavailable: {redact_text(str(exc), redis_url)}")

    @api.exception_handler(BrokerError)
    async def _broker_down(_: Request, exc: BrokerError) -> JSONResponse:
        log.warning("task queue error: %s", redact_text(str(exc), redis_url))
        return _error(503, f"the task queue (Redis) is unavailable: {redact_text(str(exc), redis_url)}")

    @api.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the API")
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")


def __getattr__(name: str) -> Any:  # noqa: ANN401 - the module's lazy ASGI attribute
    """`scheduler.api:app` for uvicorn: built on first access, so importing this module starts nothing."""
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
