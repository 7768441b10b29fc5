"""A small driver for end-to-end tests: Applications in, tasks sent, status read back from Redis.

It talks to the system only the way users and beat do: it creates Application resources through the
Kubernetes API, sends `wavecd.tick` (what beat sends) and sync requests through Redis, and reads the
status WaveCD publishes. Every wait is a bounded poll that fails with the last status seen.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml
from celery import Celery
from kubernetes import client, config, watch

from shared.state.app_store import AppStore
from workers.catalogue import TASK_ROUTES, Diff, Fetch, TaskCall, Tick, send

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "k8s" / "base" / "crd-application.yaml"
GROUP, VERSION = "argoproj.io", "v1alpha1"


def install_crd(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(CRD_FILE.read_text())
    try:
        ext.create_custom_resource_definition(body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        conds = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
        if conds.get("Established") == "True":
            return
        time.sleep(0.2)
    raise AssertionError("the Application CRD was not established")


@dataclass
class Harness:
    redis_url: str
    api: client.ApiClient
    kubeconfig: str
    context: str | None
    app_namespace: str
    dest_namespace: str
    extra_namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)
        self.store = AppStore(self.redis)
        self.celery = Celery("wavecd-test", broker=self.redis_url)
        self.celery.conf.task_routes = TASK_ROUTES
        self.celery.conf.task_serializer = "json"
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = {"WAVECD_KUBECONFIG": self.kubeconfig, "WAVECD_APP_NAMESPACE": self.app_namespace,
               "WAVECD_RECONCILE_PERIOD": "3600", "WAVECD_RECONCILE_JITTER": "0",
               "WAVECD_BEAT_TICK": "1"}
        if self.context:
            env["WAVECD_KUBE_CONTEXT"] = self.context
        env.update(extra)
        return env

    # -- Applications --------------------------------------------------------------------------------
    def application(self, name: str, repo_url: str, path: str = ".", *, revision: str = "HEAD",
                    automated: bool = True, prune: bool = True, self_heal: bool = False,
                    sync_options: list[str] | None = None, finalizer: bool = False,
                    retry: dict[str, Any] | None = None, namespace: str | None = None) -> dict[str, Any]:
        policy: dict[str, Any] = {"syncOptions": sync_options or []}
        if automated:
            policy["automated"] = {"prune": prune, "selfHeal": self_heal}
        if retry is not None:
            policy["retry"] = retry
        body = {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
            "metadata": {"name": name, "namespace": self.app_namespace,
                         **({"finalizers": ["resources-finalizer.argocd.argoproj.io"]} if finalizer else {})},
            "spec": {"project": "default",
                     "source": {"repoURL": repo_url, "path": path, "targetRevision": revision},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": namespace or self.dest_namespace},
                     "syncPolicy": policy},
        }
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.app_namespace, "applications",
                                                           body)

    def patch_application(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.app_namespace, "applications", name,
                                                   patch)

    def delete_application(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.app_namespace, "applications", name)

    def application_exists(self, name: str) -> bool:
        try:
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.app_namespace, "applications", name)
            return True
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise

    # -- driving -------------------------------------------------------------------------------------
    def send(self, call: TaskCall) -> None:
        """Send a task as WaveCD's own senders do: through the catalogue, with named arguments."""
        send(self.celery, call)

    def tick(self) -> None:
        self.send(Tick())

    def fetch(self, repo: str, *, due: list[str] | None = None, urgent: list[str] | None = None) -> None:
        self.send(Fetch(repo=repo, due=due or [], urgent=urgent or []))

    def diff(self, app: str) -> None:
        self.send(Diff(app=app))

    def request_sync(self, app: str, **request: Any) -> None:  # noqa: ANN401
        self.store.request_sync(app, request)
        self.diff(app)

    # -- reading -------------------------------------------------------------------------------------
    def status(self, app: str) -> dict[str, Any]:
        return self.store.status(app)

    def operation(self, app: str) -> dict[str, Any] | None:
        return self.store.operation(app)

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0, *, tick: bool = True,
             describe: Callable[[], Any] | None = None) -> None:
        deadline = time.monotonic() + timeout
        last_tick = 0.0
        while time.monotonic() < deadline:
            if check():
                return
            if tick and time.monotonic() - last_tick > 1.0:
                self.tick()
                last_tick = time.monotonic()
            time.sleep(0.1)
        detail = json.dumps(describe() if describe else None, default=str)[:3000]
        raise AssertionError(f"timed out waiting for {what}; last seen: {detail}")

    def wait_synced(self, app: str, revision: str | None = None, timeout: float = 60.0,
                    health: str = "Healthy") -> dict[str, Any]:
        def ok() -> bool:
            st = self.status(app)
            op = self.operation(app)
            return (st.get("sync", {}).get("status") == "Synced"
                    and st.get("health", {}).get("status") == health
                    and (revision is None or st.get("sync", {}).get("revision") == revision)
                    and (op is None or op.get("phase") != "Running")
                    and not self.redis.exists(f"wavecd:lock:{app}"))
        self.wait(f"{app} Synced/{health}", ok, timeout,
                  describe=lambda: {"status": self.status(app), "op": self.operation(app)})
        return self.status(app)

    def wait_operation(self, app: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
        def ok() -> bool:
            op = self.operation(app)
            return op is not None and op.get("phase") == phase
        self.wait(f"{app} operation {phase}", ok, timeout, describe=lambda: self.operation(app))
        op = self.operation(app)
        assert op is not None
        return op


class WriteRecorder:
    """Records the order in which objects appear (ADDED) in namespaces, through watches."""

    def __init__(self, api: client.ApiClient, namespace: str, kinds: list[str]) -> None:
        self.events: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._api = api
        self._ns = namespace
        listers = {
            "ConfigMap": client.CoreV1Api(api).list_namespaced_config_map,
            "Secret": client.CoreV1Api(api).list_namespaced_secret,
            "Service": client.CoreV1Api(api).list_namespaced_service,
            "Deployment": client.AppsV1Api(api).list_namespaced_deployment,
            "Job": client.BatchV1Api(api).list_namespaced_job,
        }
        for kind in kinds:
            t = threading.Thread(target=self._run, args=(kind, listers[kind]), daemon=True)
            t.start()
            self._threads.append(t)
        time.sleep(0.3)

    def _run(self, kind: str, lister: Callable[..., Any]) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(lister, self._ns, timeout_seconds=2):
                    if event["type"] == "ADDED":
                        with self._lock:
                            self.events.append((time.monotonic(), kind, event["object"].metadata.name))
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - a watch hiccup; restart
                time.sleep(0.1)

    def order(self) -> list[str]:
        with self._lock:
            seen: dict[str, float] = {}
            for ts, _kind, name in self.events:
                seen.setdefault(name, ts)
        return [name for name, _ in sorted(seen.items(), key=lambda kv: kv[1])]

    def stop(self) -> None:
        self._stop.set()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def manifests(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


@dataclass
class KubeTarget:
    kubeconfig: str
    context: str | None
    real: bool
    sandbox: Any = None


def kube_target(tmp_factory: Any) -> Iterator[KubeTarget]:  # noqa: ANN401
    """The cluster for pipeline tests: the real one, or an emulator that simulates controllers."""
    real = os.environ.get("WAVECD_TEST_KUBECONFIG")
    if real:
        yield KubeTarget(real, os.environ.get("WAVECD_TEST_KUBECONTEXT") or None, True)
        return
    from sandbox.server import SandboxServer  # noqa: PLC0415 - only without a real cluster

    server = SandboxServer(simulate_controllers=True, rollout_seconds=0.6).start()
    try:
        path = server.write_kubeconfig(tmp_factory.mktemp("cd-kube") / "kubeconfig")
        yield KubeTarget(path, "sandbox", False, server)
    finally:
        server.stop()


def api_for(target: KubeTarget) -> client.ApiClient:
    return config.new_client_from_config(config_file=target.kubeconfig, context=target.context)
