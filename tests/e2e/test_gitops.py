"""Issue #11 point 6: git push to running workload, end to end, on the real control plane and the emulator.

`wavecd up` runs as a subprocess pointed at the cluster of WAVECD_TEST_KUBECONFIG (the real control plane
in CI) or, without one, at the emulator it starts itself. A git repository is served over smart HTTP
behind basic auth; its credentials reach WaveCD as an Argo CD repository Secret, and the app as an
Application resource, both applied to the apps namespace as an Argo CD user applies them. Commits are
pushed from a checkout with `git push` and announced with signed GitHub push webhooks. Along the way the
test checks, against Argo CD's documented behaviour (testdata/scenario.yaml): CreateNamespace, wave
order and gates, PreSync/PostSync hooks deleted on success, the tracking annotation, self-heal of a
`kubectl scale`, prune, a manual sync, a failing PreSync hook, history, `wavecd app diff`/`sync` exit
codes, and that no Secret value (nor the git password, the webhook secret or the API token) leaves the
cluster.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client

from shared.diff.masking import FIRST_MASK as MASK
from shared.source.render import CACHE_PREFIX
from tests.e2e.leaks import Place, flower_places, leaks, log_places, needles, redis_places
from tests.e2e.pushing import Checkout
from tests.e2e.recorder import ClusterRecorder, Event
from tests.e2e.stack import API_PREFIX, Stack, wait_for
from tests.fixtures.git import GitFactory, GitHttpServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTDATA = Path(__file__).parent / "testdata"
APP = "e2e"
GROUP, VERSION = "argoproj.io", "v1alpha1"


def _scenario(namespace: str) -> dict[str, Any]:
    return yaml.safe_load((TESTDATA / "scenario.yaml").read_text().replace("{namespace}", namespace))


def _app_files(secret_value: str, mode: str = "first", *, obsolete: bool = True) -> dict[str, str | None]:
    """The repository's app/ directory: the testdata manifests, with the Secret made for this run."""
    files: dict[str, str | None] = {f"app/{p.name}": p.read_text() for p in sorted((TESTDATA / "app").iterdir())}
    files["app/10-settings.yaml"] = str(files["app/10-settings.yaml"]).replace("mode: first", f"mode: {mode}")
    files["app/20-secret.yaml"] = yaml.safe_dump({  # no wave annotation: wave 0
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"}, "type": "Opaque",
        "stringData": {"username": "app", "password": secret_value}})
    if not obsolete:  # already removed by an earlier commit
        del files["app/40-obsolete.yaml"]
    return files


def _repository_secret(namespace: str, url: str) -> client.V1Secret:
    """Argo CD's declarative repository: a Secret labelled secret-type=repository in the apps namespace."""
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name="e2e-repo", namespace=namespace,
                                     labels={"argocd.argoproj.io/secret-type": "repository"}),
        string_data={"type": "git", "url": url, "username": GitHttpServer.username,
                     "password": GitHttpServer.password})


