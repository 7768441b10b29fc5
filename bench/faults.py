"""Fault injection during a sync: does the operation finish, how soon after the fault clears, and never twice at once?

Issue #17's goal: an operation interrupted by any single fault continues or restarts within 20 s of the fault
clearing, and at no moment do two operations of one app overlap. Three faults, `--trials` times each:

* redis: the broker and state Redis (an AOF with `appendfsync always`, as `wavecd up --sandbox` runs it) is
  stopped mid-sync and started again; the trials cycle through SIGTERM, SIGKILL, and SIGKILL with its data
  wiped. Cleared when Redis answers again.
* worker-main: `kill -9` of the main process of the worker holding the sync's messages (its pool child is
  orphaned and may finish the task it runs); the script starts a replacement at once, as compose, a
  Deployment or `wavecd up` would. Cleared at the kill: the other worker is up.
* pool-child: `kill -9` of that worker's pool child (the process running tasks); the main process replaces
  it. Cleared at the kill.

Each trial pushes a new commit to one automated app (a PreSync hook Job that runs 4 s, then three waves of
ConfigMaps), waits until the sync waits on its hook, injects the fault, and measures from the fault clearing
to the app being Synced and Healthy at that commit with no operation running and its lock free. Real
processes: redis-server, 2 Celery workers, a tick sent every `beat_tick` seconds (as beat does), and the
emulator (`python -m sandbox`) or the cluster `--kubeconfig` names. Operations overlap when one starts
(oplog) before the previous one ended. Run: `python bench/faults.py [--trials 3] [--kubeconfig PATH]`.
It prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pygit2
import redis
import yaml
from celery import Celery
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet import ensure_crd, free_port  # noqa: E402 - bench/ is on the path when run as `python bench/...`

from shared.core.settings import Settings  # noqa: E402
from shared.state import keys  # noqa: E402
from shared.state.app_store import AppStore  # noqa: E402
from workers.catalogue import TASK_ROUTES, Fetch, Tick, send  # noqa: E402
from workers.redis_transport import OWNER_KEY  # noqa: E402

RUN = uuid.uuid4().hex[:6]
APP_NS, DEST_NS = f"bench-apps-{RUN}", f"bench-dest-{RUN}"
APP = "faulty"
SIG = pygit2.Signature("bench", "bench@wavecd.invalid")
FAULTS = ("redis", "worker-main", "pool-child")
CONVERGE_TIMEOUT = 180.0


def wait_for(what: str, check: Any, timeout: float = 60.0, interval: float = 0.05) -> None:  # noqa: ANN401
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def manifests(value: str) -> str:
    hook = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "annotations": {"argocd.argoproj.io/hook": "PreSync",
                                                            "argocd.argoproj.io/hook-delete-policy":
                                                                "BeforeHookCreation"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "hook", "image": "busybox:1.36", "command": ["sleep", "4"]}]}}}}
    docs = [hook] + [{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": f"wave-{w}", "annotations": {"argocd.argoproj.io/sync-wave": str(w)}},
                      "data": {"value": value}} for w in range(3)]
    return yaml.safe_dump_all(docs, sort_keys=False)


def commit(repo: pygit2.Repository, text: str, message: str) -> str:
    blob = repo.create_blob(text.encode())
    sub = repo.TreeBuilder()
    sub.insert("all.yaml", blob, pygit2.GIT_FILEMODE_BLOB)
    top = repo.TreeBuilder()
    top.insert("app", sub.write(), pygit2.GIT_FILEMODE_TREE)
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("refs/heads/main", SIG, SIG, message, top.write(), parents))


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir.parent / "redis.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
             "--maxmemory-policy", "noeviction"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("redis", self.up, 30)

    def up(self) -> bool:
        r = redis.Redis.from_url(self.url)
        try:
            return bool(r.ping())
        except redis.ConnectionError:
            return False
        finally:
            r.close()

    def stop(self, sig: int, wipe: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        if wipe:
            shutil.rmtree(self.dir)
            self.dir.mkdir()


class Workers:
    """Two workers; a killed one is replaced at once, as a supervisor would."""

    def __init__(self, logdir: Path, env: dict[str, str]) -> None:
        self.logdir, self.env = logdir, env
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = self.logdir / f"worker-{self.started}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "git,apply,health",
             "-c", "1", "-n", f"fault{self.started}-{RUN}@%h", "--loglevel=INFO", "--without-gossip",
             "--without-mingle"], cwd=ROOT, env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
        self.procs[proc.pid] = proc
        wait_for(f"worker {self.started}", lambda: b"ready." in log.read_bytes() or proc.poll() is not None, 90)
        if proc.poll() is not None:
            raise SystemExit(f"worker {self.started} exited:\n{log.read_text(errors='replace')[-3000:]}")
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs.values() if p.poll() is None]

    def holding(self, r: redis.Redis) -> subprocess.Popen[bytes]:
        """The worker whose main process holds the app's messages now (else the newest one)."""
        alive = {p.pid: p for p in self.alive()}
        for owner in r.hvals(OWNER_KEY):
            pid = int(owner.decode().split(":")[1])
            if pid in alive:
                return alive[pid]
        return max(alive.values(), key=lambda p: p.pid)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # orphaned pool children of a killed main process
            except ProcessLookupError:
                pass


