"""What happened in the app's namespace, in the order the API server saw it: a list-then-watch per kind.

Each kind is LISTed once (an empty list while the namespace does not exist yet) and WATCHed from that
list's resourceVersion, so no event is missed however late the watch thread gets going: no sleep is
needed before the system under test starts writing.

Events of different kinds arrive on different streams, so arrival order is not write order (a Namespace
and the hook Job created in it milliseconds later can arrive swapped). They are ordered by the
resourceVersion each event's object carries instead: both backends of the suite number every write with
one cluster-wide counter (kube-apiserver's is etcd's revision, the emulator's its store's), so it orders
writes across kinds. Kubernetes calls resourceVersion opaque for clients in general; a cluster whose
versions are not integers makes this recorder fail loudly rather than guess.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch


@dataclass(frozen=True)
class Event:
    version: int  # the object's resourceVersion in this event: the cluster's write order
    type: str  # ADDED | MODIFIED | DELETED
    kind: str
    name: str
    object: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


class ClusterRecorder:
    """Records ADDED/MODIFIED/DELETED events of a few kinds in one namespace (and the Namespace itself)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
        self.namespace = namespace
        self._api = api
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: list[Event] = []
        self._errors: list[str] = []
        listers: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = {
            "Namespace": (core.list_namespace, (), {"field_selector": f"metadata.name={namespace}"}),
            "ConfigMap": (core.list_namespaced_config_map, (namespace,), {}),
            "Secret": (core.list_namespaced_secret, (namespace,), {}),
            "Service": (core.list_namespaced_service, (namespace,), {}),
            "Deployment": (apps.list_namespaced_deployment, (namespace,), {}),
            "Job": (batch.list_namespaced_job, (namespace,), {}),
        }
        self._threads = []
        for kind, (lister, args, kwargs) in listers.items():
            # The first LIST happens here, before the caller goes on: the watch starts from its version.
            version = lister(*args, **kwargs).metadata.resource_version
            thread = threading.Thread(target=self._run, args=(kind, lister, args, kwargs, version), daemon=True,
                                      name=f"e2e-watch-{kind}")
            thread.start()
            self._threads.append(thread)

    def _run(self, kind: str, lister: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             version: str) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for raw in stream.stream(lister, *args, resource_version=version, timeout_seconds=5,
                                         allow_watch_bookmarks=False, **kwargs):
                    obj = self._api.sanitize_for_serialization(raw["object"])
                    version = obj["metadata"].get("resourceVersion") or version
                    with self._lock:
                        self._events.append(Event(int(version), raw["type"], kind, obj["metadata"]["name"], obj))
                    if self._stop.is_set():
                        break
            except client.ApiException as exc:
                if exc.status == 410:  # too old: nothing we recorded is lost, but later events would be
                    with self._lock:
                        self._errors.append(f"{kind}: watch expired (410) at resourceVersion {version}")
                    return
                with self._lock:
                    self._errors.append(f"{kind}: HTTP {exc.status}")
            except Exception as exc:  # noqa: BLE001 - a dropped connection: resume from the last version
                with self._lock:
                    self._errors.append(f"{kind}: {type(exc).__name__}")
            finally:
                stream.stop()

    def events(self) -> list[Event]:
        """Every event so far, in the cluster's write order."""
        with self._lock:
            return sorted(self._events, key=lambda e: e.version)

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def first(self, event_type: str, ref: str, where: Callable[[Event], bool] = lambda _e: True) -> Event | None:
        return next((e for e in self.events() if e.type == event_type and e.ref == ref and where(e)), None)

    def creation_order(self) -> list[str]:
        """Kind/name of every object in the order it was first ADDED."""
        seen: list[str] = []
        for event in self.events():
            if event.type == "ADDED" and event.ref not in seen:
                seen.append(event.ref)
        return seen

    def summary(self) -> str:
        lines = [f"{e.version} {e.type} {e.ref}" for e in self.events()]
        return "\n".join(lines + [f"watch error: {error}" for error in self.errors()])

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
