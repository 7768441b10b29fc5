"""The fetch step's two speeds: apps a webhook matched are refreshed right after the fetch, at the pushed commit;
the tree comparison still finds the apps a push changed that no path match named."""

from __future__ import annotations

import pytest

from tests.pipeline.harness import Harness, manifests
from tests.pipeline.objects import cm

pytestmark = pytest.mark.integration


def test_matched_app_syncs_the_pushed_commit_and_an_unmatched_change_is_still_found(
        harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("twospeed", {"one/a.yaml": manifests(cm("one", v="1")),
                                           "two/a.yaml": manifests(cm("two", v="1"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("one", repo.url, "one")
    harness.application("two", repo.url, "two")
    harness.wait_synced("one", revision=repo.head())
    harness.wait_synced("two", revision=repo.head())

    # The webhook matched `one` (urgent); `two` changed too, but no path match named it.
    pushed = repo.commit({"one/a.yaml": manifests(cm("one", v="2")), "two/a.yaml": manifests(cm("two", v="2"))})
    harness.fetch(repo.url, due=[], urgent=["one"])
    harness.wait_synced("one", revision=pushed)
    harness.wait_synced("two", revision=pushed)
    assert harness.core.read_namespaced_config_map("one", harness.dest_namespace).data == {"v": "2"}
    assert harness.core.read_namespaced_config_map("two", harness.dest_namespace).data == {"v": "2"}
    assert harness.store.source("one")["commit"] == pushed