def overlaps(store: AppStore) -> int:
    starts: dict[str, float] = {}
    spans = []
    for entry in store.operation_log(APP):
        if entry["event"] == "start":
            starts[entry["op"]] = entry["at"]
        elif entry["event"] == "end" and entry["op"] in starts:
            spans.append((starts.pop(entry["op"]), entry["at"]))
    spans.sort()
    return sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def _secs(at: float | None, since: float) -> str:
    return "never" if at is None else f"{at - since:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS), help="which faults, comma-separated")
    parser.add_argument("--kubeconfig", help="a cluster to use instead of starting the emulator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wavecd-faults-"))
    cleanup: list[Any] = []
    try:
        return run(args, tmp, cleanup)
    finally:
        for action in reversed(cleanup):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - best effort: report and go on
                print(f"cleanup failed: {exc}", file=sys.stderr)
        if args.keep:
            print(f"logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, cleanup: list[Any]) -> int:
    rds = Redis(tmp)
    rds.start()
    cleanup.append(lambda: rds.stop(signal.SIGTERM))
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig).resolve()
    else:
        kubeconfig = tmp / "kubeconfig"
        sandbox = subprocess.Popen([sys.executable, "-m", "sandbox", "--simulate-controllers", "--kubeconfig-out",
                                    str(kubeconfig)], cwd=ROOT,
                                   stdout=open(tmp / "sandbox.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                   start_new_session=True)
        cleanup.append(lambda: (os.killpg(sandbox.pid, signal.SIGTERM), sandbox.wait(15)))
        wait_for("the emulator", kubeconfig.exists, 60)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    ensure_crd(api)
    core = client.CoreV1Api(api)
    for ns in (APP_NS, DEST_NS):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    if args.kubeconfig:  # a cluster that outlives the run: leave nothing of it behind
        cleanup.append(lambda: [core.delete_namespace(ns) for ns in (APP_NS, DEST_NS)])

    repo_path = tmp / "repo.git"
    repo = pygit2.init_repository(str(repo_path), bare=True, initial_head="main")
    repo_url = f"file://{repo_path}"
    head = commit(repo, manifests("0"), "initial")
    client.CustomObjectsApi(api).create_namespaced_custom_object("argoproj.io", "v1alpha1", APP_NS, "applications", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": APP, "namespace": APP_NS},
        "spec": {"project": "default", "source": {"repoURL": repo_url, "path": "app", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": DEST_NS},
                 "syncPolicy": {"automated": {"prune": True}}}})

    env = {"WAVECD_REDIS_URL": rds.url, "WAVECD_HOME": str(tmp / "home"), "WAVECD_KUBECONFIG": str(kubeconfig),
           "WAVECD_APP_NAMESPACE": APP_NS, "WAVECD_RECONCILE_PERIOD": "3600", "WAVECD_RECONCILE_JITTER": "0"}
    workers = Workers(tmp, env)
    cleanup.append(workers.stop)
    workers.start()
    workers.start()

    celery = Celery("bench-faults", broker=rds.url)
    celery.conf.task_routes = TASK_ROUTES
    stop_ticks = threading.Event()
    tick_every = Settings().beat_tick

    def beat() -> None:  # beat's heartbeat; it rides out the Redis restarts like beat does
        while not stop_ticks.wait(tick_every):
            try:
                send(celery, Tick())
            except Exception:  # noqa: BLE001, S110 - Redis is down: the next tick goes through
                pass

    threading.Thread(target=beat, daemon=True).start()
    cleanup.append(stop_ticks.set)
    r = redis.Redis.from_url(rds.url)
    store = AppStore(r)

    def quiet(fn: Any) -> Any:  # noqa: ANN401 - a check that may meet a Redis being restarted
        def check() -> Any:  # noqa: ANN401
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                return False
        return check

    def converged(sha: str) -> bool:
        st, op = store.status(APP), store.operation(APP)
        return (st.get("sync", {}).get("status") == "Synced" and st.get("sync", {}).get("revision") == sha
                and st.get("health", {}).get("status") == "Healthy"
                and (op is None or op.get("phase") not in ("Running", "Terminating"))
                and not r.exists(keys.lock(APP)))

    wait_for("the first sync", quiet(lambda: converged(head)), 120, 0.2)
    results: dict[str, list[float | None]] = {f: [] for f in args.faults.split(",")}
    overlapped: dict[str, int] = dict.fromkeys(results, 0)
    resumed: dict[str, list[float | None]] = {f: [] for f in results}
    trial = 0
    for fault in results:
        for n in range(args.trials):
            trial += 1
            sha = commit(repo, manifests(str(trial)), f"trial {trial}")
            try:
                send(celery, Fetch(repo=repo_url, urgent=[APP]))
            except Exception:  # noqa: BLE001, S110 - the tick's due fetch would find it too
                pass

            def mid_sync(sha: str = sha) -> bool:
                op = store.operation(APP)
                return (op is not None and op.get("phase") == "Running"
                        and (op.get("syncResult") or {}).get("revision") == sha
                        and (op.get("progress") or {}).get("stage") == "wait")
            wait_for(f"trial {trial} to reach its hook", quiet(mid_sync), 120, 0.05)
            before = overlaps(store)
            at_fault = store.operation(APP) or {}
            op_id, seq = at_fault.get("id"), (at_fault.get("progress") or {}).get("seq", 0)
            if fault == "redis":
                sig, wipe = [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGKILL, True)][n % 3]
                rds.stop(sig, wipe)
                time.sleep(1.0)  # the outage: Redis is away for a second
                rds.start()
                cleared = time.monotonic()
            elif fault == "worker-main":
                victim = workers.holding(r)
                os.kill(victim.pid, signal.SIGKILL)  # `kill -9 <pid>`: its pool child is orphaned, not killed
                victim.wait(10)
                cleared = time.monotonic()
                threading.Thread(target=workers.start, daemon=True).start()
            else:
                victim = workers.holding(r)
                children = psutil.Process(victim.pid).children()
                for child in children:
                    child.kill()
                cleared = time.monotonic()

            def moved(op_id: str | None = op_id, seq: int = seq) -> bool:
                op = store.operation(APP) or {}
                return op.get("id") != op_id or (op.get("progress") or {}).get("seq", 0) > seq
            resumed_at = done_at = None
            deadline = cleared + CONVERGE_TIMEOUT
            while done_at is None and time.monotonic() < deadline:
                if resumed_at is None and quiet(moved)():
                    resumed_at = time.monotonic()
                if quiet(lambda sha=sha: converged(sha))():
                    done_at = time.monotonic()
                    resumed_at = resumed_at or done_at
                time.sleep(0.05)
            results[fault].append(None if done_at is None else done_at - cleared)
            print(f"  trial {trial} ({fault}): resumed {_secs(resumed_at, cleared)}, "
                  f"converged {_secs(done_at, cleared)}", file=sys.stderr, flush=True)
            resumed[fault].append(None if resumed_at is None else resumed_at - cleared)
            overlapped[fault] += max(0, (quiet(lambda: overlaps(store))() or 0) - before)
    where = f"the cluster of {args.kubeconfig}" if args.kubeconfig else "the emulator"
    print(f"Fault injection mid-sync: 2 workers, redis-server (AOF), {where}; tick every {tick_every:g}s; "
          f"seconds from the fault clearing to the operation's next step (resumed) and to Synced/Healthy at the "
          f"last commit, no operation running, lock free (converged; includes the sync's own remaining work)")
    print(f"{'fault':<12} {'converged':>10} {'resumed p50/max s':>18} {'converged p50/max s':>20} "
          f"{'overlapping ops':>16}")

    def figures(values: list[float | None]) -> str:
        done = [t for t in values if t is not None]
        return f"{percentile(done, 50):.1f} / {max(done):.1f}" if done else "-"
    for fault, times in results.items():
        done = [t for t in times if t is not None]
        print(f"{fault:<12} {len(done):>5}/{len(times):<4} {figures(resumed[fault]):>18} {figures(times):>20} "
              f"{overlapped[fault]:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
