"""The REST API: what `wavecd app ...` and scripts call to read apps and ask for syncs, rollbacks, refreshes.

It never talks to git or to a cluster. Reads come from Redis (the status WaveCD's workers publish);
writes are checked by `shared.app_actions` (Argo CD's refusals), recorded in Redis, and handed to the
workers as Celery tasks. Errors are JSON `{"error": "...", "code": N}` with the status that fits
(404 unknown app, 409 operation in progress, 422 invalid request, 401/403 auth, 503 Redis down); a
client's input never produces a 5xx.

Authentication is one bearer token (`WAVECD_API_TOKEN`). Mutating calls always need it; reads need it
too unless `WAVECD_API_OPEN_READS=true`. When no token is configured (a laptop `wavecd up`), the server
makes one at start and writes it to `<WAVECD_HOME>/api-token` (mode 0600); the CLI reads that file when
no other token is given, so a local user is authenticated without configuring anything, and nobody
without access to that home directory is. Several API replicas must share a configured token.

Run it with `uvicorn scheduler.api:app` (the app is built on first access) or
`uvicorn --factory scheduler.api:create_app`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import redis
import yaml
from celery import Celery
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from starlette.exceptions import HTTPException as StarletteHTTPException

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
)
from shared.app_actions import ActionError, AppActions
from shared.app_lifecycle import stash_manifest
from shared.app_store import APPS_KEY
from shared.coalesce import Coalescer
from shared.errors import ConfigurationError, WaveCDError
from shared.models import Application
from shared.operation import public_view
from shared.reconcile import diff_key
from shared.redis_conn import resolve_redis_url
from shared.repo_url import redact_text
from shared.services import Services
from shared.settings import Settings, get_settings
from workers.celery_app import QUEUES, TASK_ROUTES

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
TOKEN_FILE_NAME = "api-token"
_MAX_MANIFEST_BYTES = 1024 * 1024

# Fields of the Application's metadata a client may set on create; the rest belongs to the server.
_CREATE_METADATA = ("name", "labels", "annotations", "finalizers")
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


class ApiError(Exception):
    """An error answered as `{"error": message, "code": status}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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


# -- enqueueing work -------------------------------------------------------------------------------------


class TaskSender:
    """Sends WaveCD's tasks by name to the workers' queues, with the workers' routing and serializer.

    A Celery app of its own (not the workers' configured one), bound to this server's Redis, so the
    API process starts nothing and reads no worker configuration to send a message.
    """

    def __init__(self, broker_url: str, coalescer: Coalescer) -> None:
        self.celery = Celery("wavecd-api", broker=broker_url, set_as_current=False)
        self.celery.conf.update(task_routes=TASK_ROUTES, task_serializer="json", accept_content=["json"],
                                task_default_queue=QUEUES[0], broker_connection_retry_on_startup=False)
        self.coalescer = coalescer

    def _send(self, task: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> None:
        assert task in TASK_ROUTES, f"unknown task {task}"
        self.celery.send_task(task, args=args, kwargs=kwargs or {},
                              retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2})

    def refresh(self, name: str) -> bool:
        """Coalesced like `workers.tasks.request_refresh`: one queued `diff` per app at most."""
        if not self.coalescer.claim_enqueue(name):
            return False
        self._send("wavecd.diff", [name])
        return True

    def fetch(self, repo_url: str, due: list[str], urgent: list[str] | None = None) -> None:
        """Fetch the repository, then refresh `urgent` at once, then `due` and any app whose source changed."""
        self._send("wavecd.fetch", [repo_url], {"due": list(due), "urgent": list(urgent or [])})

    def app_admin(self, action: str, name: str, cascade: bool = False) -> None:
        self._send("wavecd.app_admin", [action, name, cascade])

    def close(self) -> None:
        self.celery.close()


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
        raw = self._redis.hgetall(APPS_KEY)
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
    op = public_view(svc.store.operation(name))
    if op is not None:
        status["operationState"] = op
    pending = Pending(sync=svc.store.peek_sync_request(name) is not None, refresh=svc.coalescer.is_queued(name))
    return {"apiVersion": doc.get("apiVersion") or "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": doc.get("metadata") or {}, "spec": doc.get("spec") or {}, "status": status,
            "pending": pending.model_dump()}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message, code=status).model_dump(), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}


# -- the application -------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, services: Services | None = None,
               sender: TaskSender | None = None) -> FastAPI:
    """The API server. Tests pass their own settings/services; production reads `WAVECD_*`."""
    settings = settings or (services.settings if services is not None else get_settings())
    svc = services or Services(settings)
    token = server_token(settings)
    redis_url = resolve_redis_url(settings)
    tasks = sender or TaskSender(redis_url, svc.coalescer)
    actions = AppActions(svc.store, svc.locks)

    api = FastAPI(title="WaveCD API", version="1", responses=_ERROR_RESPONSES, docs_url=None, redoc_url=None,
                  description="GitOps continuous delivery for Kubernetes, Argo CD-compatible. "
                              "Authenticate with `Authorization: Bearer <token>`.")
    api.state.services = svc
    api.state.tasks = tasks

    _install_error_handlers(api, redis_url)
    from scheduler.dashboard import install_dashboard  # the web UI and an offline /docs (Swagger UI bundled)
    install_dashboard(api, svc, tasks, token)

    def check_token(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>'",
                           {"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(403, "invalid API token")

    def require_read(request: Request) -> None:
        if not settings.api_open_reads:
            check_token(request)

    def require_write(request: Request) -> None:
        check_token(request)

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
        raw = svc.redis.get(diff_key(name))
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
    @router.post("/applications/{name}/sync", response_model=Accepted, status_code=202, dependencies=write)
    def sync(name: str, body: Annotated[SyncRequest | None, Body()] = None) -> dict[str, Any]:
        """Ask for a sync; it starts when a worker takes the app's refresh (see `status.operationState`)."""
        doc = load(name)
        req = body or SyncRequest()
        recorded = actions.sync(name, prune=req.prune, dry_run=req.dry_run, revision=req.revision,
                                resources=[r.model_dump() for r in req.resources] if req.resources else None,
                                sync_options=req.sync_options)
        if req.revision:
            tasks.refresh(name)
        else:  # resolve the branch head now: a commit pushed without a webhook is synced too
            tasks.fetch(_repo_of(doc), [name])
        return {"message": f"sync of application '{name}' requested", "name": name, "request": recorded}

    @router.post("/applications/{name}/rollback", response_model=Accepted, status_code=202,
                 dependencies=write)
    def rollback(name: str, body: RollbackRequest) -> dict[str, Any]:
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

    @router.post("/applications", response_model=Accepted, status_code=202, dependencies=write)
    async def create_application(request: Request) -> dict[str, Any]:
        """Create an Application from its manifest (JSON, or YAML with a YAML content type)."""
        raw = await request.body()
        if len(raw) > _MAX_MANIFEST_BYTES:
            raise ApiError(413, f"Application manifest is over the {_MAX_MANIFEST_BYTES}-byte limit")
        obj = _parse_manifest(raw)
        name = obj["metadata"]["name"]
        if svc.store.get_app(name) is not None:
            raise ApiError(409, f"application '{name}' already exists")
        key = stash_manifest(svc, obj)
        tasks.app_admin("create", key)
        return {"message": f"application '{name}' create requested", "name": name}

    @router.delete("/applications/{name}", response_model=Accepted, status_code=202, dependencies=write)
    def delete_application(
        name: str, cascade: Annotated[bool, Query(description="also delete the app's resources")] = True,
    ) -> dict[str, Any]:
        load(name)
        tasks.app_admin("delete", name, cascade)
        return {"message": f"application '{name}' delete requested", "name": name}

    api.include_router(router)
    from scheduler.project_api import create_project_router  # projects, clusters, repositories
    api.include_router(create_project_router(svc, tasks, read, write))
    create_webhook_router = _optional("scheduler.webhook", "create_webhook_router")
    create_metrics_router = _optional("scheduler.metrics", "create_metrics_router")
    on_result = None
    if create_metrics_router is not None:
        # The hook for /metrics: `create_metrics_router(services) -> APIRouter`; when the metrics module
        # also has `webhook_result(provider, result)`, webhook outcomes are counted through it.
        api.include_router(create_metrics_router(svc))
        on_result = _optional("scheduler.metrics", "webhook_result")
    if create_webhook_router is not None:
        parsed_apps = ParsedApps(svc.redis)

        def list_apps() -> Iterator[Application]:
            return iter(parsed_apps.current())

        def enqueue_fetch(repo_url: str, apps: list[str], _revision: str | None) -> None:
            # The matched apps are refreshed as soon as the repository is fetched; the fetch's own tree
            # comparison then finds what paths cannot show (a kustomize base outside an overlay's path).
            tasks.fetch(repo_url, [], urgent=apps)

        api.include_router(create_webhook_router(lambda: settings, list_apps, enqueue_fetch, on_result))
    return api


def _repo_of(doc: dict[str, Any]) -> str:
    try:
        return Application.parse(doc).spec.primary_source.repo_url
    except WaveCDError as exc:
        raise ApiError(409, f"the application's spec is invalid: {exc.message}") from None


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        obj = yaml.safe_load(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ApiError(422, f"the body is not a JSON or YAML document: {str(exc).splitlines()[0]}") from None
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


def _optional(module_name: str, attr: str) -> Callable[..., Any] | None:
    """A hook supplied by another module when it exists (the webhook receiver, metrics)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    return getattr(module, attr, None)


def _install_error_handlers(api: FastAPI, redis_url: str) -> None:
    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @api.exception_handler(ActionError)
    async def _action_error(_: Request, exc: ActionError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

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
