"""Benchmark: one no-op reconcile cycle of many apps with 1 and then 2 worker processes.

Prints the cycle time for each worker count and their ratio (goals: <= 30 s with 2 workers, ratio
>= 1.8 at 1,000 apps x 10 resources), the Kubernetes API requests per no-op app reconcile, counted by
the emulator (goal <= 1), and the workers' resident memory (goal <= 150 MiB per worker process).

Everything is real: a redis-server, the sandbox emulator as its own process, a pygit2 monorepo served
over file://, Application resources in the emulator, and `celery worker` processes.
Usage: python bench/reconcile_cycle.py [--apps 1000] [--resources 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pygit2
import redis
import yaml
from celery import Celery
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.celery_app import TASK_ROUTES  # noqa: E402

LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "WARNING")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def make_repo(path: Path, apps: int, resources: int) -> str:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wavecd-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        rport = free_port()
        procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL))
        redis_url = f"redis://127.0.0.1:{rport}/0"
        r = redis.Redis.from_url(redis_url)
        wait_for(lambda: _ping(r), 10, "redis")
        kport = free_port()
        kubeconfig = work / "kubeconfig"
        procs.append(subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(kport), "--kubeconfig-out",
                                       str(kubeconfig)], cwd=ROOT, stdout=subprocess.DEVNULL))
        wait_for(kubeconfig.exists, 20, "the sandbox")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        client.ApiextensionsV1Api(api).create_custom_resource_definition(
            yaml.safe_load((ROOT / "k8s/base/crd-application.yaml").read_text()))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        for ns in ("argocd", "bench"):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        t0 = time.monotonic()
        url = make_repo(work / "mono.git", args.apps, args.resources)
        print(f"monorepo: {args.apps} apps x {args.resources} manifests in {time.monotonic() - t0:.1f}s")
        for i in range(args.apps):
            custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications", {
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": f"app-{i}", "namespace": "argocd"},
                "spec": {"source": {"repoURL": url, "path": f"apps/app-{i}", "targetRevision": "HEAD"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": "bench"},
                         "syncPolicy": {"automated": {"prune": True}}}})
        env = {**os.environ, "WAVECD_REDIS_URL": redis_url, "WAVECD_KUBECONFIG": str(kubeconfig),
               "WAVECD_RECONCILE_PERIOD": "100000", "WAVECD_RECONCILE_JITTER": "0", "WAVECD_HOME": str(work),
               "WAVECD_GIT_CACHE_DIR": str(work / "cache"), "WAVECD_LOG_LEVEL": LOG_LEVEL}
        celery = Celery("bench", broker=redis_url)
        celery.conf.task_routes = TASK_ROUTES

        def start_workers(n: int) -> list[subprocess.Popen]:
            started = []
            for k in range(n):
                log = open(work / f"worker-{n}-{k}.log", "wb")  # noqa: SIM115
                started.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "git,apply,health",
                     "-c", "1", "-n", f"b{n}-{k}@%h", "--without-gossip", "--without-mingle",
                     "--loglevel=" + LOG_LEVEL],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            time.sleep(3)
            return started

        def stop(workers: list[subprocess.Popen]) -> None:
            for w in workers:
                os.killpg(w.pid, signal.SIGTERM)
            for w in workers:
                w.wait(30)

        def reconciled_since(since: str) -> int:
            pipe = r.pipeline()
            for i in range(args.apps):
                pipe.hget(f"wavecd:state:app-{i}", "status")
            done = 0
            for raw in pipe.execute():
                if raw and json.loads(raw).get("reconciledAt", "") >= since:
                    done += 1
            return done

        queue_lists = [q + suffix for q in ("git", "apply", "health") for suffix in ("", "\x06\x163", "\x06\x166",
                                                                                   "\x06\x169")]

        def idle() -> bool:
            """Cheap first test (so polling does not steal the workers' CPU): queues empty, no app lock held."""
            pipe = r.pipeline()
            for key in queue_lists:
                pipe.llen(key)
            if any(pipe.execute()):
                return False
            return next(r.scan_iter(match="wavecd:lock:*", count=1000), None) is None

        def synced() -> int:
            pipe = r.pipeline()
            for i in range(args.apps):
                pipe.hget(f"wavecd:state:app-{i}", "status")
            return sum(1 for raw in pipe.execute()
                       if raw and json.loads(raw).get("sync", {}).get("status") == "Synced")

        workers = start_workers(2)
        t0 = time.monotonic()
        celery.send_task("wavecd.tick")
        wait_for(lambda: synced() == args.apps, 1800, "the initial sync")
        print(f"initial sync of {args.apps * args.resources} resources: {time.monotonic() - t0:.1f}s (2 workers)")
        stop(workers)

        results = {}
        for n in (1, 2):
            workers = start_workers(n)
            # Warm each process (discovery, live cache) with one cycle, then time the second.
            for attempt in ("warm", "timed"):
                time.sleep(1.2)
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{kport}/sandbox/requests",
                                                              method="DELETE"))
                r.zadd("wavecd:due", {f"app-{i}": 0 for i in range(args.apps)})
                t0 = time.monotonic()
                celery.send_task("wavecd.tick")
                wait_for(lambda s=since: idle() and reconciled_since(s) == args.apps, 1800,
                         "a reconcile cycle", interval=0.05)
                elapsed = time.monotonic() - t0
                counts = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{kport}/sandbox/requests").read())
                total = sum(c["count"] for c in counts["requests"])
                if attempt == "timed":
                    results[n] = elapsed
                    both, single = max(rss_mib(w.pid) for w in workers)
                    print(f"{n} worker process(es): no-op cycle {elapsed:.1f}s, {total / args.apps:.3f} API "
                          f"requests per app reconcile, worker RSS {single:.0f} MiB per process "
                          f"({both:.0f} MiB with the Celery main process)")
            stop(workers)
        print(f"speed-up with 2 workers: {results[1] / results[2]:.2f}x  (goals: <= 30 s with 2, ratio >= 1.8)")
    finally:
        for p in procs:
            p.terminate()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _ping(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.ConnectionError:
        return False


if __name__ == "__main__":
    main()