def _application(namespace: str, url: str, destination: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"project": "default",
                 "source": {"repoURL": url, "path": "app", "targetRevision": "HEAD"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": destination},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                "syncOptions": ["CreateNamespace=true"]}},
    }


def _status(app: dict[str, Any]) -> dict[str, Any]:
    return app.get("status") or {}


def _synced_at(revision: str) -> Callable[[dict[str, Any]], bool]:
    """Synced and Healthy at `revision` by a finished, successful operation, with no sync pending."""
    def check(app: dict[str, Any]) -> bool:
        status = _status(app)
        op = status.get("operationState") or {}
        return ((status.get("sync") or {}).get("status") == "Synced"
                and (status.get("sync") or {}).get("revision") == revision
                and (status.get("health") or {}).get("status") == "Healthy"
                and op.get("phase") == "Succeeded" and (op.get("syncResult") or {}).get("revision") == revision
                and not (app.get("pending") or {}).get("sync"))
    return check


def _history_of(app: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(_status(app).get("history") or [], key=lambda h: int(h["id"]))


def _job_complete(event: Event) -> bool:
    status = event.object.get("status") or {}
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in status.get("conditions") or [])


def _deployment_available(event: Event) -> bool:
    """Argo CD's Deployment health: the controller saw this generation and every replica is available."""
    meta, spec, status = event.object["metadata"], event.object.get("spec") or {}, event.object.get("status") or {}
    return (int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
            and int(status.get("availableReplicas") or 0) >= int(spec.get("replicas") or 1)
            and int(status.get("updatedReplicas") or 0) >= int(spec.get("replicas") or 1))


def _diff_sections(output: str) -> dict[str, str]:
    """`app diff` output by resource: `===== [group]/Kind namespace/name ======` headers, as Argo CD prints
    them (WaveCD leaves out the `/` of the core group), each followed by its diff."""
    parts = re.split(r"(?m)^===== (.+) ======$", output)
    return {header.lstrip("/"): body for header, body in zip(parts[1::2], parts[2::2], strict=True)}


def _gone(read: Any, *args: str) -> bool:  # noqa: ANN401 - a read_namespaced_* method
    try:
        read(*args)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture()
def stack(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[tuple[Stack, str, str, str]]:
    """`wavecd up` on the suite's cluster choice, with a fresh apps namespace; yields (stack, apps namespace,
    destination namespace, webhook secret). Stops it with Ctrl-C and checks it left nothing behind."""
    real_kubeconfig = os.environ.get("WAVECD_TEST_KUBECONFIG") or None
    suffix = uuid.uuid4().hex[:6]
    apps_ns, dest_ns = f"wcd-e2e-apps-{suffix}", f"wcd-e2e-{suffix}"
    webhook_secret = secrets.token_urlsafe(24)
    running = Stack.start(
        tmp_path, redis_url, real_kubeconfig=real_kubeconfig,
        real_context=os.environ.get("WAVECD_TEST_KUBECONTEXT") or None,
        WAVECD_APP_NAMESPACE=apps_ns, WAVECD_WEBHOOK_GITHUB_SECRET=webhook_secret,
        # Drift is noticed at each reconcile: a short period keeps the self-heal check quick.
        WAVECD_RECONCILE_PERIOD="5", WAVECD_RECONCILE_JITTER="1")
    try:
        yield running, apps_ns, dest_ns, webhook_secret
    finally:
        code = running.stop()
        if not running.sandbox:  # the emulator goes with `up`; a real cluster keeps what we made
            api = running.kube_api()
            for name in (dest_ns, apps_ns):
                try:
                    client.CoreV1Api(api).delete_namespace(name)
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
            api.close()
    assert code == 0, running.text()[-5000:]
    left = running.leftovers()
    assert not left, "processes left behind:\n" + "\n".join(left)


@dataclass
class Scene:
    """Everything the phases share: the running system, the cluster, the repository and what was seen."""

    up: Stack
    apps_ns: str
    dest_ns: str
    webhook_secret: str
    kube: client.ApiClient
    recorder: ClusterRecorder
    checkout: Checkout
    url: str
    redis: redis.Redis
    scenario: dict[str, Any]
    redis_during_sync: list[Place] = field(default_factory=list)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.kube)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.kube)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.kube)

    def secret_value(self) -> str:
        live = self.core.read_namespaced_secret("db-credentials", self.dest_ns)
        return base64.b64decode(live.data["password"]).decode()


