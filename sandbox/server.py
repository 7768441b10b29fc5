"""The HTTP front of the emulator: Kubernetes REST paths on a threaded stdlib server over loopback.

It parses paths, query parameters and bodies the way kube-apiserver does, calls `sandbox.store`, and
renders objects, lists, watch streams and `Status` errors. It also counts requests per (verb, resource)
so tests and benchmarks can check how many calls the product makes (`GET/DELETE /sandbox/requests`).
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from sandbox import discovery, watch
from sandbox.collector import Collector
from sandbox.errors import ApiError, bad_request
from sandbox.resources import ResourceType
from sandbox.schema import decode_pairs
from sandbox.selectors import labels_match, parse_field_selector, parse_label_selector
from sandbox.store import FieldValidation, Store, WriteOptions
from sandbox.watch import WatchOptions

_JSON = "application/json"
# Resources whose DELETE answers with the deleted object rather than a Status (their registries set
# ReturnDeletedObject); custom resources do too, and objects held by finalizers always do.
_DELETE_RETURNS_OBJECT = frozenset({
    ("", "pods"), ("", "services"), ("", "namespaces"), ("", "serviceaccounts"), ("", "resourcequotas"),
    ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("storage.k8s.io", "storageclasses"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
})


@dataclass
class Route:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or a cluster-scoped kind)
    name: str
    subresource: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: SandboxServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class SandboxServer:
    """A Kubernetes API emulator serving on `host:port` (port 0 picks a free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, simulate_controllers: bool = False,
                 rollout_seconds: float = 2.0, watch_history: int = 5000) -> None:
        self.store = Store(history=watch_history)
        self._httpd = _Server((host, port), self)
        self.host, self.port = self._httpd.server_address[0], self._httpd.server_address[1]
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.collector = Collector(self.store)
        self.simulator = None
        if simulate_controllers:
            from sandbox.controllers import ControllerSimulator

            self.simulator = ControllerSimulator(self.store, rollout_seconds=rollout_seconds)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        self.collector.start()
        if self.simulator is not None:
            self.simulator.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.simulator is not None:
            self.simulator.stop()
        self.collector.stop()
        with self.store.changed:
            self.store.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- counters ------------------------------------------------------------------------------

    def count(self, verb: str, resource: str) -> None:
        with self._counts_lock:
            self._counts[(verb, resource)] += 1

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far, keyed by (verb, resource), e.g. ("patch", "deployments")."""
        with self._counts_lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    # ----- test helpers --------------------------------------------------------------------------

    def write_kubeconfig(self, path: str | Path) -> str:
        """Write a kubeconfig (cluster, context and user all named "sandbox"; no TLS, no auth)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {}}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox",
                                                        "namespace": "default"}}],
            "current-context": "sandbox",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return str(target)

    def set_status(self, api_version: str, kind: str, namespace: str | None, name: str,
                   status: dict[str, Any]) -> dict[str, Any]:
        """Replace an object's status, as a controller would; returns the stored object."""
        rt = self.store.registry.by_gvk(api_version, kind)
        if rt is None:
            raise ApiError(404, f"no kind {kind!r} is registered for version {api_version!r}")
        return self.store.set_status(rt, namespace or "", name, status)


