"""A fleet of apps for the benchmarks: Redis, a Kubernetes API (the emulator, or a real cluster by kubeconfig),
a monorepo of N apps x M resources, their Applications, and worker processes.

reconcile_cycle.py and cold_start.py measure different things on the same fleet; this module builds it once
for both, so their figures are comparable. Requests to the Kubernetes API are counted where they are made:
WaveCD's own `argocd_app_k8s_request_total` counter (in Redis), which works against any cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import redis
import yaml
from celery import Celery
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.state import keys  # noqa: E402
from shared.telemetry.metrics import KUBE_REQUEST_TOTAL  # noqa: E402 - after the path setup for `python bench/...`
from workers.catalogue import TASK_ROUTES  # noqa: E402

LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
QUEUE_LISTS = [q + suffix for q in ("git", "apply", "health") for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def make_repo(path: Path, apps: int, resources: int) -> str:
    """A bare monorepo with `apps` folders of `resources` ConfigMaps, Secrets and Services each."""
    repo = pygit2.init_repository(str(path), bare=True)
    builder_root = repo.TreeBuilder()
    apps_tree = repo.TreeBuilder()
    for i in range(apps):
        docs = []
        for j in range(resources):
            kind = ("ConfigMap", "Secret", "Service")[j % 3]
            meta = {"name": f"a{i}-r{j}"}
            if kind == "ConfigMap":
                docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"i": str(i), "j": str(j)}})
            elif kind == "Secret":
                docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
                             "data": {"token": "c2VjcmV0"}})
            else:
                docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                             "spec": {"selector": {"app": f"a{i}"}, "ports": [{"port": 80 + j}]}})
        blob = repo.create_blob(yaml.safe_dump_all(docs).encode())
        tb = repo.TreeBuilder()
        tb.insert("all.yaml", blob, pygit2.GIT_FILEMODE_BLOB)
        apps_tree.insert(f"app-{i}", tb.write(), pygit2.GIT_FILEMODE_TREE)
    builder_root.insert("apps", apps_tree.write(), pygit2.GIT_FILEMODE_TREE)
    sig = pygit2.Signature("bench", "bench@example.com")
    repo.create_commit("refs/heads/main", sig, sig, "apps", builder_root.write(), [])
    repo.set_head("refs/heads/main")
    return f"file://{path}"


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory of a worker: (main process + its prefork children, the largest single process)."""
    sizes = []
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return sum(sizes), max(sizes, default=0.0)


def ensure_crd(api: client.ApiClient) -> None:
    """Install the Application CRD unless the cluster has it, and wait until it is served."""
    crd = yaml.safe_load((ROOT / "k8s/base/crd-application.yaml").read_text())
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

    wait_for(established, 60, "the Application CRD", 0.1)


