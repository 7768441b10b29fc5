"""A per-process, informer-style cache of live objects, so reading an app's live state costs no request.

Reconciling a thousand apps by GETting each of their objects would cost thousands of API requests per
cycle. Instead, for each resource type the process is asked about, the cache LISTs it once across all
namespaces and then WATCHes it from that list's resourceVersion in a daemon thread (the pattern of
client-go's informers; the watch stream is `kubernetes.watch.Watch`). Lookups by name are then answered
from memory. A watch that ends is resumed from the last resourceVersion seen; a 410 Gone relists.

When the cache cannot serve a type (a cluster-wide LIST is forbidden, or the watch is failing), its
lookups report "not served" and the caller falls back to a direct GET, so a broken watch costs requests,
never correctness. The store holds whole objects; lookups hand out deep copies.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes import watch as kube_watch
from kubernetes.client.exceptions import ApiException

from shared.cluster.discovery import ResourceInfo
from shared.core.backoff import backoff_delay, jittered
from shared.core.errors import WaveCDError

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 500
WATCH_TIMEOUT_SECONDS = 300
RETRY_UNAVAILABLE_AFTER = 60.0
# A broken watch is retried after 0.5 s, doubling up to 30 s, jittered (the one backoff, shared.core.backoff).
WATCH_BACKOFF = {"base": 0.5, "factor": 2.0, "cap": 30.0}


def watch_retry_delay(failures: int, rng: random.Random | None = None) -> float:
    """How long a watch waits before its next try after `failures` failures in a row."""
    return jittered(backoff_delay(failures, **WATCH_BACKOFF), rng)


Gvr = tuple[str, str, str]

# Set by the worker: called with each object a watch reports changed (ADDED, MODIFIED, DELETED), outside
# the cache's lock, so the app that tracks it can be refreshed at once (Argo CD reacts to watch events
# the same way: drift is seen without waiting for the next poll). Errors in it are logged and ignored.
on_change: Callable[[dict[str, Any]], None] | None = None


class ListWatchTransport(Protocol):
    """What the cache needs of a client: paged LISTs and a streaming WATCH."""

    def list_page(self, info: ResourceInfo, *, limit: int, continue_token: str | None) -> dict[str, Any]:
        """One page of a cluster-wide LIST (raises a KubeError on failure)."""
        ...

    def open_watch(self, info: ResourceInfo, *, resource_version: str, timeout_seconds: int) -> Any:
        """The raw streaming response of a cluster-wide WATCH (raises ApiException on an error status)."""
        ...


def _rv_int(obj: dict[str, Any]) -> int | None:
    text = (obj.get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _obj_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass
class _Informer:
    """One resource type's store and the thread that keeps it current."""

    info: ResourceInfo
    store: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    resource_version: str = ""
    synced: bool = False
    healthy: bool = False
    unavailable_until: float = 0.0
    thread: threading.Thread | None = None
    watcher: kube_watch.Watch | None = None
    sync_lock: threading.Lock = field(default_factory=threading.Lock)
    lists: int = 0
    watches: int = 0
    events: int = 0