def _first_sync(scene: Scene, c1: str, password: str) -> None:
    """An Argo CD user's setup (a repository Secret and an Application applied to the cluster), then the
    automated sync: CreateNamespace, PreSync hook, waves -1..2 each gated on health, PostSync hook."""
    up, recorder, expected = scene.up, scene.recorder, scene.scenario["creationOrder"]
    assert _gone(scene.core.read_namespace, scene.dest_ns), "the destination namespace must not exist yet"
    scene.core.create_namespaced_secret(scene.apps_ns, _repository_secret(scene.apps_ns, scene.url))
    scene.custom.create_namespaced_custom_object(GROUP, VERSION, scene.apps_ns, "applications",
                                                 _application(scene.apps_ns, scene.url, scene.dest_ns))
    up.wait_app(APP, f"Synced/Healthy at {c1[:8]}", _synced_at(c1), timeout=120)

    # CreateNamespace, phases and waves in Argo CD's order.
    assert not _gone(scene.core.read_namespace, scene.dest_ns)
    ours = {ref for group in expected for ref in group}
    order = [ref for ref in recorder.creation_order() if ref in ours]
    chunks, at = [], 0
    for group in expected:
        chunks.append(sorted(order[at:at + len(group)]))
        at += len(group)
    assert chunks == [sorted(g) for g in expected], recorder.summary()
    # The PreSync hook completed before the first Sync wave was applied.
    pre_done = recorder.first("MODIFIED", "Job/pre-sync", _job_complete)
    first_wave = recorder.first("ADDED", expected[2][0])
    assert pre_done is not None and first_wave is not None, recorder.summary()
    assert pre_done.version < first_wave.version, recorder.summary()
    # The wave gate: wave 2 and the PostSync hook wait until wave 1's Deployment is available.
    available = recorder.first("MODIFIED", "Deployment/web", _deployment_available)
    wave_2, post = recorder.first("ADDED", "ConfigMap/obsolete"), recorder.first("ADDED", "Job/post-sync")
    assert available is not None and wave_2 is not None and post is not None, recorder.summary()
    assert available.version < wave_2.version < post.version, recorder.summary()

    # Every applied object carries Argo CD's tracking annotation.
    for ref, tracking_id in scene.scenario["trackingIds"].items():
        added = recorder.first("ADDED", ref)
        assert added is not None, recorder.summary()
        found = (added.object["metadata"].get("annotations") or {}).get("argocd.argoproj.io/tracking-id")
        assert found == tracking_id, (ref, found)

    # HookSucceeded: each hook succeeded and was then deleted.
    for ref in scene.scenario["deletedAfterSuccess"]:
        wait_for(f"{ref} to be deleted after it succeeded", lambda ref=ref: recorder.first("DELETED", ref), 60,
                 describe=recorder.summary)
        done, deleted = recorder.first("MODIFIED", ref, _job_complete), recorder.first("DELETED", ref)
        assert done is not None and deleted is not None and done.version < deleted.version, recorder.summary()
        name = ref.split("/", 1)[1]
        assert _gone(client.BatchV1Api(scene.kube).read_namespaced_job, name, scene.dest_ns), ref

    # The Secret's value is in the cluster, so finding it nowhere else means something.
    assert scene.secret_value() == password
    got = up.cli("app", "get", APP)
    assert got.code == 0, got
    assert "Synced" in got.stdout and "Healthy" in got.stdout and "db-credentials" in got.stdout, got
    assert up.cli("app", "get", APP, "-o", "json").code == 0
    synced_diff = up.cli("app", "diff", APP)
    assert synced_diff.code == scene.scenario["diffExitCodes"]["synced"], synced_diff


def _self_heal(scene: Scene, c1: str) -> None:
    """`kubectl scale deployment web --replicas=5`, as kubectl sends it: a patch of the scale subresource."""
    scaled = scene.apps.patch_namespaced_deployment_scale("web", scene.dest_ns, {"spec": {"replicas": 5}})
    assert scaled.spec.replicas == 5
    wait_for("self-heal to bring web back to 2 replicas",
             lambda: scene.apps.read_namespaced_deployment("web", scene.dest_ns).spec.replicas == 2, 90,
             describe=lambda: _status(scene.up.app(APP)))
    scene.up.wait_app(APP, "Synced/Healthy after self-heal", lambda a: _synced_at(c1)(a) and len(_history_of(a)) == 2)


