"""How fast a git push reaches the cluster: webhook received -> first resource applied, in a 500-app monorepo.

Goals (issue #11, on the real control plane with 2 workers): p50 <= 65 ms, p99 <= 150 ms over 100 pushes. The
whole path runs for real: the API server (uvicorn, its own process) receives a GitHub push webhook, matches it
against 500 Applications, enqueues one fetch; two Celery worker processes fetch the repository (a local bare
repo), compare every app's tree, refresh the one app whose files changed, and apply its ConfigMap to the
Kubernetes API: the emulator (`python -m sandbox`, its own process) by default, or the cluster `--kubeconfig`
names (e.g. the real control plane of `scripts/kube.sh start`). The clock starts before the webhook POST and
stops when a watch sees the ConfigMap carry the pushed value. Between pushes the script waits for the
operation to finish, so each push measures the idle-system latency, not queueing behind the last one.

It also prints where the time goes, hop by hop, from the workers' task log lines: the receiver (POST answered),
queue wait (answered -> fetch received by a worker), fetch (fetch received -> the app's diff received: the git
fetch, publishing the pushed commit and the queue hop), diff (the diff that started the sync, received -> done)
and first apply (that diff done -> the ConfigMap seen: the wave_apply task and the watch).

The 499 other apps use manual sync (they are compared at start, not deployed), which keeps the warm-up
short; the measured app is automated. Run: `python bench/webhook_latency.py [--pushes 100] [--apps 500]
[--kubeconfig PATH]`. It prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pygit2
import redis
import yaml
from celery import Celery
from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet import ensure_crd, free_port  # noqa: E402 - bench/ is on the path when run as `python bench/...`

from shared.core.settings import Settings  # noqa: E402
from shared.state import keys  # noqa: E402
from shared.state.app_store import AppStore  # noqa: E402 - after the path setup for `python bench/...`
from workers.catalogue import TASK_ROUTES, Tick, send  # noqa: E402

RUN = uuid.uuid4().hex[:6]
APP_NS, DEST_NS = f"bench-apps-{RUN}", f"bench-dest-{RUN}"
TOKEN = "bench-token"
SIG = pygit2.Signature("bench", "bench@wavecd.invalid")


def wait_for(what: str, check: Any, timeout: float = 60.0, interval: float = 0.05) -> None:  # noqa: ANN401
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


class Processes:
    """The child processes this script starts, each stopped by its own PID at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanup: list[Any] = []  # callables run before the processes stop (e.g. a cluster's namespaces)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Path:
        log = self.logdir / f"{name}.log"
        handle = open(log, "wb")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return log

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for action in self.cleanup:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - best effort: report and go on
                print(f"cleanup failed: {exc}", file=sys.stderr)


def configmap(app: str, value: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": app},
                           "data": {"push": value}})


def commit(repo: pygit2.Repository, files: dict[str, str], message: str) -> str:
    ref = "refs/heads/main"
    index = pygit2.Index()
    parents = []
    if ref in repo.references:
        parent = repo.references[ref].peel(pygit2.Commit)
        index.read_tree(parent.tree)
        parents = [parent.id]
    for path, text in files.items():
        index.add(pygit2.IndexEntry(path, repo.create_blob(text.encode()), pygit2.enums.FileMode.BLOB))
    tree = index.write_tree(repo)
    return str(repo.create_commit(ref, SIG, SIG, message, tree, parents))


def application(name: str, repo_url: str, automated: bool) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": APP_NS},
            "spec": {"project": "default",
                     "source": {"repoURL": repo_url, "path": f"apps/{name}", "targetRevision": "HEAD"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": DEST_NS},
                     "syncPolicy": {"automated": {"prune": True}} if automated else {}}}


def push_payload(repo_url: str, sha: str, path: str) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "after": sha, "deleted": False, "forced": False,
                       "commits": [{"id": sha, "added": [], "removed": [], "modified": [path]}],
                       "repository": {"html_url": repo_url, "clone_url": repo_url, "default_branch": "main"},
                       }).encode()