def _first(params: dict[str, list[str]], key: str, default: str | None = None) -> str | None:
    values = params.get(key)
    return values[0] if values else default


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "wavecd-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    # ----- plumbing ------------------------------------------------------------------------------

    @property
    def owner(self) -> SandboxServer:
        return self.server.owner

    @property
    def store(self) -> Store:
        return self.server.owner.store

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(self, code: int, payload: Any, content_type: str = _JSON, warnings: list[str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(code)
        for warning in warnings or ():
            self.send_header("Warning", "299 - " + json.dumps(warning))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _decode(self, raw: bytes) -> Any:
        content_type = (self.headers.get("Content-Type") or _JSON).split(";")[0].strip().lower()
        try:
            if content_type in (_JSON, "*/*", ""):
                return json.loads(raw or b"null", object_pairs_hook=decode_pairs)
            if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
                return yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding request body: {type(exc).__name__}") from None
        raise ApiError(415, f'the body of the request was in an unknown format - accepted media types include: '
                            f'application/json, application/yaml (got "{content_type}")')

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        raw = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        try:
            self._route(method, url.path, params, raw)
        except ApiError as err:
            self._send(err.code, err.to_status())
        except BrokenPipeError:
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer like an apiserver
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            self._send(500, ApiError(500, f"internal error in the sandbox: {type(exc).__name__}").to_status())

    # ----- routing -------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, list[str]], raw: bytes) -> None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["sandbox", "requests"]:
            if method == "DELETE":
                self.owner.reset_counts()
            counts = [{"verb": v, "resource": r, "count": c}
                      for (v, r), c in sorted(self.owner.request_counts().items())]
            self._send(200, {"requests": counts})
            return
        if parts[:1] == ["apis"] and len(parts) >= 2 and parts[1] not in self.store.registry.group_versions():
            # kube-apiserver's mux has no handler for a group nobody serves: a plain-text 404, not a Status
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        if method == "GET" and len(parts) <= 3 and self._discovery(parts):
            return
        if parts[:1] == ["api"] and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:1] in (["api"], ["apis"]):
            raise ApiError(404, "the server could not find the requested resource")
        else:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        route = self._resolve(group, version, rest)
        self._serve(method, route, params, raw)

    def _discovery(self, parts: list[str]) -> bool:
        registry = self.store.registry
        doc: Any = None
        if parts == ["version"]:
            doc = discovery.VERSION_INFO
        elif parts in (["healthz"], ["livez"], ["readyz"]):
            self.owner.count("get", "healthz")
            self._send(200, b"ok", "text/plain")
            return True
        elif parts == ["api"]:
            doc = discovery.api_versions()
        elif parts == ["api", "v1"]:
            doc = discovery.resource_list(registry, "", "v1")
        elif parts == ["apis"]:
            doc = discovery.api_group_list(registry)
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(registry, parts[1], parts[2])
        else:
            return False
        self.owner.count("get", "discovery")
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource")
        self._send(200, doc)
        return True

    def _resolve(self, group: str, version: str, rest: list[str]) -> Route:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        rt = self.store.registry.by_path(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not ((sub == "status" and rt.status) or (sub == "scale" and rt.scale is not None)
                        or (sub == "finalize" and rt.kind == "Namespace" and not rt.group)):
            raise ApiError(404, "the server could not find the requested resource")
        if rt.namespaced and namespace is None and name:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(rt, namespace if rt.namespaced else None, name, sub)

    def _manager(self, params: dict[str, list[str]]) -> str:
        manager = _first(params, "fieldManager")
        if manager:
            return manager
        agent = self.headers.get("User-Agent") or ""
        return agent.split("/", 1)[0][:128]

    @staticmethod
    def _field_validation(params: dict[str, list[str]], options_kind: str) -> FieldValidation:
        value = _first(params, "fieldValidation") or ""
        if not value:
            return FieldValidation.WARN
        try:
            return FieldValidation(value)
        except ValueError:
            message = f'Unsupported value: "{value}": supported values: "", "Ignore", "Strict", "Warn"'
            raise ApiError(422, f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: {message}', "Invalid",
                           group="meta.k8s.io", kind=options_kind,
                           causes=[{"reason": "FieldValueNotSupported", "message": message,
                                    "field": "fieldValidation"}]) from None

    def _dry_run(self, params: dict[str, list[str]], options: dict[str, Any] | None = None) -> bool:
        values = list(params.get("dryRun", [])) + list((options or {}).get("dryRun") or [])
        for value in values:
            if value != "All":
                raise ApiError(400, f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def _serve(self, method: str, route: Route, params: dict[str, list[str]], raw: bytes) -> None:
        rt, ns, name, sub = route.rt, route.namespace or "", route.name, route.subresource
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        store = self.store
        if sub == "scale" and name and method in ("GET", "PUT", "PATCH"):
            self._scale(method, route, params, raw)
        elif sub == "finalize" and method != "PUT":
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")
        elif method == "GET" and name:
            self.owner.count("get", resource)
            self._send(200, store.get(rt, ns, name))
        elif method == "GET":
            verb = "watch" if _bool(_first(params, "watch")) else "list"
            self.owner.count(verb, resource)
            self._require(rt, verb)
            if verb == "watch":
                self._watch(rt, route.namespace, params)
            else:
                self._list(rt, route.namespace, params)
        elif method == "POST":
            self.owner.count("create", resource)
            if name:
                raise ApiError(405, 'the server does not allow this method on the requested resource',
                               "MethodNotAllowed")
            self._require(rt, "create")
            if rt.namespaced and route.namespace is None:
                raise ApiError(404, "the server could not find the requested resource")
            opts = WriteOptions(self._dry_run(params), self._manager(params),
                                field_validation=self._field_validation(params, "CreateOptions"))
            self._send(201, store.create(rt, ns, self._decode(raw), opts), warnings=opts.warnings)
        elif method == "PUT" and name:
            self.owner.count("update", resource)
            self._require(rt, "update")
            opts = WriteOptions(self._dry_run(params), self._manager(params), subresource=sub,
                                field_validation=self._field_validation(params, "UpdateOptions"))
            self._send(200, store.update(rt, ns, name, self._decode(raw), opts), warnings=opts.warnings)
        elif method == "PATCH" and name:
            self.owner.count("patch", resource)
            self._require(rt, "patch")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            force = _first(params, "force")
            if force is not None and content_type != "application/apply-patch+yaml":
                raise ApiError(422, "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be "
                                    "specified for non-apply patch", "Invalid")
            opts = WriteOptions(self._dry_run(params), self._manager(params) if content_type !=
                                "application/apply-patch+yaml" else (_first(params, "fieldManager") or ""),
                                force=_bool(force), subresource=sub,
                                field_validation=self._field_validation(params, "PatchOptions"))
            obj, created = store.patch(rt, ns, name, content_type, raw, opts)
            self._send(201 if created else 200, obj, warnings=opts.warnings)
        elif method == "DELETE":
            # As in Kubernetes, a DELETE with a body takes its options from the body alone: the query
            # string (dryRun, propagationPolicy, ...) is then ignored.
            has_body = bool(raw.strip())
            options = self._decode(raw) if has_body else {}
            options = options if isinstance(options, dict) else {}
            if not has_body:
                for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
                    value = _first(params, key)
                    if value is not None:
                        options[key] = _bool(value) if key == "orphanDependents" else value
            dry_run = self._dry_run({} if has_body else params, options)
            if name:
                self.owner.count("delete", resource)
                self._require(rt, "delete")
                self._delete_one(rt, ns, name, options, dry_run)
            else:
                self.owner.count("delete", resource)
                self._require(rt, "deletecollection")
                self._delete_collection(rt, route.namespace, params, options, dry_run)
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")

    def _scale(self, method: str, route: Route, params: dict[str, list[str]], raw: bytes) -> None:
        rt, ns, name = route.rt, route.namespace or "", route.name
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}[method]
        self.owner.count(verb, f"{rt.plural}/scale")
        if method == "GET":
            self._send(200, self.store.get_scale(rt, ns, name))
            return
        opts = WriteOptions(self._dry_run(params), self._manager(params), subresource="scale",
                            field_validation=self._field_validation(
                                params, "UpdateOptions" if method == "PUT" else "PatchOptions"))
        if method == "PUT":
            self._send(200, self.store.update_scale(rt, ns, name, self._decode(raw), opts))
        else:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            self._send(200, self.store.patch_scale(rt, ns, name, content_type, raw, opts))

    @staticmethod
    def _require(rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")

    def _predicate(self, rt: ResourceType, params: dict[str, list[str]]) -> Any:
        labels = parse_label_selector(_first(params, "labelSelector"))
        fields = parse_field_selector(_first(params, "fieldSelector"), rt.kind)
        return lambda obj: labels_match(labels, obj) and fields(obj)

    def _list(self, rt: ResourceType, namespace: str | None, params: dict[str, list[str]]) -> None:
        items, rv = self.store.list(rt, namespace, self._predicate(rt, params))
        meta: dict[str, Any] = {"resourceVersion": rv}
        token = _first(params, "continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, rv = int(state["start"]), str(state["rv"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "continue key is not valid: illegal base64 data") from None
            items = items[start:]
            meta["resourceVersion"] = rv
        else:
            start = 0
        limit = int(_first(params, "limit") or 0)
        if limit > 0 and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": start + limit, "rv": meta["resourceVersion"]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if not rt.custom:
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        self._send(200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items})

    def _delete_one(self, rt: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool) -> None:
        obj, gone = self.store.delete(rt, ns, name, options, dry_run)
        if gone and not rt.custom and (rt.group, rt.plural) not in _DELETE_RETURNS_OBJECT:
            details = {"name": name, "kind": rt.plural, "uid": obj["metadata"].get("uid")}
            if rt.group:
                details["group"] = rt.group
            self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": details})
        else:
            self._send(200, obj)

    def _delete_collection(self, rt: ResourceType, namespace: str | None, params: dict[str, list[str]],
                           options: dict[str, Any], dry_run: bool) -> None:
        with self.store.lock:
            items, rv = self.store.list(rt, namespace, self._predicate(rt, params))
            deleted = []
            for item in items:
                meta = item["metadata"]
                try:
                    obj, _ = self.store.delete(rt, meta.get("namespace", ""), meta["name"], options, dry_run)
                except ApiError as err:
                    if err.code != 404:
                        raise
                    continue
                deleted.append(obj)
        self._send(200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                         "metadata": {"resourceVersion": rv}, "items": deleted})

    # ----- watch ---------------------------------------------------------------------------------

    def _watch(self, rt: ResourceType, namespace: str | None, params: dict[str, list[str]]) -> None:
        predicate = self._predicate(rt, params)
        options = WatchOptions.parse(lambda key: _first(params, key))
        deadline = time.monotonic() + options.timeout
        store = self.store
        initial: list[tuple[str, dict[str, Any]]] = []
        expired: ApiError | None = None
        with store.lock:
            if options.wait_for_version and options.resource_version is not None:
                wait_until = time.monotonic() + min(watch.TOO_LARGE_WAIT_SECONDS, options.timeout)
                while store.resource_version < options.resource_version and time.monotonic() < wait_until:
                    store.changed.wait(timeout=wait_until - time.monotonic())
                if store.resource_version < options.resource_version:
                    expired = watch.too_large(options.resource_version, store.resource_version)
            if options.send_initial_events:
                items, _ = store.list(rt, namespace, predicate)
                initial = [("ADDED", item) for item in items]
                cursor = store.resource_version
            elif options.resource_version is None:
                cursor = store.resource_version
            else:
                cursor = options.resource_version
                try:
                    store.events_after(cursor)
                except ApiError as err:
                    expired = err
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True
        try:
            if expired is not None:
                self._chunk({"type": "ERROR", "object": expired.to_status()})
                return
            for kind, obj in initial:
                self._chunk({"type": kind, "object": obj})
            if options.send_initial_events and options.bookmarks:
                self._chunk(watch.bookmark(rt.api_version, rt.kind, cursor, initial_events_end=True))
            stopping = self.owner.stopping
            told = cursor  # the newest resourceVersion this client has been told about
            next_bookmark = watch.next_bookmark(time.monotonic(), deadline)
            while not stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if options.bookmarks and time.monotonic() >= next_bookmark:
                    if cursor > told:  # events it did not see (filtered out) moved the version on
                        self._chunk(watch.bookmark(rt.api_version, rt.kind, cursor))
                        told = cursor
                    next_bookmark = watch.next_bookmark(time.monotonic(), deadline)
                with store.changed:
                    if store.resource_version <= cursor:
                        store.changed.wait(timeout=max(min(remaining, 1.0, next_bookmark - time.monotonic()), 0.01))
                    try:
                        events = store.events_after(cursor)
                    except ApiError as err:
                        self._chunk({"type": "ERROR", "object": err.to_status()})
                        return
                    if events:
                        cursor = events[-1].rv
                    batch = [self._watch_event(rt, namespace, predicate, e) for e in events
                             if e.key == rt.storage_key]
                for event in batch:
                    if event is not None:
                        self._chunk(event)
                        told = cursor
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass

    def _watch_event(self, rt: ResourceType, namespace: str | None, predicate: Any,
                     event: Any) -> dict[str, Any] | None:
        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if namespace is not None and (obj.get("metadata") or {}).get("namespace") != namespace:
                return False
            return bool(predicate(obj))

        now_visible = visible(event.obj)
        was_visible = visible(event.prev) if event.type == "MODIFIED" else now_visible
        if event.type == "MODIFIED":
            if now_visible and was_visible:
                kind = "MODIFIED"
            elif now_visible:
                kind = "ADDED"
            elif was_visible:
                kind = "DELETED"
            else:
                return None
        elif not now_visible:
            return None
        else:
            kind = event.type
        obj = dict(event.obj)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        return {"type": kind, "object": obj}

    def _chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
