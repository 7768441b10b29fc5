"""What k8s/base must guarantee beyond schema validity: the roles run the team's commands, every pod is
locked down, RBAC is least-privilege per role, Redis cannot evict or be reached from outside WaveCD, and
the workers are scaled, probed and protected from disruption."""

from __future__ import annotations

import pytest
from celery import Celery

from tests.deploy.manifests import (
    BASE,
    WORKER_ARGS,
    Doc,
    build,
    find,
    kustomize_command,
    one,
    pod_templates,
    selects,
)

pytestmark = pytest.mark.skipif(kustomize_command() is None, reason="neither kustomize nor kubectl on PATH")

BEAT_ARGS = ["celery", "-A", "scheduler.beat", "beat", "--loglevel=INFO"]
SERVER_ARGS = ["wavecd", "serve", "--host", "0.0.0.0", "--port", "8080"]
FLOWER_ARGS = [
    "celery",
    "-A",
    "workers.celery_app",
    "flower",
    "--port=5555",
    "--url_prefix=flower",
    "--persistent=True",
    "--db=/data/flower.db",
]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return build(BASE)


def _container(workload: Doc) -> Doc:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_everything_lives_in_the_wavecd_namespace(docs):
    one(docs, "Namespace", "wavecd")
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for d in docs:
        expected = None if d["kind"] in cluster_scoped else "wavecd"
        assert d["metadata"].get("namespace") == expected, f"{d['kind']}/{d['metadata']['name']}"


def test_roles_run_the_team_commands(docs):
    worker = _container(one(docs, "Deployment", "wavecd-worker"))
    assert worker["args"][: len(WORKER_ARGS)] == WORKER_ARGS
    assert _container(one(docs, "Deployment", "wavecd-beat"))["args"] == BEAT_ARGS
    assert _container(one(docs, "Deployment", "wavecd-server"))["args"] == SERVER_ARGS
    assert _container(one(docs, "Deployment", "wavecd-flower"))["args"] == FLOWER_ARGS
    # `args`, never `command`: the image's entrypoint (tini, PID 1) must stay.
    for workload, template in pod_templates(docs):
        for c in template["spec"]["containers"]:
            if c["image"].startswith("wavecd"):
                assert "command" not in c, workload["metadata"]["name"]


@pytest.mark.parametrize(
    "name", ["wavecd-worker", "wavecd-beat", "wavecd-server", "wavecd-flower", "wavecd-redis"]
)
def test_pods_are_locked_down(docs, name):
    workload = [w for w, _ in pod_templates(docs) if w["metadata"]["name"] == name][0]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    mounts_needed = {"/tmp"} if name != "wavecd-redis" else set()
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"]
        # A read-only root needs somewhere writable for what the process writes.
        assert mounts_needed <= {m["mountPath"] for m in c.get("volumeMounts", [])}
    # Every volume mounted is declared (an emptyDir, a PVC or a claim template).
    declared = {v["name"] for v in pod.get("volumes", [])}
    declared |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    assert {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])} <= declared


def test_worker_writes_git_cache_to_a_volume(docs):
    worker = one(docs, "Deployment", "wavecd-worker")
    config = find(docs, "ConfigMap")[0]["data"]
    cache = config["WAVECD_GIT_CACHE_DIR"]
    mounts = [m["mountPath"] for m in _container(worker)["volumeMounts"]]
    assert any(cache.startswith(m + "/") for m in mounts), (cache, mounts)


def test_config_is_by_wavecd_environment(docs):
    (config,) = find(docs, "ConfigMap")
    assert config["metadata"]["name"].startswith("wavecd-config")
    assert all(k.startswith("WAVECD_") for k in config["data"])
    assert config["data"]["WAVECD_REDIS_URL"] == "redis://wavecd-redis:6379/0"
    assert config["data"]["WAVECD_APP_NAMESPACE"] == "wavecd"
    one(docs, "Service", "wavecd-redis")
    # No secret value is kept in git: secrets are only referenced.
    assert not find(docs, "Secret")
    for _, template in pod_templates(docs):
        for c in template["spec"]["containers"]:
            for env in c.get("env", []):
                if any(w in env["name"] for w in ("SECRET", "TOKEN", "PASSWORD", "AUTH")):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]


def test_worker_rbac_is_cluster_wide_and_covers_applications(docs):
    role = one(docs, "ClusterRole", "wavecd-worker")
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]} in role["rules"]
    app_rule = [r for r in role["rules"] if r.get("apiGroups") == ["argoproj.io"]][0]
    assert {"applications", "applications/status", "applications/finalizers"} <= set(app_rule["resources"])
    binding = one(docs, "ClusterRoleBinding", "wavecd-worker")
    assert binding["roleRef"]["name"] == "wavecd-worker"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "wavecd-worker", "namespace": "wavecd"}]
    assert (
        one(docs, "Deployment", "wavecd-worker")["spec"]["template"]["spec"]["serviceAccountName"]
        == "wavecd-worker"
    )


