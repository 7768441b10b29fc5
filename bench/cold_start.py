"""Benchmark: a cold start of many apps at once, until every app is Synced and Healthy.

1,000 Applications x 10 resources (ConfigMaps, Secrets, Services) appear together in an empty cluster, with
automated sync; the clock runs from the first tick until every app is Synced and Healthy and the queues are
drained. Goal (issue #11, on the real control plane with 2 workers on a 2-core machine): <= 90 s. It also prints
how many apps were done at 25/50/75/100 % of the time, and the Kubernetes API requests per resource.

Usage: python bench/cold_start.py [--apps 1000] [--resources 10] [--workers 2] [--kubeconfig PATH]
(without --kubeconfig it runs against the emulator). It prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time

from fleet import Fleet, wait_for

from workers.catalogue import Tick, send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kubeconfig", help="a cluster to use instead of starting the emulator")
    args = parser.parse_args()
    fleet = Fleet(args.apps, args.resources, args.kubeconfig)
    try:
        fleet.start()
        workers = fleet.start_workers(args.workers)
        fleet.create_applications()
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()
        send(fleet.celery(), Tick())

        def done() -> bool:
            ready = sum(1 for s in fleet.statuses() if s.get("sync", {}).get("status") == "Synced"
                        and s.get("health", {}).get("status") == "Healthy")
            samples.append((time.monotonic() - t0, ready))
            return ready == args.apps

        wait_for(done, 1800, "every app Synced and Healthy", 0.5)
        elapsed = time.monotonic() - t0
        wait_for(fleet.idle, 300, "the queues to drain", 0.2)
        requests = fleet.kube_requests()
        print(f"cold start on {fleet.where}, {args.workers} workers: {args.apps} apps x {args.resources} resources "
              f"Synced and Healthy in {elapsed:.1f}s (goal <= 90 s: {'met' if elapsed <= 90 else 'MISSED'})")
        marks = []
        for fraction in (0.25, 0.5, 0.75, 1.0):
            at = elapsed * fraction
            count = max((n for t, n in samples if t <= at + 1e-6), default=0)
            marks.append(f"{int(fraction * 100)}% of the time: {count} apps")
        print("  " + "; ".join(marks))
        print(f"  {requests} Kubernetes API requests ({requests / (args.apps * args.resources):.2f} per resource, "
              f"watches excepted)")
        fleet.stop_workers(workers)
    finally:
        fleet.close()


if __name__ == "__main__":
    main()