def _prune_on_push(scene: Scene, c1: str) -> str:
    """A commit that removes a resource, announced by a signed GitHub webhook: automated sync prunes it."""
    up = scene.up
    c2 = scene.checkout.push({"app/40-obsolete.yaml": None}, "Drop the obsolete ConfigMap")
    refused = up.github_push("not-the-secret", scene.url, c1, c2, modified=[], removed=["app/40-obsolete.yaml"])
    assert refused.status_code == 403 and refused.json()["status"] == "refused", refused.text
    hook = up.github_push(scene.webhook_secret, scene.url, c1, c2, modified=[], removed=["app/40-obsolete.yaml"])
    assert hook.status_code == 202, hook.text
    assert hook.json()["status"] == "accepted" and hook.json()["apps"] == [APP], hook.text
    up.wait_app(APP, f"Synced/Healthy at {c2[:8]}", _synced_at(c2))
    assert _gone(scene.core.read_namespaced_config_map, "obsolete", scene.dest_ns)
    assert scene.recorder.first("DELETED", "ConfigMap/obsolete") is not None, scene.recorder.summary()
    assert not _gone(scene.core.read_namespaced_config_map, "settings", scene.dest_ns)
    return c2


def _manual_sync(scene: Scene, c2: str, password: str) -> str:
    """`argocd app set e2e --sync-policy none`, a pushed change, then `app diff` (1, masked), `app sync` (0)
    and `app diff` again (0). Redis is scanned while the sync's tasks are in flight."""
    up, exits = scene.up, scene.scenario["diffExitCodes"]
    scene.custom.patch_namespaced_custom_object(GROUP, VERSION, scene.apps_ns, "applications", APP,
                                                {"spec": {"syncPolicy": {"automated": None}}})
    up.wait_app(APP, "its sync policy to be manual",
                lambda a: not ((a.get("spec") or {}).get("syncPolicy") or {}).get("automated"))
    c3 = scene.checkout.push(_app_files(password, mode="second", obsolete=False), "Rotate the password")
    hook = up.github_push(scene.webhook_secret, scene.url, c2, c3,
                          modified=["app/10-settings.yaml", "app/20-secret.yaml"])
    assert hook.status_code == 202 and hook.json()["apps"] == [APP], hook.text
    up.wait_app(APP, f"OutOfSync at {c3[:8]}", lambda a: (_status(a).get("sync") or {}) == {
        **(_status(a).get("sync") or {}), "status": "OutOfSync", "revision": c3})

    out_of_sync = up.cli("app", "diff", APP)
    assert out_of_sync.code == exits["outOfSync"], out_of_sync
    sections = _diff_sections(out_of_sync.stdout)
    assert "second" in sections.get(f"ConfigMap {scene.dest_ns}/settings", ""), out_of_sync
    secret_diff = sections.get(f"Secret {scene.dest_ns}/db-credentials", "")
    assert "password" in secret_diff and MASK in secret_diff, out_of_sync  # which key changed, not its value
    # The web UI shows the same masked diff (read here, while there is one; checked for values at the end).
    ui = up.dashboard("/applications", f"/applications/{APP}", f"/ui/fragments/applications/{APP}")
    assert "db-credentials" in ui[f"/applications/{APP}"] and MASK in ui[f"/applications/{APP}"]

    # While the sync runs its tasks sit in Redis (queued, or reserved in kombu's unacked hash): scan it.
    during: dict[tuple[str, str], Place] = {}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(up.cli, "app", "sync", APP, "--timeout", "120")
        while not running.done():
            for place in redis_places(scene.redis):
                during.setdefault((place.where, place.text), place)
            wait([running], timeout=0.2)
        synced = running.result()
    scene.redis_during_sync = list(during.values())
    assert any(p.where.endswith("(Celery message body)") for p in scene.redis_during_sync), \
        "no Celery message was seen in Redis during the sync: the scan cannot have read task arguments"
    assert synced.code == scene.scenario["syncExitCodes"]["succeeded"], synced
    assert "Succeeded" in synced.stdout, synced
    up.wait_app(APP, f"Synced/Healthy at {c3[:8]}", _synced_at(c3))
    assert up.cli("app", "diff", APP).code == exits["synced"]
    unknown = up.cli("app", "diff", "no-such-app")
    assert unknown.code == exits["error"] and "no-such-app" in unknown.stderr, unknown
    assert "Traceback" not in unknown.stderr, unknown
    assert scene.secret_value() == password
    return c3


