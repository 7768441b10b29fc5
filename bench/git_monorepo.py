"""Benchmark: one push to a 500-app monorepo costs one fetch and one render.

Builds a bare repository with 500 apps of 10 manifests each, fetches it into a RepoCache and renders every
app once; then pushes a commit that touches one app and runs the pipeline's fetch step: ls-remote, fetch,
change detection by tree id for all 500 apps, render of the changed ones. Prints the figures; asserts
nothing (timing goals are read, not tested). Goal: 1 fetch, 1 render, a 10-manifest render well under
10 ms.

    .venv/bin/python bench/git_monorepo.py [--apps 500] [--manifests 10] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pygit2
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.source import render  # noqa: E402
from shared.source.git_source import RepoCache  # noqa: E402
from shared.source.manifests import DirectoryOptions  # noqa: E402

SIG = pygit2.Signature("bench", "bench@wavecd.invalid", 1_700_000_000, 0)


def manifest(app: int, index: int, version: str = "1") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{app}-d{index}
  namespace: team{app % 20}
  labels: {{app: app{app}, version: "{version}"}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app{app}-d{index}}}}}
  template:
    metadata: {{labels: {{app: app{app}-d{index}}}}}
    spec:
      containers:
      - name: main
        image: registry.example.com/app{app}:{version}
        ports: [{{containerPort: 8080}}]
        resources: {{requests: {{cpu: 10m, memory: 32Mi}}}}
"""


def commit(repo: pygit2.Repository, files: dict[str, str], message: str) -> str:
    index = pygit2.Index()
    parents = []
    if "refs/heads/main" in repo.references:
        parent = repo.references["refs/heads/main"].peel(pygit2.Commit)
        index.read_tree(parent.tree)
        parents = [parent.id]
    for path, text in files.items():
        index.add(pygit2.IndexEntry(path, repo.create_blob(text.encode()), pygit2.enums.FileMode.BLOB))
    return str(repo.create_commit("refs/heads/main", SIG, SIG, message, index.write_tree(repo), parents))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--manifests", type=int, default=10)
    parser.add_argument("--redis-url", default=None, help="render cache (default: none, renders in process)")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url) if args.redis_url else None
    options = DirectoryOptions()

    with tempfile.TemporaryDirectory(prefix="wavecd-bench-") as tmp:
        remote = pygit2.init_repository(f"{tmp}/mono.git", bare=True, initial_head="main")
        started = time.perf_counter()
        files = {f"apps/app{a}/m{i}.yaml": manifest(a, i)
                 for a in range(args.apps) for i in range(args.manifests)}
        old = commit(remote, files, "initial")
        url = f"file://{tmp}/mono.git"
        print(f"built monorepo: {args.apps} apps x {args.manifests} manifests "
              f"in {time.perf_counter() - started:.2f}s")

        cache = RepoCache(Path(tmp) / "cache")
        started = time.perf_counter()
        cache.fetch(url)
        head = cache.resolve(url, "HEAD")
        for a in range(args.apps):
            render.render_app(cache, client, url, head, f"apps/app{a}", options)
        print(f"cold start: 1 clone + {args.apps} renders in {time.perf_counter() - started:.2f}s")

        # One push touching one app.
        bump = {f"apps/app7/m{i}.yaml": manifest(7, i, "2") for i in range(args.manifests)}
        new = commit(remote, bump, "bump")
        cache.stats.clear()
        render.stats.clear()
        started = time.perf_counter()
        result = cache.fetch(url)
        head = cache.resolve(url, "HEAD")
        assert head == new
        # Which apps changed, as the fetch step's detection decides: the path's tree id, then the fingerprint.
        paths = [f"apps/app{a}" for a in range(args.apps)]
        trees_before = render.path_tree_ids(cache, url, old, paths)
        trees_after = render.path_tree_ids(cache, url, head, paths)
        changed = [a for a, path in enumerate(paths) if trees_before[path] != trees_after[path]
                   and render.source_fingerprint(cache, url, old, path, options)
                   != render.source_fingerprint(cache, url, head, path, options)]
        for a in changed:
            render.render_app(cache, client, url, head, f"apps/app{a}", options)
        wall = time.perf_counter() - started
        print(f"after one push: fetched={result.fetched} git fetches={cache.stats['fetch']} "
              f"ls-remotes={cache.stats['ls_remote']} apps changed={len(changed)} "
              f"apps rendered={render.stats['renders']} wall={wall * 1000:.1f} ms")

        # Per-render time of one 10-manifest app, without the Redis cache.
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            render.render_app(cache, None, url, head, "apps/app7", options)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"render of a {args.manifests}-manifest app: median {statistics.median(times):.2f} ms, "
              f"max {max(times):.2f} ms (goal: well under 10 ms)")
        if client is not None:
            render.stats.clear()
            t0 = time.perf_counter()
            render.render_app(cache, client, url, head, "apps/app7", options)
            print(f"render cache hit: {(time.perf_counter() - t0) * 1000:.2f} ms "
                  f"(hits={render.stats['cache_hits']})")


if __name__ == "__main__":
    main()
