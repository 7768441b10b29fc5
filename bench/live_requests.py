"""How many API requests reading an app's live state costs, through the per-process live cache.

Starts the Kubernetes emulator in this process, creates N apps x 10 objects (4 ConfigMaps, 3 Secrets,
1 Service, 1 ServiceAccount, 1 Role, all carrying Argo CD tracking annotations), then, from a fresh
`Cluster`, reads every app's live state twice through `Cluster.live_for` and prints the API requests
per app read as counted by the emulator (discovery, LISTs and WATCHes included), next to what
uncached reads (one GET per object) would cost.

    python bench/live_requests.py [--apps 1000] [--namespaces 100] [--workers 8]

Goal: a no-op reconcile costs at most one request per app on average.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.server import SandboxServer  # noqa: E402
from shared.cluster.client import Cluster  # noqa: E402
from shared.core.resources import ResourceKey  # noqa: E402

KINDS = ([("v1", "ConfigMap", f"cm{i}") for i in range(4)] + [("v1", "Secret", f"secret{i}") for i in range(3)]
         + [("v1", "Service", "svc"), ("v1", "ServiceAccount", "sa"),
            ("rbac.authorization.k8s.io/v1", "Role", "role")])


def manifest(api_version: str, kind: str, name: str) -> dict:
    obj: dict = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if kind == "ConfigMap":
        obj["data"] = {"key": "value"}
    elif kind == "Secret":
        obj["stringData"] = {"password": "not-a-real-secret"}
    elif kind == "Service":
        obj["spec"] = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    elif kind == "Role":
        obj["rules"] = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    return obj


def app_objects(app: int) -> list[tuple[str, str, str]]:
    return [(api_version, kind, f"app{app}-{suffix}") for api_version, kind, suffix in KINDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    server = SandboxServer().start()
    kubeconfig = server.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    writer = Cluster.from_kubeconfig(kubeconfig, "sandbox")
    namespaces = [f"bench-{i}" for i in range(args.namespaces)]
    for ns in namespaces:
        writer.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def create_app(app: int) -> None:
        ns = namespaces[app % len(namespaces)]
        for api_version, kind, name in app_objects(app):
            writer.create(writer.prepare(manifest(api_version, kind, name), ns, f"app{app}", "annotation"))

    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(create_app, range(args.apps)))
    created = time.perf_counter() - started
    print(f"created {args.apps} apps x {len(KINDS)} objects in {created:.1f}s "
          f"({args.apps * len(KINDS) / created:.0f} objects/s)")
    writer.close()

    reader = Cluster.from_kubeconfig(kubeconfig, "sandbox")
    server.reset_counts()

    def keys(app: int) -> list[tuple[str, ResourceKey]]:
        ns = namespaces[app % len(namespaces)]
        return [(api_version, ResourceKey(api_version.rpartition("/")[0], kind, ns, name))
                for api_version, kind, name in app_objects(app)]

    for round_no in (1, 2):
        before = sum(server.request_counts().values())
        started = time.perf_counter()
        found = 0
        for app in range(args.apps):
            live = reader.live_for(keys(app))
            found += len(live)
            assert all(o["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].startswith(f"app{app}:")
                       for o in live.values())
        elapsed = time.perf_counter() - started
        requests = sum(server.request_counts().values()) - before
        print(f"read {round_no}: {args.apps} apps, {found} objects found, {requests} API requests = "
              f"{requests / args.apps:.3f} requests per app read, {elapsed * 1000 / args.apps:.2f} ms per app")
    by_verb: dict[str, int] = {}
    for (verb, _), count in server.request_counts().items():
        by_verb[verb] = by_verb.get(verb, 0) + count
    print(f"requests by verb over both reads: {dict(sorted(by_verb.items()))}")
    print(f"uncached reads would cost {len(KINDS)} GET requests per app read")

    started = time.perf_counter()
    for app in range(min(args.apps, 100)):
        for api_version, key in keys(app):
            reader.get(key, api_version=api_version, fresh=True)
    fresh_ms = (time.perf_counter() - started) * 1000 / min(args.apps, 100)
    print(f"for comparison, fresh GETs: {fresh_ms:.2f} ms per app read")
    reader.close()
    server.stop()


if __name__ == "__main__":
    main()