def _failed_hook(scene: Scene, c3: str, password: str) -> str:
    """A pushed commit whose PreSync hook fails: `app sync` exits 1, the operation Failed, nothing of the
    Sync phase applied, the failed hook kept (HookSucceeded deletes only a hook that succeeded)."""
    up, failing = scene.up, scene.scenario["failedHook"]
    files = _app_files(password, mode="third", obsolete=False)
    files["app/00-pre-sync.yaml"] = str(files["app/00-pre-sync.yaml"]).replace(
        'command: ["sh", "-c", "echo migrating"]', 'command: ["false"]')
    c4 = scene.checkout.push({"app/00-pre-sync.yaml": files["app/00-pre-sync.yaml"],
                              "app/10-settings.yaml": files["app/10-settings.yaml"]}, "A migration that fails")
    hook = up.github_push(scene.webhook_secret, scene.url, c3, c4,
                          modified=["app/00-pre-sync.yaml", "app/10-settings.yaml"])
    assert hook.status_code == 202 and hook.json()["apps"] == [APP], hook.text
    up.wait_app(APP, f"OutOfSync at {c4[:8]}", lambda a: (_status(a).get("sync") or {}) == {
        **(_status(a).get("sync") or {}), "status": "OutOfSync", "revision": c4})
    failed = up.cli("app", "sync", APP, "--timeout", "120")
    assert failed.code == scene.scenario["syncExitCodes"]["failed"], failed
    assert failing["phase"] in failed.stdout + failed.stderr and "Traceback" not in failed.stderr, failed
    op = _status(up.app(APP)).get("operationState") or {}
    assert op.get("phase") == failing["phase"] and (op.get("syncResult") or {}).get("revision") == c4, op
    settings = scene.core.read_namespaced_config_map("settings", scene.dest_ns)
    assert settings.data == {"mode": "second"}, settings.data  # wave -1 of c4 was never applied
    job = client.BatchV1Api(scene.kube).read_namespaced_job(failing["job"], scene.dest_ns)
    conditions = {c.type: c.status for c in job.status.conditions or []}
    assert conditions.get("Failed") == "True", conditions
    return c4


def _history(scene: Scene, revisions: list[str]) -> None:
    """One entry per successful sync, self-heal included, as in Argo CD; the API and the CLI agree."""
    assert [h["revision"] for h in _history_of(scene.up.app(APP))] == revisions
    history = scene.up.api("GET", f"{API_PREFIX}/applications/{APP}/history")
    assert history.status_code == 200
    assert [h["revision"] for h in sorted(history.json()["items"], key=lambda h: int(h["id"]))] == revisions
    listed = scene.up.cli("app", "history", APP, "-o", "json")
    assert listed.code == 0 and [h["revision"] for h in json.loads(listed.stdout)] == revisions, listed