class LiveCache:
    """List+watch caches per resource type, started on first use. Thread-safe."""

    def __init__(self, transport: ListWatchTransport, *, name: str = "",
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._transport = transport
        self.name = name
        self.watch_timeout_seconds = watch_timeout_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._informers: dict[Gvr, _Informer] = {}
        self._stopped = threading.Event()
        self.pid = os.getpid()

    # -- lookups -------------------------------------------------------------------------------------

    def lookup(self, info: ResourceInfo, namespace: str, name: str) -> tuple[bool, dict[str, Any] | None]:
        """(served, object): `served` is False when the caller must ask the API server itself."""
        informer = self._ready(info)
        if informer is None:
            return False, None
        with self._lock:
            obj = informer.store.get((namespace if info.namespaced else "", name))
            return True, copy.deepcopy(obj) if obj is not None else None

    def list(self, info: ResourceInfo, namespace: str | None = None) -> list[dict[str, Any]] | None:
        """All cached objects of a type (in one namespace if given); None when not served."""
        informer = self._ready(info)
        if informer is None:
            return None
        with self._lock:
            return [copy.deepcopy(o) for (ns, _), o in sorted(informer.store.items())
                    if namespace is None or ns == namespace]

    def observe(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        """Record the answer of our own write at once, unless the watch already has something newer."""
        with self._lock:
            informer = self._informers.get(info.group_version_resource)
            if informer is None or not informer.synced:
                return
            key = _obj_key(obj)
            self._store_if_newer(informer, key, obj)

    def forget(self, info: ResourceInfo, namespace: str, name: str) -> None:
        """Drop an object we deleted and saw gone; the watch confirms it later."""
        with self._lock:
            informer = self._informers.get(info.group_version_resource)
            if informer is not None:
                informer.store.pop((namespace if info.namespaced else "", name), None)

    def stats(self) -> dict[str, dict[str, int | bool]]:
        """Per resource: objects held, LISTs and WATCHes made, events seen, health (for tests and bench)."""
        with self._lock:
            return {"/".join(gvr): {"objects": len(i.store), "lists": i.lists, "watches": i.watches,
                                    "events": i.events, "healthy": i.healthy}
                    for gvr, i in self._informers.items()}

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
                   ) -> bool:
        """Poll `predicate` until true or `timeout` (for tests waiting on the watch)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    def stop(self) -> None:
        """Stop every watch thread (they are daemons; this is for tests and orderly shutdown)."""
        self._stopped.set()
        with self._lock:
            informers = list(self._informers.values())
        for informer in informers:
            if informer.watcher is not None:
                informer.watcher.stop()
        for informer in informers:
            if informer.thread is not None:
                informer.thread.join(timeout=5)

    # -- informer lifecycle --------------------------------------------------------------------------

    def _ready(self, info: ResourceInfo) -> _Informer | None:
        if self._stopped.is_set() or "list" not in info.verbs or "watch" not in info.verbs:
            return None
        gvr = info.group_version_resource
        with self._lock:
            informer = self._informers.get(gvr)
            if informer is None:
                informer = _Informer(info)
                self._informers[gvr] = informer
            if informer.synced:
                return informer if informer.healthy else None
        # First use (or a retry after being unavailable): the LIST runs in the caller, under the type's
        # own lock, so concurrent first lookups of one type make one LIST and other types are not held up.
        with informer.sync_lock:
            if informer.synced:
                return informer if informer.healthy else None
            if self._clock() < informer.unavailable_until:
                return None
            try:
                self._relist(informer)
            except WaveCDError as exc:
                informer.unavailable_until = self._clock() + RETRY_UNAVAILABLE_AFTER
                log.warning("live cache: cannot list %s; using direct requests for %ss: %s",
                            info.plural, RETRY_UNAVAILABLE_AFTER, exc)
                return None
            with self._lock:
                informer.synced = informer.healthy = True
            informer.thread = threading.Thread(target=self._run, args=(informer,), daemon=True,
                                               name=f"wavecd-watch-{self.name}-{info.plural}")
            informer.thread.start()
            return informer

    def _relist(self, informer: _Informer) -> None:
        items: dict[tuple[str, str], dict[str, Any]] = {}
        token: str | None = None
        resource_version = ""
        while True:
            page = self._transport.list_page(informer.info, limit=LIST_PAGE_SIZE, continue_token=token)
            informer.lists += 1
            for item in page.get("items") or []:
                item.setdefault("apiVersion", informer.info.api_version)
                item.setdefault("kind", informer.info.kind)
                items[_obj_key(item)] = item
            meta = page.get("metadata") or {}
            resource_version = str(meta.get("resourceVersion") or resource_version)
            token = meta.get("continue") or None
            if not token:
                break
        with self._lock:
            informer.store = items
            informer.resource_version = resource_version

    def _run(self, informer: _Informer) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                for event in self._events(informer):
                    self._apply_event(informer, event)
                failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    log.info("live cache: %s watch expired (410); relisting", informer.info.plural)
                    failures = self._recover(informer, failures, relist=True)
                else:
                    log.warning("live cache: %s watch failed (%s); retrying", informer.info.plural,
                                exc.status)
                    failures = self._recover(informer, failures, relist=False)
            except Exception as exc:  # any failure: keep the thread alive, lookups go direct meanwhile
                if self._stopped.is_set():
                    return
                log.warning("live cache: %s watch broke (%s); retrying", informer.info.plural,
                            type(exc).__name__)
                failures = self._recover(informer, failures, relist=False)

    def _recover(self, informer: _Informer, failures: int, *, relist: bool) -> int:
        """Mark unhealthy (lookups go direct), wait a jittered backoff, relist if asked; returns the count of
        failures in a row so far (0 once a relist got through)."""
        with self._lock:
            informer.healthy = False
        if not relist:
            self._stopped.wait(watch_retry_delay(failures))
        if self._stopped.is_set():
            return failures
        if relist:
            try:
                self._relist(informer)
                with self._lock:
                    informer.healthy = True
            except WaveCDError as exc:
                log.warning("live cache: relist of %s failed: %s", informer.info.plural, exc)
                self._stopped.wait(watch_retry_delay(failures))
                return failures + 1
            return 0
        return failures + 1

    def _events(self, informer: _Informer) -> Iterator[dict[str, Any]]:
        watcher = kube_watch.Watch()
        informer.watcher = watcher
        informer.watches += 1
        transport, info = self._transport, informer.info

        def call(**kwargs: Any) -> Any:  # kubernetes.watch passes its own kwargs (watch, _preload_content)
            response = transport.open_watch(info, resource_version=str(kwargs["resource_version"]),
                                            timeout_seconds=int(kwargs["timeout_seconds"]))
            with self._lock:
                informer.healthy = True  # the stream replays whatever happened since resource_version
            return response

        timeout = max(1, int(self.watch_timeout_seconds * (0.8 + 0.4 * random.random())))
        stream = watcher.stream(call, resource_version=informer.resource_version, timeout_seconds=timeout)
        for event in stream:
            yield event
            if self._stopped.is_set():
                watcher.stop()

    def _apply_event(self, informer: _Informer, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("raw_object") or event.get("object")
        if not isinstance(obj, dict):
            return
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            informer.events += 1
            if kind == "BOOKMARK":
                if rv:
                    informer.resource_version = str(rv)
                return
            obj.setdefault("apiVersion", informer.info.api_version)
            obj.setdefault("kind", informer.info.kind)
            key = _obj_key(obj)
            if kind == "DELETED":
                current = informer.store.get(key)
                if current is None or _older_or_same(current, obj):
                    informer.store.pop(key, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._store_if_newer(informer, key, obj)
            if rv:
                informer.resource_version = str(rv)
        hook = on_change
        if hook is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
            try:
                hook(obj)
            except Exception:  # noqa: BLE001 - a notification must never break the watch
                log.warning("live cache change hook failed", exc_info=True)

    @staticmethod
    def _store_if_newer(informer: _Informer, key: tuple[str, str], obj: dict[str, Any]) -> None:
        current = informer.store.get(key)
        if current is None or _older_or_same(current, obj):
            informer.store[key] = obj


def _older_or_same(current: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """True unless both resourceVersions are numbers and `incoming` is older (Kubernetes' RVs are
    opaque, but every real API server issues etcd revisions; when not numeric, the incoming wins)."""
    a, b = _rv_int(current), _rv_int(incoming)
    return a is None or b is None or b >= a
