"""Bad input lands as a precise condition on that app only, and the status survives a wiped Redis."""

from __future__ import annotations

import pytest

from tests.pipeline.harness import GROUP, VERSION, Harness, manifests
from tests.pipeline.objects import cm

pytestmark = pytest.mark.integration


def _condition(harness: Harness, app: str) -> str:
    return " ".join(c.get("message", "") for c in harness.status(app).get("conditions", []))


def test_broken_manifest_is_a_condition_and_other_apps_still_sync(harness: Harness, git_factory, celery_workers):
    bad = git_factory.create("bad", {"app/ok.yaml": manifests(cm("fine")),
                                     "app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n"})
    good = git_factory.create("good", {"app/a.yaml": manifests(cm("good"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("bad", bad.url, "app")
    harness.application("good", good.url, "app")
    harness.wait_synced("good", revision=good.head())
    harness.wait("a comparison error on bad", lambda: "broken.yaml" in _condition(harness, "bad"),
                 describe=lambda: harness.status("bad"))
    assert harness.status("bad")["sync"]["status"] == "Unknown"
    assert harness.operation("bad") is None  # nothing was applied
    # Fixing the file in git clears the condition and syncs.
    fixed = bad.commit({"app/broken.yaml": manifests(cm("repaired"))})
    harness.fetch(bad.url, due=["bad"])
    harness.wait_synced("bad", revision=fixed)
    assert _condition(harness, "bad") == ""


def test_missing_repo_and_unknown_kind_are_reported(harness: Harness, git_factory, celery_workers, tmp_path):
    repo = git_factory.create("kinds", {"app/a.yaml": manifests(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("nowhere", f"file://{tmp_path}/does-not-exist.git", "app")
    harness.application("widgets", repo.url, "app")
    harness.wait("missing repo reported", lambda: "does-not-exist" in _condition(harness, "nowhere"),
                 describe=lambda: harness.status("nowhere"))
    harness.wait("unknown kind reported", lambda: "Widget" in _condition(harness, "widgets") or any(
        "Widget" in (r.get("message") or "") for r in (harness.operation("widgets") or {})
        .get("syncResult", {}).get("resources", [])), describe=lambda: (harness.status("widgets"),
                                                                        harness.operation("widgets")))


def test_invalid_application_spec_is_a_condition(harness: Harness, celery_workers):
    celery_workers.start(1, concurrency=1, env=harness.worker_env())
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
            "metadata": {"name": "invalid", "namespace": harness.app_namespace},
            # The CRD's schema accepts an empty repoURL (it only requires the field); WaveCD must refuse it.
            "spec": {"project": "default", "destination": {"namespace": harness.dest_namespace},
                     "source": {"repoURL": "", "path": "x"}}}
    harness.custom.create_namespaced_custom_object(GROUP, VERSION, harness.app_namespace, "applications", body)
    harness.wait("InvalidSpecError", lambda: "repoURL" in _condition(harness, "invalid"),
                 describe=lambda: harness.status("invalid"))


def test_status_is_written_to_the_application_and_survives_a_wiped_redis(harness: Harness, git_factory,
                                                                          celery_workers):
    repo = git_factory.create("mirror", {"app/a.yaml": manifests(cm("one"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("mirror", repo.url, "app")
    harness.wait_synced("mirror", revision=repo.head())

    def cr_status() -> dict:
        obj = harness.custom.get_namespaced_custom_object(GROUP, VERSION, harness.app_namespace,
                                                          "applications", "mirror")
        return obj.get("status") or {}
    harness.wait("status on the Application", lambda: cr_status().get("sync", {}).get("status") == "Synced"
                 and cr_status().get("health", {}).get("status") == "Healthy", describe=cr_status)
    assert cr_status()["history"][-1]["revision"] == repo.head()

    harness.redis.flushdb()
    harness.wait("status rebuilt from the cluster",
                 lambda: (harness.status("mirror").get("history") or [{}])[-1].get("revision") == repo.head(),
                 describe=lambda: harness.status("mirror"))
    # The rebuilt inventory still lets prune find what git dropped.
    repo.commit({"app/a.yaml": manifests(cm("two"))})
    harness.fetch(repo.url, due=["mirror"])
    harness.wait("one pruned after the wipe", lambda: [c.metadata.name for c in harness.core.list_namespaced_config_map(
        harness.dest_namespace).items if c.metadata.name in ("one", "two")] == ["two"])