def _ping(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.ConnectionError:
        return False


@dataclass
class Fleet:
    apps: int
    resources: int
    kubeconfig_arg: str | None = None
    procs: list[subprocess.Popen] = field(default_factory=list)
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.work = Path(os.environ.get("TMPDIR", "/tmp")) / f"wavecd-bench-{self.run}"

    @property
    def where(self) -> str:
        return f"the cluster of {self.kubeconfig_arg}" if self.kubeconfig_arg else "the emulator"

    def start(self) -> Fleet:
        """Redis, the cluster, the CRD, two namespaces, the monorepo and its Applications (no workers yet)."""
        self.work.mkdir(parents=True)
        rport = free_port()
        self.procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no",
                                            "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL))
        self.redis_url = f"redis://127.0.0.1:{rport}/0"
        self.redis = redis.Redis.from_url(self.redis_url)
        wait_for(lambda: _ping(self.redis), 10, "redis")
        if self.kubeconfig_arg:
            self.kubeconfig = Path(self.kubeconfig_arg).resolve()
        else:
            self.kubeconfig = self.work / "kubeconfig"
            self.procs.append(subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(free_port()),
                                                "--kubeconfig-out", str(self.kubeconfig)], cwd=ROOT,
                                               stdout=subprocess.DEVNULL))
            wait_for(self.kubeconfig.exists, 20, "the sandbox")
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        ensure_crd(self.api)
        self.app_ns, self.dest_ns = f"bench-apps-{self.run}", f"bench-{self.run}"
        core = client.CoreV1Api(self.api)
        for ns in (self.app_ns, self.dest_ns):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        t0 = time.monotonic()
        self.repo_url = make_repo(self.work / "mono.git", self.apps, self.resources)
        print(f"monorepo: {self.apps} apps x {self.resources} manifests in {time.monotonic() - t0:.1f}s; "
              f"Kubernetes API: {self.where}")
        return self

    def create_applications(self, automated: bool = True) -> None:
        custom = client.CustomObjectsApi(self.api)
        for i in range(self.apps):
            custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", self.app_ns, "applications", {
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": f"app-{i}", "namespace": self.app_ns},
                "spec": {"project": "default",
                         "source": {"repoURL": self.repo_url, "path": f"apps/app-{i}", "targetRevision": "HEAD"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": self.dest_ns},
                         "syncPolicy": {"automated": {"prune": True}} if automated else {}}})

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "WAVECD_REDIS_URL": self.redis_url, "WAVECD_KUBECONFIG": str(self.kubeconfig),
                "WAVECD_APP_NAMESPACE": self.app_ns, "WAVECD_RECONCILE_PERIOD": "100000",
                "WAVECD_RECONCILE_JITTER": "0", "WAVECD_HOME": str(self.work), "PYTHONPATH": str(ROOT),
                "WAVECD_GIT_CACHE_DIR": str(self.work / "cache"), "WAVECD_LOG_LEVEL": LOG_LEVEL}

    def celery(self) -> Celery:
        app = Celery("bench", broker=self.redis_url)
        app.conf.task_routes = TASK_ROUTES
        return app

    def start_workers(self, n: int, tag: str = "") -> list[subprocess.Popen]:
        started = []
        for k in range(n):
            log = open(self.work / f"worker-{tag}{n}-{k}.log", "wb")  # noqa: SIM115 - the child keeps it
            started.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "git,apply,health",
                 "-c", "1", "-n", f"b{tag}{n}-{k}@%h", "--without-gossip", "--without-mingle",
                 "--loglevel=" + LOG_LEVEL],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for k in range(n):
            path = self.work / f"worker-{tag}{n}-{k}.log"
            wait_for(lambda path=path: path.exists() and (b"ready" in path.read_bytes() or LOG_LEVEL != "INFO"),
                     60, "a worker")
        time.sleep(2)  # the workers' consumers attach after "ready"; a tick sent earlier would wait anyway
        return started

    @staticmethod
    def stop_workers(workers: list[subprocess.Popen]) -> None:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            w.wait(30)

    def statuses(self) -> list[dict]:
        pipe = self.redis.pipeline()
        for i in range(self.apps):
            pipe.hget(keys.state(f"app-{i}"), "status")
        return [json.loads(raw) if raw else {} for raw in pipe.execute()]

    def idle(self) -> bool:
        """Cheap first test (so polling does not steal the workers' CPU): queues empty, no app lock held."""
        pipe = self.redis.pipeline()
        for key in QUEUE_LISTS:
            pipe.llen(key)
        if any(pipe.execute()):
            return False
        return next(self.redis.scan_iter(match=keys.lock("*"), count=1000), None) is None

    def kube_requests(self) -> int:
        """Requests WaveCD made to the Kubernetes API, watches excepted (its own counter, flushed per task)."""
        total = 0
        verb_at = KUBE_REQUEST_TOTAL.labels.index("verb")
        for raw_field, count in self.redis.hgetall(KUBE_REQUEST_TOTAL.key).items():
            labels = json.loads(raw_field)
            if labels[verb_at].lower() != "watch":
                total += int(count)
        return total

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.kubeconfig_arg:  # a cluster that outlives the run: leave nothing of the run behind
            core = client.CoreV1Api(self.api)
            for ns in (self.app_ns, self.dest_ns):
                try:
                    core.delete_namespace(ns)
                except client.ApiException as exc:
                    print(f"could not delete namespace {ns}: {exc.status}", file=sys.stderr)
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
