"""The one answer to "which apps did this push change?": the fetch step's detection (`fetch_and_detect`).

The webhook receiver's path matches only say which apps to refresh first (urgent); the detection compares
git tree ids and render fingerprints, and so also sees what no path names: a kustomize overlay whose base,
outside the app's path, changed. The in-process tests call the detection as the `fetch` task does (real
Redis, real git, the suite's cluster for the declarative Secrets it reads); the last one runs the whole
chain in Celery workers: a push touching only a base syncs the overlay app with nobody urgent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.core.settings import Settings
from shared.pipeline.services import Services
from shared.pipeline.source_watch import FetchOutcome, fetch_and_detect
from tests.pipeline.harness import Harness, KubeTarget, manifests
from tests.pipeline.objects import cm

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n"


@pytest.fixture()
def svc(redis_client: redis.Redis, cd_cluster: KubeTarget, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(kubeconfig=cd_cluster.kubeconfig, kube_context=cd_cluster.context,
                        git_cache_dir=tmp_path / "git", app_namespace="wavecd-detection-tests")
    yield Services(settings=settings, redis_client=redis_client)


def _put_app(svc: Services, name: str, repo_url: str, path: str, **source: Any) -> None:  # noqa: ANN401
    svc.store.put_app(name, {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name},
        "spec": {"project": "default", "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD",
                                                  **source},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}})


def _detect(svc: Services, repo_url: str, urgent: list[str] | None = None) -> FetchOutcome:
    early: list[list[str]] = []
    outcome = fetch_and_detect(svc, repo_url, [], urgent or [], on_fetched=early.append)
    assert early == ([outcome.early] if outcome.early else [])
    return outcome


def test_only_apps_whose_tree_changed_are_refreshed(svc: Services, git_factory) -> None:
    repo = git_factory.create("mono", {"apps/a/cm.yaml": CM.format("a"), "apps/b/cm.yaml": CM.format("b")})
    for name in ("a", "b"):
        _put_app(svc, name, repo.url, f"apps/{name}")
    first = _detect(svc, repo.url)
    assert sorted(first.refresh) == ["a", "b"], "never seen: both are new"

    repo.commit({"apps/b/cm.yaml": CM.format("b2")})
    second = _detect(svc, repo.url)
    assert second.refresh == ["b"] and second.unchanged == ["a"]
    assert svc.store.source("b")["commit"] == repo.head()

    assert _detect(svc, repo.url).refresh == [], "the same commit again changes nothing"


def test_directory_options_are_part_of_what_changed(svc: Services, git_factory) -> None:
    repo = git_factory.create("opts", {"apps/a/cm.yaml": CM.format("a")})
    _put_app(svc, "a", repo.url, "apps/a")
    _detect(svc, repo.url)
    _put_app(svc, "a", repo.url, "apps/a", directory={"recurse": True})
    assert _detect(svc, repo.url).refresh == ["a"], "a spec change re-renders even at the same commit"


def test_a_path_gone_from_the_commit_counts_as_changed(svc: Services, git_factory) -> None:
    repo = git_factory.create("gone", {"apps/a/cm.yaml": CM.format("a"), "apps/b/cm.yaml": CM.format("b")})
    _put_app(svc, "a", repo.url, "apps/a")
    _detect(svc, repo.url)
    repo.commit({"apps/a/cm.yaml": None})
    assert _detect(svc, repo.url).refresh == ["a"], "its refresh reports the missing path"


def test_a_push_to_a_kustomize_base_refreshes_the_overlay_app(svc: Services, git_factory) -> None:
    repo = git_factory.create("kbase", {
        "base/kustomization.yaml": KUSTOMIZATION + "resources:\n- cm.yaml\n",
        "base/cm.yaml": CM.format("base-cm"),
        "overlays/prod/kustomization.yaml": KUSTOMIZATION + "namePrefix: prod-\nresources:\n- ../../base\n",
        "plain/cm.yaml": CM.format("plain"),
    })
    _put_app(svc, "prod", repo.url, "overlays/prod")
    _put_app(svc, "plain", repo.url, "plain")
    _detect(svc, repo.url)
    repo.commit({"base/cm.yaml": CM.format("changed")})
    # What the receiver sends for this push: no app matched by path, so nobody is urgent.
    outcome = _detect(svc, repo.url, urgent=[])
    assert outcome.refresh == ["prod"], "the overlay's own tree did not change; its base did"
    assert outcome.unchanged == ["plain"]


def test_urgent_apps_are_published_first_and_not_refreshed_twice(svc: Services, git_factory) -> None:
    repo = git_factory.create("urgent", {"apps/a/cm.yaml": CM.format("a"), "apps/b/cm.yaml": CM.format("b")})
    for name in ("a", "b"):
        _put_app(svc, name, repo.url, f"apps/{name}")
    _detect(svc, repo.url)
    repo.commit({"apps/a/cm.yaml": CM.format("a2"), "apps/b/cm.yaml": CM.format("b2")})
    outcome = _detect(svc, repo.url, urgent=["a"])
    assert outcome.early == ["a"] and outcome.refresh == ["b"]
    assert svc.store.source("a")["commit"] == svc.store.source("b")["commit"] == repo.head()


@pytest.mark.integration
def test_base_only_push_syncs_the_overlay_app_with_nobody_urgent(harness: Harness, git_factory,
                                                                  celery_workers) -> None:
    repo = git_factory.create("kpush", {
        "base/kustomization.yaml": KUSTOMIZATION + "resources:\n- cm.yaml\n",
        "base/cm.yaml": manifests(cm("settings", v="1")),
        "overlays/prod/kustomization.yaml": KUSTOMIZATION + "namePrefix: prod-\nresources:\n- ../../base\n",
    })
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("prod", repo.url, "overlays/prod")
    harness.wait_synced("prod", revision=repo.head())

    pushed = repo.commit({"base/cm.yaml": manifests(cm("settings", v="2"))})
    harness.fetch(repo.url, due=[], urgent=[])  # the receiver's fetch for a push no app path names
    harness.wait_synced("prod", revision=pushed)
    assert harness.core.read_namespaced_config_map("prod-settings", harness.dest_namespace).data == {"v": "2"}
