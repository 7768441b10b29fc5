"""Projects enforced by the real pipeline steps, on the suite's Kubernetes API (emulator or real control
plane) with real Redis and real git: refused apps get InvalidSpecError and are never synced, refused
objects fail the sync before anything is applied, a stricter project stops the next sync, sync windows
hold syncs back, and every escape attempt is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from kubernetes import client

from shared.pipeline.diff_step import diff
from tests.fixtures.git import GitFactory
from tests.project.driver import World, application, configmap, reconcile, unique

pytestmark = pytest.mark.integration

CLUSTER_ROLE = yaml.safe_dump({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                               "metadata": {"name": "wcd-t-escape", "namespace": "smuggled"},
                               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})


def team_project(dest_prefix: str, repo: str = "*", **extra: object) -> dict[str, object]:
    return {"sourceRepos": [repo],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": f"{dest_prefix}*"}],
            **extra}


def test_source_outside_project_is_invalid_spec_and_never_synced(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("refused")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-", repo="https://github.com/acme/*"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert "is not permitted in project 'team'" in world.conditions(name)["InvalidSpecError"]
    assert world.svc.store.operation(name) is None
    assert not world.configmap_exists(dest, "refused")


def test_missing_project_never_falls_back_to_default(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("x")})
    dest = world.namespace("team")
    for project in ("nope", "Default", "default ", "def\u0430ult", "../default"):
        name = world.put_app(application(unique("app"), world.control, repo.url, dest, project=project))
        reconcile(world.svc, name)
        assert world.conditions(name)["InvalidSpecError"] == \
            f"Application referencing project {project} which does not exist", project
        assert world.svc.store.operation(name) is None


def test_permitted_app_syncs(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("allowed")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "allowed")


def test_cluster_kind_not_whitelisted_fails_the_sync_before_anything_is_applied(
        world: World, git_factory: GitFactory) -> None:
    # The ClusterRole carries metadata.namespace: it is still judged as cluster-scoped (discovery says so).
    repo = git_factory.create("app", {"cm.yaml": configmap("first"), "role.yaml": CLUSTER_ROLE})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert "one or more synchronization tasks are not valid" in op["message"]
    assert "ClusterRole wcd-t-escape: resource rbac.authorization.k8s.io:ClusterRole is not permitted in project " \
           "team" in op["message"]
    assert not world.configmap_exists(dest, "first")  # nothing was applied
    rbac = client.RbacAuthorizationV1Api(world.api)
    with pytest.raises(client.ApiException) as info:
        rbac.read_cluster_role("wcd-t-escape")
    assert info.value.status == 404


def test_object_in_a_namespace_outside_the_destinations_fails_the_sync(world: World, git_factory: GitFactory) -> None:
    dest = world.namespace("team")
    other = world.namespace("other")
    repo = git_factory.create("app", {"a.yaml": configmap("inside"), "b.yaml": configmap("outside", other)})
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert f"core/ConfigMap {other}/outside: namespace {other} is not permitted in project 'team'" in op["message"]
    assert not world.configmap_exists(dest, "inside")
    assert not world.configmap_exists(other, "outside")


def test_project_made_stricter_stops_the_next_sync(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("cfg", k="1")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"

    world.put_project("team", team_project("team-", namespaceResourceBlacklist=[{"group": "", "kind": "ConfigMap"}]))
    repo.commit({"cm.yaml": configmap("cfg", k="2")}, "change")
    world.svc.store.request_hard_refresh(name)  # fetch the new commit, as a webhook or the poll would
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert "resource :ConfigMap is not permitted in project team" in op["message"]
    live = world.core.read_namespaced_config_map("cfg", dest)
    assert live.data == {"k": "1"}

    world.put_project("team", team_project("elsewhere-"))
    reconcile(world.svc, name)
    assert "do not match any of the allowed destinations in project 'team'" in \
        world.conditions(name)["InvalidSpecError"]


def test_escape_by_changing_project_is_judged_by_the_new_project(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("cfg"), "role.yaml": CLUSTER_ROLE})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    world.put_project("default", team_project("team-"))  # the default project, declared narrower as hardening does
    doc = application(unique("app"), world.control, repo.url, dest, project="team")
    name = world.put_app(doc)
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Failed"
    doc["spec"]["project"] = "default"
    world.put_app(doc)
    world.svc.store.request_sync(name, {"prune": True})
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert "is not permitted in project default" in op["message"]


def _hour_far_from_now() -> int:
    return (datetime.now(UTC).hour + 12) % 24


def test_deny_window_blocks_automated_and_manual_sync(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("windowed")})
    dest = world.namespace("team")
    deny = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}
    world.put_project("team", team_project("team-", syncWindows=[deny]))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.conditions(name)["SyncWindow"].startswith("Sync Denied")
    assert world.svc.store.operation(name) is None

    world.svc.store.request_sync(name, {"prune": False})
    reconcile(world.svc, name)
    assert world.conditions(name)["SyncError"] == "Cannot sync: Blocked by sync window"
    assert world.svc.store.operation(name) is None
    assert not world.configmap_exists(dest, "windowed")


def test_deny_window_with_manual_sync_lets_a_manual_sync_run(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("manual")})
    dest = world.namespace("team")
    deny = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "namespaces": ["team-*"], "manualSync": True}
    world.put_project("team", team_project("team-", syncWindows=[deny]))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.conditions(name)["SyncWindow"].startswith("Manual Allowed")
    assert world.svc.store.operation(name) is None
    world.svc.store.request_sync(name, {"prune": False})
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "manual")


def test_allow_windows_block_outside_and_allow_inside(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("allowed")})
    dest = world.namespace("team")
    closed = {"kind": "allow", "schedule": f"0 {_hour_far_from_now()} * * *", "duration": "1h", "applications": ["*"]}
    world.put_project("team", team_project("team-", syncWindows=[closed]))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.conditions(name)["SyncWindow"].startswith("Sync Denied")
    assert world.svc.store.operation(name) is None

    open_now = {"kind": "allow", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}
    world.put_project("team", team_project("team-", syncWindows=[closed, open_now]))
    reconcile(world.svc, name)
    assert "SyncWindow" not in world.conditions(name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"


def test_app_outside_the_control_namespace_needs_source_namespaces(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("x")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-", sourceNamespaces=["apps-*"]))
    name = world.put_app(application(unique("app"), "tenant-x", repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.conditions(name)["InvalidSpecError"].startswith('app is not allowed in project "team"')


@pytest.mark.parametrize("namespace", ["team-a/../kube-system", "team-\u0430", "TEAM-A", "team-a\n"])
def test_escape_destination_namespace_tricks_are_refused(world: World, git_factory: GitFactory,
                                                         namespace: str) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("x")})
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, namespace, project="team"))
    reconcile(world.svc, name)
    assert "is not a valid namespace name" in world.conditions(name)["InvalidSpecError"]
    assert world.svc.store.operation(name) is None


@pytest.mark.parametrize("suffix", ["/../evil", "/%2e%2e/evil", "\u200b"])
def test_escape_repo_url_tricks_are_refused(world: World, git_factory: GitFactory, suffix: str) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("x")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-", repo=f"{repo.url}/**"))
    name = world.put_app(application(unique("app"), world.control, repo.url + suffix, dest, project="team"))
    reconcile(world.svc, name)
    assert "is not permitted in project 'team'" in world.conditions(name)["InvalidSpecError"]
    assert world.svc.store.operation(name) is None



def test_orphaned_resources_warning(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("managed")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-", orphanedResources={"warn": True}))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    reconcile(world.svc, name)
    assert "OrphanedResourceWarning" not in world.conditions(name)  # its own objects and the defaults

    world.core.create_namespaced_config_map(dest, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="by-hand")))
    reconcile(world.svc, name)
    assert world.conditions(name)["OrphanedResourceWarning"] == "Application has 1 orphaned resources"

    world.put_project("team", team_project("team-", orphanedResources={"warn": False}))
    reconcile(world.svc, name)
    assert "OrphanedResourceWarning" not in world.conditions(name)


def test_create_namespace_needs_namespace_in_the_cluster_whitelist(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("cfg")})
    dest = unique("team")  # does not exist yet: CreateNamespace=true would create it
    world.namespaces.append(dest)
    world.put_project("team", team_project("team-"))
    doc = application(unique("app"), world.control, repo.url, dest, project="team")
    doc["spec"]["syncPolicy"]["syncOptions"] = ["CreateNamespace=true"]
    name = world.put_app(doc)
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert f"core/Namespace {dest}: resource :Namespace is not permitted in project team" in op["message"]
    with pytest.raises(client.ApiException) as info:
        world.core.read_namespace(dest)
    assert info.value.status == 404

    world.put_project("team", team_project("team-", clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}]))
    world.svc.store.request_sync(name, {"prune": True})
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "cfg")


def test_hooks_are_judged_like_other_objects(world: World, git_factory: GitFactory) -> None:
    hook = yaml.safe_load(CLUSTER_ROLE)
    hook["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "PreSync"}
    repo = git_factory.create("app", {"cm.yaml": configmap("cfg"), "hook.yaml": yaml.safe_dump(hook)})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert "resource rbac.authorization.k8s.io:ClusterRole is not permitted" in op["message"]
    assert not world.configmap_exists(dest, "cfg")


def test_a_running_operation_is_resumed_and_judged_by_the_stricter_project(world: World,
                                                                         git_factory: GitFactory) -> None:
    """A chain that lost its lock is resumed, never left Running; its first wave had not run, so the
    plan check judges it by the project as it is now, and refuses it before anything is applied."""
    repo = git_factory.create("app", {"cm.yaml": configmap("cfg")})
    dest = world.namespace("team")
    world.put_project("team", team_project("team-"))
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    token = world.svc.locks.acquire(name)
    assert token is not None
    started = diff(world.svc, token)
    assert started.next is not None  # an operation started; its chain "dies" here (the lock is dropped)
    world.svc.locks.release(token)

    world.put_project("team", team_project("elsewhere-"))
    resumed = reconcile(world.svc, name)
    assert resumed.summary.startswith("resumed operation")
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert f"namespace {dest} is not permitted in project 'team'" in op["message"]
    assert not world.configmap_exists(dest, "cfg")
    reconcile(world.svc, name)
    assert "do not match any of the allowed destinations" in world.conditions(name)["InvalidSpecError"]
