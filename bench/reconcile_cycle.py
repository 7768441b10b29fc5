"""Benchmark: one no-op reconcile cycle of many apps with 1 and then 2 worker processes.

Prints the cycle time for each worker count and their ratio (goals of issue #11, on the real control plane with
2 workers: <= 10 s at 1,000 apps x 10 resources, and <= 1 Kubernetes API request per no-op app reconcile), the
requests per app reconcile (WaveCD's own `argocd_app_k8s_request_total`, watches excepted), and the workers'
resident memory (goal <= 150 MiB per worker process).

Everything is real: a redis-server, the Kubernetes API (the emulator as its own process, or the cluster that
`--kubeconfig` names, e.g. `scripts/kube.sh start`), a pygit2 monorepo served over file://, Application
resources, and `celery worker` processes. The first sync of the fleet is a cold start, measured on its own by
bench/cold_start.py. Usage: python bench/reconcile_cycle.py [--apps 1000] [--resources 10] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import time

from fleet import Fleet, rss_mib, wait_for

from shared.state import keys
from workers.catalogue import Tick, send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--kubeconfig", help="a cluster to use instead of starting the emulator")
    args = parser.parse_args()
    fleet = Fleet(args.apps, args.resources, args.kubeconfig)
    try:
        fleet.start()
        fleet.create_applications()
        celery = fleet.celery()
        workers = fleet.start_workers(2, "init")
        t0 = time.monotonic()
        send(celery, Tick())
        wait_for(lambda: sum(1 for s in fleet.statuses() if s.get("sync", {}).get("status") == "Synced")
                 == args.apps, 1800, "the initial sync", 0.5)
        print(f"initial sync of {args.apps * args.resources} resources: {time.monotonic() - t0:.1f}s (2 workers)")
        wait_for(fleet.idle, 300, "the initial sync to settle", 0.2)
        fleet.stop_workers(workers)

        results = {}
        for n in (1, 2):
            workers = fleet.start_workers(n)
            # Warm each process (discovery, live cache) with one cycle, then time the second.
            for attempt in ("warm", "timed"):
                time.sleep(1.2)
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                before = fleet.kube_requests()
                fleet.redis.zadd(keys.DUE, {f"app-{i}": 0 for i in range(args.apps)})
                t0 = time.monotonic()
                send(celery, Tick())
                wait_for(lambda s=since: fleet.idle() and sum(
                    1 for st in fleet.statuses() if st.get("reconciledAt", "") >= s) == args.apps,
                    1800, "a reconcile cycle", interval=0.05)
                elapsed = time.monotonic() - t0
                requests = fleet.kube_requests() - before
                if attempt == "timed":
                    results[n] = elapsed
                    both, single = max(rss_mib(w.pid) for w in workers)
                    print(f"{n} worker process(es): no-op cycle {elapsed:.1f}s, {requests / args.apps:.3f} API "
                          f"requests per app reconcile, worker RSS {single:.0f} MiB per process "
                          f"({both:.0f} MiB with the Celery main process)")
            fleet.stop_workers(workers)
        print(f"on {fleet.where}: speed-up with 2 workers {results[1] / results[2]:.2f}x; 2 workers "
              f"{results[2]:.1f}s (goal <= 10 s: {'met' if results[2] <= 10 else 'MISSED'})")
    finally:
        fleet.close()


if __name__ == "__main__":
    main()