class ConfigMapWatch:
    """Records when each pushed value first appears on the measured ConfigMap."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.core = client.CoreV1Api(api)
        self.name = name
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                for event in watch.Watch().stream(self.core.list_namespaced_config_map, DEST_NS,
                                                  field_selector=f"metadata.name={self.name}", timeout_seconds=5):
                    now = time.perf_counter()
                    value = (event["object"].data or {}).get("push")
                    if value is not None:
                        with self.cond:
                            self.seen.setdefault(value, now)
                            self.cond.notify_all()
                    if self.stop_event.is_set():
                        return
            except Exception:  # noqa: BLE001 - a watch hiccup: reconnect
                time.sleep(0.05)

    def wait(self, value: str, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: value in self.seen, timeout)
            return self.seen.get(value)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?Task (wavecd\.\w+)\[([^]]+)\] "
                      r"(received|succeeded in ([0-9.]+)s: (.*))$")


def task_events(logdir: Path) -> list[tuple[float, str, str, str, float, str]]:
    """(wall time, task, id, 'received'|'succeeded', run seconds, result) from every worker log, in time order."""
    events = []
    for log in logdir.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            m = LOG_LINE.match(line)
            if m:
                at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                kind = "received" if m.group(4) == "received" else "succeeded"
                events.append((at, m.group(2), m.group(3), kind, float(m.group(5) or 0), m.group(6) or ""))
    return sorted(events)


def hops(events: list[tuple[float, str, str, str, float, str]], pushes: list[tuple[float, float, float]],
         app: str) -> dict[str, list[float]]:
    """Per push (t0, answered, seen; wall clock), the milliseconds spent in each hop (see the docstring)."""
    out: dict[str, list[float]] = {"receiver": [], "queue wait": [], "fetch": [], "diff": [], "first apply": []}
    for t0, answered, seen in pushes:
        window = [e for e in events if t0 - 0.005 <= e[0] <= seen + 0.005]
        fetch = next((e for e in window if e[1] == "wavecd.fetch" and e[3] == "received"), None)
        diff = next((e for e in window if e[1] == "wavecd.diff" and e[3] == "succeeded" and "started" in e[5]),
                    None)
        if fetch is None or diff is None:
            continue
        diff_received = next((e for e in window if e[2] == diff[2] and e[3] == "received"), None)
        if diff_received is None:
            continue
        out["receiver"].append((answered - t0) * 1000)
        out["queue wait"].append(max(0.0, fetch[0] - answered) * 1000)
        out["fetch"].append(max(0.0, diff_received[0] - fetch[0]) * 1000)
        out["diff"].append(max(0.0, diff[0] - diff_received[0]) * 1000)
        out["first apply"].append(max(0.0, seen - diff[0]) * 1000)
    return out


def _task_seconds(logdir: Path, task: str) -> list[float]:
    """Durations of `task` from the workers' "Task ... succeeded in Ns" log lines."""
    pattern = re.compile(rf"Task {re.escape(task)}\[[^]]+\] succeeded in ([0-9.]+)s")
    return [float(m.group(1)) for log in logdir.glob("worker-*.log")
            for m in pattern.finditer(log.read_text(errors="replace"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kubeconfig", help="a cluster to use instead of starting the emulator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wavecd-bench-webhook-"))
    procs = Processes(tmp)
    try:
        return run(args, tmp, procs)
    finally:
        procs.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}")


def run(args: argparse.Namespace, tmp: Path, procs: Processes) -> int:
    started = time.monotonic()
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    procs.start("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)], {})
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig).resolve()
    else:
        kubeconfig = tmp / "kubeconfig"
        procs.start("sandbox", [sys.executable, "-m", "sandbox", "--kubeconfig-out", str(kubeconfig)], {})
    r = redis.Redis.from_url(redis_url)

    def redis_up() -> bool:
        try:
            return bool(r.ping())
        except redis.ConnectionError:
            return False

    wait_for("redis", redis_up)
    wait_for("the emulator", kubeconfig.exists)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    ensure_crd(api)
    core = client.CoreV1Api(api)
    for ns in (APP_NS, DEST_NS):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    if args.kubeconfig:  # a cluster that outlives the run: leave nothing of it behind
        procs.cleanup.append(lambda: [core.delete_namespace(ns) for ns in (APP_NS, DEST_NS)])

    repo_path = tmp / "monorepo.git"
    repo = pygit2.init_repository(str(repo_path), bare=True, initial_head="main")
    repo_url = f"file://{repo_path}"
    names = [f"app-{i:03d}" for i in range(args.apps)]
    commit(repo, {f"apps/{n}/cm.yaml": configmap(n, "0") for n in names}, "initial")
    custom = client.CustomObjectsApi(api)
    for i, name in enumerate(names):
        custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", APP_NS, "applications",
                                               application(name, repo_url, automated=(i == 0)))

    env = {"WAVECD_REDIS_URL": redis_url, "WAVECD_HOME": str(tmp / "home"), "WAVECD_KUBECONFIG": str(kubeconfig),
           "WAVECD_APP_NAMESPACE": APP_NS, "WAVECD_RECONCILE_PERIOD": "3600", "WAVECD_RECONCILE_JITTER": "0",
           "WAVECD_STEP_DELAY": "0", "WAVECD_HEALTH_POLL_INTERVAL": "0.1", "WAVECD_API_TOKEN": TOKEN}
    api_port = free_port()
    procs.start("api", [sys.executable, "-m", "uvicorn", "scheduler.api:app", "--host", "127.0.0.1", "--port",
                        str(api_port), "--log-level", "warning", "--no-access-log"], env)
    worker_logs = [procs.start(f"worker-{n}", [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                                               "-Q", "git,apply,health", "-c", "1", "-n", f"bench{n}@%h",
                                               "--loglevel=INFO", "--without-gossip", "--without-mingle"], env)
                   for n in range(args.workers)]
    base = f"http://127.0.0.1:{api_port}"

    def api_ready() -> bool:
        procs.check()
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the API server", api_ready, 60)
    for log in worker_logs:
        wait_for(f"worker {log.stem}", lambda log=log: (procs.check(), b"ready." in log.read_bytes())[1], 60, 0.2)

    celery = Celery("bench", broker=redis_url)
    celery.conf.task_routes = TASK_ROUTES
    stop_ticks = threading.Event()

    tick_every = Settings().beat_tick  # beat's default cadence

    def beat() -> None:
        while not stop_ticks.wait(tick_every):
            send(celery, Tick())

    threading.Thread(target=beat, daemon=True).start()
    store = AppStore(r)
    measured = names[0]

    def warmed_up() -> bool:
        procs.check()
        st = store.status(measured)
        op = store.operation(measured)
        return (st.get("sync", {}).get("status") == "Synced" and op is not None and op.get("phase") == "Succeeded"
                and not r.exists(keys.lock(measured)) and all(store.has_state(n) for n in names[-5:]))

    wait_for(f"{args.apps} apps compared and {measured} synced", warmed_up, 600, 0.5)
    compared = sum(1 for n in names if store.has_state(n))
    print(f"warm-up: {time.monotonic() - started:.1f}s ({compared}/{args.apps} apps compared, {args.workers} workers)")

    watcher = ConfigMapWatch(api, measured)
    http = httpx.Client(base_url=base, timeout=10)
    latencies: list[float] = []
    answered: list[float] = []
    timeline: list[tuple[float, float, float]] = []  # wall clock: posted, answered, seen
    failures = 0
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    for i in range(1, args.pushes + 1):
        value = str(i)
        sha = commit(repo, {f"apps/{measured}/cm.yaml": configmap(measured, value)}, f"push {i}")
        body = push_payload(repo_url, sha, f"apps/{measured}/cm.yaml")
        wall0, t0 = time.time(), time.perf_counter()
        response = http.post("/api/webhook", content=body, headers=headers)
        answered.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 202 or response.json().get("matched") != 1:
            raise SystemExit(f"webhook not accepted as expected: {response.status_code} {response.text}")
        seen = watcher.wait(value, 30)
        if seen is None:
            failures += 1
            print(f"push {i}: not applied within 30 s")
            continue
        latencies.append((seen - t0) * 1000)
        timeline.append((wall0, wall0 + answered[-1] / 1000, wall0 + (seen - t0)))

        def finished(sha: str = sha) -> bool:
            op = store.operation(measured)
            return (op is not None and op.get("phase") == "Succeeded"
                    and (op.get("syncResult") or {}).get("revision") == sha
                    and not r.exists(keys.lock(measured)))

        wait_for(f"push {i}'s operation to finish", finished, 60, 0.02)
    stop_ticks.set()
    watcher.stop_event.set()
    http.close()

    if not latencies:
        print("no push was applied")
        return 1
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"webhook -> first resource applied, {len(latencies)} pushes, app in a {args.apps}-app repo:")
    where = f"the cluster of {args.kubeconfig}" if args.kubeconfig else "the emulator"
    print(f"  on {where}, {args.workers} workers")
    print(f"  p50 {p50:7.1f} ms   (goal <= 65 ms: {'met' if p50 <= 65 else 'MISSED'})")
    print(f"  p99 {p99:7.1f} ms   (goal <= 150 ms: {'met' if p99 <= 150 else 'MISSED'})")
    print(f"  mean {statistics.fmean(latencies):6.1f} ms, min {min(latencies):.1f} ms, max {max(latencies):.1f} ms, "
          f"not applied: {failures}")
    print(f"  of which the API answering the webhook (match {args.apps} apps, enqueue the fetch): "
          f"p50 {percentile(answered, 50):.1f} ms, p99 {percentile(answered, 99):.1f} ms")
    per_hop = hops(task_events(tmp), timeline, measured)
    if per_hop["receiver"]:
        print(f"  where the time goes ({len(per_hop['receiver'])} pushes traced through the worker logs):")
        for hop, values in per_hop.items():
            print(f"    {hop:<12} p50 {percentile(values, 50):7.1f} ms   p99 {percentile(values, 99):7.1f} ms")
    fetches = _task_seconds(tmp, "wavecd.fetch")
    if fetches:
        print(f"  `wavecd.fetch` task time (fetch + detect changes over {args.apps} apps), from the worker logs: "
              f"p50 {percentile(fetches, 50) * 1000:.0f} ms, max {max(fetches) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