def test_server_only_reads_applications(docs):
    role = one(docs, "Role", "wavecd-server")
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "list", "watch"]}
    ]
    bound = [
        b
        for b in find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding")
        if any(s["name"] == "wavecd-server" for s in b["subjects"])
    ]
    assert [b["roleRef"]["name"] for b in bound] == ["wavecd-server"]
    assert (
        one(docs, "Deployment", "wavecd-server")["spec"]["template"]["spec"]["serviceAccountName"]
        == "wavecd-server"
    )


@pytest.mark.parametrize("role", ["beat", "flower"])
def test_beat_and_flower_get_nothing_in_the_cluster(docs, role):
    name = f"wavecd-{role}"
    assert one(docs, "ServiceAccount", name)["automountServiceAccountToken"] is False
    pod = one(docs, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is False
    bindings = find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding")
    assert not [b for b in bindings if any(s["name"] == name for s in b["subjects"])]


def test_redis_never_evicts_and_persists(docs):
    redis = one(docs, "StatefulSet", "wavecd-redis")
    args = _container(redis)["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--appendonly") + 1] == "yes"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert any(m["name"] == claim["metadata"]["name"] for m in _container(redis)["volumeMounts"])
    assert redis["spec"]["replicas"] == 1


def test_only_wavecd_pods_reach_redis(docs):
    redis_labels = one(docs, "StatefulSet", "wavecd-redis")["spec"]["template"]["metadata"]["labels"]
    (policy,) = find(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], redis_labels)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespaceSelector or ipBlock: same-namespace pods only"
    allowed = peer["podSelector"]["matchLabels"]
    # Every WaveCD pod that talks to Redis carries the label the policy admits.
    for workload, template in pod_templates(docs):
        assert selects(allowed, template["metadata"]["labels"]), workload["metadata"]["name"]


def test_workers_shut_down_gracefully(docs):
    """The grace period outlasts Celery's soft shutdown, as configured by the worker app when present."""
    try:
        from workers.celery_app import app  # the worker app, once it exists

        soft = float(app.conf.worker_soft_shutdown_timeout)
    except ImportError:
        soft = float(Celery().conf.worker_soft_shutdown_timeout)  # Celery's default
    worker = one(docs, "Deployment", "wavecd-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= soft + 30


def test_workers_are_probed_scaled_and_protected(docs):
    worker = one(docs, "Deployment", "wavecd-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    probe = _container(worker)["livenessProbe"]["exec"]["command"]
    assert "inspect ping" in " ".join(probe) and "celery@${HOSTNAME}" in " ".join(probe)
    pdb = one(docs, "PodDisruptionBudget", "wavecd-worker")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["minAvailable"] >= 1
    hpa = one(docs, "HorizontalPodAutoscaler", "wavecd-worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "wavecd-worker",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"] - 1


def test_beat_is_a_single_recreated_replica(docs):
    beat = one(docs, "Deployment", "wavecd-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not find(docs, "HorizontalPodAutoscaler", "wavecd-beat")


def test_flower_is_authenticated_persistent_and_prefixed(docs):
    flower = one(docs, "Deployment", "wavecd-flower")
    c = _container(flower)
    (auth,) = [e for e in c["env"] if e["name"] == "FLOWER_BASIC_AUTH"]
    assert auth["valueFrom"]["secretKeyRef"].get("optional") is not True, "Flower must not start without auth"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volume = [v for v in flower["spec"]["template"]["spec"]["volumes"] if v["name"] == mounts["/data"]][0]
    one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert flower["spec"]["strategy"] == {"type": "Recreate"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/flower/healthcheck"


def test_server_probes_and_services_route_to_pods(docs):
    c = _container(one(docs, "Deployment", "wavecd-server"))
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for svc in find(docs, "Service"):
        targets = [
            t for w, t in pod_templates(docs) if selects(svc["spec"]["selector"], t["metadata"]["labels"])
        ]
        assert len(targets) == 1, svc["metadata"]["name"]
        ports = {p["name"] for c in targets[0]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports


def test_ingress_routes_to_existing_service_ports(docs):
    (ingress,) = find(docs, "Ingress")
    paths = {p["path"]: p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert set(paths) == {"/api", "/flower", "/applications", "/ui", "/login", "/logout", "/docs", "/openapi.json"}
    for backend in paths.values():
        svc = one(docs, "Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}


def test_every_workload_restarts_its_containers(docs):
    """Issue #17: a pod whose worker dies is restarted by the kubelet (restartPolicy defaults to Always)."""
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert {d["metadata"]["name"] for d in workloads} >= {"wavecd-worker", "wavecd-beat", "wavecd-server"}
    for workload in workloads:
        assert workload["spec"]["template"]["spec"].get("restartPolicy", "Always") == "Always"