def _nothing_leaks(scene: Scene, first: str, head: str, passwords: list[str]) -> None:
    """No Secret value, nor the git password, the webhook secret or the API token, anywhere outside."""
    up = scene.up
    read = up.api_get_everything({f"{API_PREFIX}/applications": APP, f"{API_PREFIX}/projects": "default"})
    for path in ("", f"/{APP}", f"/{APP}/diff", f"/{APP}/history"):
        assert f"{API_PREFIX}/applications{path}" in read, read
    assert up.cli("app", "list", "-o", "json").code == 0
    # `argocd app manifests`: git (now and at the first commit, with the first password) and live, masked.
    for args in (("--source", "git"), ("--source", "git", "--revision", first), ("--source", "live")):
        shown = up.cli("app", "manifests", APP, *args)
        assert shown.code == 0, shown
        secret = [doc for doc in yaml.safe_load_all(shown.stdout) if doc and doc.get("kind") == "Secret"]
        assert len(secret) == 1 and secret[0]["metadata"]["name"] == "db-credentials", shown
        masked = {**(secret[0].get("data") or {}), **(secret[0].get("stringData") or {})}
        assert masked.get("password", "").startswith(MASK), (args, sorted(masked))
    metrics = up.api("GET", "/metrics")
    assert metrics.status_code == 200 and "argocd_app_info" in metrics.text
    application = scene.custom.get_namespaced_custom_object(GROUP, VERSION, scene.apps_ns, "applications", APP)
    # The status is written back to the Application resource, so `kubectl get application` shows what the
    # API shows: out of sync with the head commit, whose sync failed.
    written, served = application.get("status") or {}, _status(up.app(APP))
    assert (written.get("sync") or {}).get("status") == "OutOfSync", written
    assert (written.get("sync") or {}).get("revision") == head, written
    assert (written.get("health") or {}).get("status") == (served.get("health") or {}).get("status"), written
    assert (written.get("operationState") or {}).get("phase") == "Failed", written

    places = [Place(where, text) for where, text in up.shown]
    places += [Place("wavecd up's output", up.text()), Place("the Application resource", json.dumps(application))]
    logs = log_places(up.home)
    assert {"log logs/worker-1.log", "log logs/api.log", "log logs/beat.log"} <= {p.where for p in logs}, \
        [p.where for p in logs]
    assert any("wavecd.wave_apply" in p.text for p in logs), "the worker logs show no sync step"
    places += logs
    places += flower_places(up.flower_url)
    assert any("wavecd.wave_apply" in p.text for p in places if p.where.startswith("Flower")), "no tasks seen"
    # The webhooks, not only the poll, reached the workers: beat's fetches carry `due`, a webhook's `urgent`.
    tasks = up.flower_tasks()
    pushed = [t for t in tasks.values() if t.get("name") == "wavecd.fetch"
              and f"'urgent': ['{APP}'" in str(t.get("kwargs")) and t.get("state") == "SUCCESS"]
    assert len(pushed) >= 2, json.dumps(tasks, default=str)[:4000]

    stored = redis_places(scene.redis) + scene.redis_during_sync
    assert any(p.where.startswith("Redis key wavecd:") for p in stored), "Redis holds no WaveCD key?"
    values = needles(*passwords, GitHttpServer.password, scene.webhook_secret, up.token)
    # Rendered manifests are cached in Redis as Argo CD's repo-server caches them (zlib, keyed by content):
    # the one place a desired Secret's value is kept outside the cluster by design (DESIGN.md, "What
    # tasks carry"); it is never shown. Everything else must hold none.
    cache = f"Redis key {CACHE_PREFIX}"
    found = leaks([p for p in places + stored if not p.where.startswith(cache)], values)
    assert not found, "\n".join(found)
    plain = [p for p in stored if p.where.startswith(cache) and "(zlib-decompressed)" not in p.where]
    assert not leaks(plain, values), "the render cache stores Secret values in plain text"


def test_a_push_reaches_the_cluster_wave_by_wave_and_no_secret_leaves_it(
        stack: tuple[Stack, str, str, str], git_factory: GitFactory, git_http_server: GitHttpServer,
        redis_client: redis.Redis, tmp_path: Path) -> None:
    up, apps_ns, dest_ns, webhook_secret = stack
    password_1, password_2 = f"pw1-{secrets.token_hex(12)}", f"pw2-{secrets.token_hex(12)}"
    kube = up.kube_api()
    recorder = ClusterRecorder(kube, dest_ns)  # from before anything exists in the namespace
    try:
        repo = git_factory.create("e2e", _app_files(password_1), message="first version")
        url = git_http_server.url_for(repo)
        checkout = Checkout(git_http_server, repo, url, tmp_path / "checkout")
        scene = Scene(up, apps_ns, dest_ns, webhook_secret, kube, recorder, checkout, url, redis_client,
                      _scenario(dest_ns))
        c1 = repo.head()
        _first_sync(scene, c1, password_1)
        _self_heal(scene, c1)
        c2 = _prune_on_push(scene, c1)
        c3 = _manual_sync(scene, c2, password_2)
        c4 = _failed_hook(scene, c3, password_2)
        _history(scene, [c1, c1, c2, c3])  # a failed sync adds no entry
        _nothing_leaks(scene, c1, c4, [password_1, password_2])
    finally:
        recorder.stop()
        kube.close()
