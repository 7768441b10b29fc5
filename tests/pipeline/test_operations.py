"""Argo CD's sync semantics end to end: prune, self-heal, hooks, failure, terminate, history, finalizer."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from shared.apps.app_actions import IN_PROGRESS, NO_OPERATION, ActionConflict, ActionError, AppActions
from shared.state.app_lock import AppLocks
from tests.pipeline.harness import Harness, manifests
from tests.pipeline.objects import cm, deployment, job_hook, secret

pytestmark = pytest.mark.integration


def _exists(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def test_prune_removes_what_git_dropped_and_respects_prune_false(harness: Harness, git_factory, celery_workers):
    keep = cm("keep", annotations={"argocd.argoproj.io/sync-options": "Prune=false"})
    repo = git_factory.create("prune", {"app/a.yaml": manifests(cm("a"), cm("b"), keep)})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("prune", repo.url, "app", prune=True)
    harness.wait_synced("prune", revision=repo.head())
    ns = harness.dest_namespace
    assert _exists(harness.core.read_namespaced_config_map, "b", ns)

    new = repo.commit({"app/a.yaml": manifests(cm("a"))})
    harness.fetch(repo.url, due=["prune"])
    harness.wait("b pruned", lambda: not _exists(harness.core.read_namespaced_config_map, "b", ns),
                 describe=lambda: harness.operation("prune"))
    op = harness.wait_operation("prune", "Succeeded")
    assert op["syncResult"]["revision"] == new
    results = {r["name"]: r["status"] for r in op["syncResult"]["resources"]}
    assert results["b"] == "Pruned"
    assert results["keep"] == "PruneSkipped"
    assert _exists(harness.core.read_namespaced_config_map, "keep", ns)
    assert _exists(harness.core.read_namespaced_config_map, "a", ns)


def test_without_prune_dropped_objects_stay_out_of_sync(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("noprune", {"app/a.yaml": manifests(cm("a"), cm("b"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("noprune", repo.url, "app", prune=False)
    harness.wait_synced("noprune", revision=repo.head())
    repo.commit({"app/a.yaml": manifests(cm("a"))})
    harness.fetch(repo.url, due=["noprune"])

    def out_of_sync_b() -> bool:
        res = {r["name"]: r for r in harness.status("noprune").get("resources", [])}
        return "b" in res and res["b"].get("requiresPruning") is True
    harness.wait("b reported as requiring pruning", out_of_sync_b, describe=lambda: harness.status("noprune"))
    assert harness.status("noprune")["sync"]["status"] == "OutOfSync"
    assert _exists(harness.core.read_namespaced_config_map, "b", harness.dest_namespace)


def test_self_heal_reverts_a_manual_change(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("heal", {"app/a.yaml": manifests(cm("settings", mode="git"))})
    # The reconcile period stays an hour: the drift must be noticed through the workers' watches.
    celery_workers.start(1, concurrency=2, env=harness.worker_env(WAVECD_SELF_HEAL_BACKOFF_BASE="0.1"))
    harness.application("heal", repo.url, "app", self_heal=True)
    harness.wait_synced("heal", revision=repo.head())
    ns = harness.dest_namespace
    harness.core.patch_namespaced_config_map("settings", ns, {"data": {"mode": "manual"}})
    harness.wait("drift reverted",
                 lambda: harness.core.read_namespaced_config_map("settings", ns).data == {"mode": "git"},
                 timeout=60, tick=False, describe=lambda: harness.status("heal"))
    # Two operations, start and end each: the revert is seen before the second one logs its end.
    harness.wait("the self-heal operation's end logged", lambda: len(harness.store.operation_log("heal")) >= 4,
                 timeout=30, tick=False, describe=lambda: harness.store.operation_log("heal"))


def test_drift_during_the_self_heal_back_off_is_reverted_when_it_ends(harness: Harness, git_factory,
                                                                    celery_workers):
    repo = git_factory.create("heal2", {"app/a.yaml": manifests(cm("settings", mode="git"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env(WAVECD_SELF_HEAL_BACKOFF_BASE="2"))
    harness.application("heal2", repo.url, "app", self_heal=True)
    harness.wait_synced("heal2", revision=repo.head())
    ns = harness.dest_namespace
    for attempt in ("first", "second"):  # the second drift comes inside the first self-heal's back-off
        harness.core.patch_namespaced_config_map("settings", ns, {"data": {"mode": f"manual-{attempt}"}})
        harness.wait(f"{attempt} drift reverted",
                     lambda: harness.core.read_namespaced_config_map("settings", ns).data == {"mode": "git"},
                     timeout=60, describe=lambda: harness.status("heal2"))


def test_hooks_run_in_their_phases_and_deletion_policies_apply(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("hooks", {"app/a.yaml": manifests(
        job_hook("migrate", "PreSync", delete_policy="HookSucceeded"),
        job_hook("smoke", "PostSync"),
        job_hook("notify", "PostSync", generate_name=True, delete_policy="HookSucceeded"),
        job_hook("never", "Skip"),
        cm("app-config"),
    )})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("hooks", repo.url, "app")
    harness.wait_synced("hooks", revision=repo.head())
    op = harness.operation("hooks")
    assert op is not None and op["phase"] == "Succeeded", op
    hooks = {r["name"]: r for r in op["syncResult"]["resources"] if r.get("hookType")}
    assert hooks["migrate"]["hookType"] == "PreSync" and hooks["migrate"]["hookPhase"] == "Succeeded"
    assert hooks["smoke"]["hookPhase"] == "Succeeded"
    generated = [n for n in hooks if n.startswith("notify-")]
    assert len(generated) == 1, hooks
    batch = client.BatchV1Api(harness.api)
    ns = harness.dest_namespace
    harness.wait("HookSucceeded hooks deleted",
                 lambda: not _exists(batch.read_namespaced_job, "migrate", ns)
                 and not _exists(batch.read_namespaced_job, generated[0], ns), tick=False)
    assert _exists(batch.read_namespaced_job, "smoke", ns)        # BeforeHookCreation keeps it
    assert not _exists(batch.read_namespaced_job, "never", ns)    # Skip is never applied
    # The app's sync status ignores hooks.
    assert {r["name"] for r in harness.status("hooks")["resources"]} == {"app-config"}


def test_failing_presync_hook_runs_syncfail_and_stops(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("fails", {"app/a.yaml": manifests(
        job_hook("check", "PreSync", succeed=False, delete_policy="HookFailed"),
        job_hook("cleanup", "SyncFail"),
        cm("never-applied"),
    )})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("fails", repo.url, "app", retry={"limit": 1, "backoff": {"duration": "1s"}})
    op = harness.wait_operation("fails", "Failed")
    assert "check" in op["message"], op["message"]
    assert op["retryCount"] == 1  # one retry, then the operation failed for good
    batch = client.BatchV1Api(harness.api)
    ns = harness.dest_namespace
    harness.wait("SyncFail hook created", lambda: _exists(batch.read_namespaced_job, "cleanup", ns), tick=False)
    harness.wait("the failed hook deleted (HookFailed)", lambda: not _exists(batch.read_namespaced_job, "check", ns),
                 tick=False)
    assert not _exists(harness.core.read_namespaced_config_map, "never-applied", ns)
    # The failed revision is not retried automatically (no new operation starts for it).
    started = [e for e in harness.store.operation_log("fails") if e["event"] == "start"]
    time.sleep(3)
    harness.tick()
    time.sleep(1)
    assert [e for e in harness.store.operation_log("fails") if e["event"] == "start"] == started


def test_terminate_stops_the_chain_and_manual_sync_is_refused_meanwhile(
        harness: Harness, git_factory, celery_workers, redis_client):
    slow = job_hook("slow", "PreSync")
    slow["spec"]["template"]["spec"]["containers"][0]["command"] = ["sleep", "120"]
    repo = git_factory.create("term", {"app/a.yaml": manifests(slow, cm("after"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("term", repo.url, "app", automated=False)
    actions = AppActions(harness.store, AppLocks(redis_client, 60))
    harness.wait("app indexed", lambda: harness.store.get_app("term") is not None)
    with pytest.raises(ActionError) as no_op:
        actions.terminate("term")
    assert no_op.value.message == NO_OPERATION
    actions.sync("term")
    harness.diff("term")
    harness.wait_operation("term", "Running")
    with pytest.raises(ActionConflict) as busy:  # the API answers it 409
        actions.sync("term")
    assert busy.value.message == IN_PROGRESS
    actions.terminate("term")
    assert harness.operation("term")["phase"] in ("Terminating", "Failed")
    op = harness.wait_operation("term", "Failed", timeout=30)
    assert op["message"] == "Operation terminated"
    assert not _exists(harness.core.read_namespaced_config_map, "after", harness.dest_namespace)
    batch = client.BatchV1Api(harness.api)
    harness.wait("running hook deleted", lambda: not _exists(batch.read_namespaced_job, "slow",
                                                               harness.dest_namespace), tick=False)


def test_history_and_rollback(harness: Harness, git_factory, celery_workers, redis_client):
    repo = git_factory.create("hist", {"app/a.yaml": manifests(cm("conf", version="1"))})
    first = repo.head()
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("hist", repo.url, "app", automated=False)
    harness.wait("app indexed", lambda: harness.store.get_app("hist") is not None)
    actions = AppActions(harness.store, AppLocks(redis_client, 60))
    actions.sync("hist")
    harness.diff("hist")
    harness.wait_synced("hist", revision=first)
    second = repo.commit({"app/a.yaml": manifests(cm("conf", version="2"))})
    harness.fetch(repo.url, due=["hist"])
    harness.wait("OutOfSync on the new commit",
                 lambda: harness.status("hist").get("sync", {}).get("revision") == second
                 and harness.status("hist")["sync"]["status"] == "OutOfSync")
    actions.sync("hist")
    harness.diff("hist")
    harness.wait_synced("hist", revision=second)
    history = harness.status("hist")["history"]
    assert [h["revision"] for h in history] == [first, second]
    assert [h["id"] for h in history] == [0, 1]

    actions.rollback("hist", 0)
    harness.diff("hist")
    harness.wait("rolled back", lambda: harness.core.read_namespaced_config_map(
        "conf", harness.dest_namespace).data == {"version": "1"}, tick=False)
    op = harness.wait_operation("hist", "Succeeded")
    assert op["syncResult"]["revision"] == first
    harness.wait("history records the rollback", lambda: len(harness.status("hist").get("history", [])) == 3)

    harness.patch_application("hist", {"spec": {"syncPolicy": {"automated": {"prune": True}}}})
    harness.wait("automated spec indexed",
                 lambda: (harness.store.get_app("hist") or {}).get("spec", {}).get("syncPolicy", {})
                 .get("automated") is not None)
    with pytest.raises(ActionError, match="auto-sync is enabled"):
        actions.rollback("hist", 0)


def test_deleting_with_resources_finalizer_cascades(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("fin", {"app/a.yaml": manifests(cm("one"), secret("two", token="x"),
                                                                deployment("three"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("fin", repo.url, "app", finalizer=True)
    harness.wait_synced("fin", revision=repo.head())
    harness.delete_application("fin")
    ns = harness.dest_namespace
    harness.wait("resources and Application gone",
                 lambda: not _exists(harness.core.read_namespaced_config_map, "one", ns)
                 and not _exists(harness.core.read_namespaced_secret, "two", ns)
                 and not harness.application_exists("fin"), timeout=60,
                 describe=lambda: harness.status("fin"))


def test_deleting_without_finalizer_keeps_resources(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("keep", {"app/a.yaml": manifests(cm("stays"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("keep", repo.url, "app")
    harness.wait_synced("keep", revision=repo.head())
    harness.delete_application("keep")
    harness.wait("app removed from the index", lambda: harness.store.get_app("keep") is None)
    assert _exists(harness.core.read_namespaced_config_map, "stays", harness.dest_namespace)
