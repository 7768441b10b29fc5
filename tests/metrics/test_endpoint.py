"""`GET /metrics` on the API server: Prometheus text that follows what happens in Redis and at the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient
from pydantic import SecretStr

from scheduler.api import create_app
from shared.core.settings import Settings
from shared.pipeline.services import Services
from shared.state.app_lock import AppLocks
from shared.state.app_store import AppStore
from tests.metrics.helpers import families, total, value
from workers.catalogue import QUEUES, TASK_ROUTES, Fetch, HealthCheck, WaveApply, send

pytestmark = pytest.mark.integration  # real Redis

GITHUB_SECRET = "webhook-secret-for-tests"


@pytest.fixture()
def api(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(redis_url=redis_url, home=tmp_path, api_token=SecretStr("token"),
                        webhook_github_secret=SecretStr(GITHUB_SECRET))
    with TestClient(create_app(settings, Services(settings, redis_client))) as client:
        yield client


def scrape(api: TestClient) -> str:
    response = api.get("/metrics")  # no token: Prometheus scrapes it as Argo CD's metrics port is scraped
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def github_push(secret: str = GITHUB_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "commits": [],
                       "repository": {"html_url": "https://github.com/org/repo",
                                      "clone_url": "https://github.com/org/repo.git",
                                      "default_branch": "main"}}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "push", "Content-Type": "application/json",
                  "X-Hub-Signature-256": f"sha256={signature}"}


def test_every_metric_is_exposed_with_its_type(api):
    kinds = families(scrape(api))
    assert kinds == {
        "argocd_app_info": "gauge",
        "argocd_app_reconcile": "histogram",
        "argocd_app_sync": "counter",
        "argocd_git_request": "counter",
        "argocd_git_request_duration_seconds": "histogram",
        "argocd_app_k8s_request": "counter",
        "wavecd_webhook_requests": "counter",
        "wavecd_queue_depth": "gauge",
        "wavecd_app_locks_held": "gauge",
    }


def test_each_webhook_request_increments_its_provider_and_result(api):
    body, headers = github_push()
    for _ in range(2):
        assert api.post("/api/webhook", content=body, headers=headers).status_code == 202
    forged_body, forged_headers = github_push(secret="not-the-secret")
    assert api.post("/api/webhook", content=forged_body, headers=forged_headers).status_code in (401, 403)
    ping = {"X-GitHub-Event": "ping", "Content-Type": "application/json"}
    assert api.post("/api/webhook", content=body, headers={**headers, **ping}).status_code == 202
    text = scrape(api)
    assert value(text, "wavecd_webhook_requests_total", provider="github", result="accepted") == 2
    assert value(text, "wavecd_webhook_requests_total", provider="github", result="forbidden") == 1
    assert value(text, "wavecd_webhook_requests_total", provider="github", result="ignored") == 1
    api.post("/api/webhook", content=body, headers=headers)
    assert value(scrape(api), "wavecd_webhook_requests_total", provider="github", result="accepted") == 3


def test_queue_depth_is_the_length_of_each_celery_queue(api, redis_url, redis_client):
    sender = Celery("metrics-test", broker=redis_url)
    sender.conf.task_routes = TASK_ROUTES
    sender.conf.task_serializer = "json"
    with sender.connection_for_write() as conn:
        step = {"app": "app", "operation": "op", "step": 0, "token": "tok", "seq": 0}
        for _ in range(3):
            send(sender, Fetch(repo="https://example.com/repo.git"), connection=conn)
        send(sender, WaveApply(**step), connection=conn)
        send(sender, HealthCheck(**step), priority=5, connection=conn)
    text = scrape(api)
    assert {q: value(text, "wavecd_queue_depth", queue=q) for q in QUEUES} == \
        {"git": 3, "apply": 1, "health": 1}  # the health message sits in a priority list
    redis_client.rpop("git")  # a worker took one
    assert value(scrape(api), "wavecd_queue_depth", queue="git") == 2


def test_locks_held_counts_running_operations(api, redis_client):
    locks = AppLocks(redis_client, 60)
    first, second = locks.acquire("web"), locks.acquire("db")
    assert first is not None and second is not None
    assert value(scrape(api), "wavecd_app_locks_held") == 2
    locks.release(first)
    assert value(scrape(api), "wavecd_app_locks_held") == 1


def _app(name: str, project: str, policy: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name, **meta},
            "spec": {"project": project, "syncPolicy": policy,
                     "source": {"repoURL": "https://example.com/r.git", "path": ".", "targetRevision": "HEAD"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}}


def info(name: str, project: str, sync: str, health: str, autosync: str, operation: str = "",
         namespace: str = "argocd", repo: str = "https://example.com/r") -> dict[str, str]:
    """The full label set of an argocd_app_info line, as Argo CD writes it."""
    return {"namespace": namespace, "name": name, "project": project, "autosync_enabled": autosync,
            "repo": repo, "dest_server": "https://kubernetes.default.svc", "dest_namespace": "default",
            "sync_status": sync, "health_status": health, "operation": operation}


def test_app_info_follows_each_apps_status_and_policy(api, redis_client):
    store = AppStore(redis_client)
    store.put_app("web", _app("web", "shop", {"automated": {"prune": True}}))
    store.put_app("db", _app("db", "default", {}, namespace="team-a"))
    store.put_app("paused", _app("paused", "default", {"automated": {"enabled": False}}))
    store.write_unfenced("web", "status", {"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}})
    store.write_unfenced("web", "operation", {"id": "op1", "phase": "Running"})
    store.write_unfenced("db", "status", {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})
    store.write_unfenced("db", "operation", {"id": "op0", "phase": "Succeeded"})
    text = scrape(api)
    assert value(text, "argocd_app_info", **info("web", "shop", "OutOfSync", "Progressing", "true", "sync")) == 1
    assert value(text, "argocd_app_info", **info("db", "default", "Synced", "Healthy", "false",
                                                  namespace="team-a")) == 1
    assert value(text, "argocd_app_info", **info("paused", "default", "Unknown", "Unknown", "false")) == 1
    assert total(text, "argocd_app_info") == 3
    store.write_unfenced("web", "status", {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})
    store.write_unfenced("web", "operation", {"id": "op1", "phase": "Succeeded"})
    store.remove_app("db")
    deleting = _app("paused", "default", {"automated": {"enabled": False}},
                    deletionTimestamp="2024-05-01T10:00:00Z")
    store.put_app("paused", deleting)
    text = scrape(api)
    assert value(text, "argocd_app_info", **info("web", "shop", "Synced", "Healthy", "true")) == 1
    assert value(text, "argocd_app_info", **info("paused", "default", "Unknown", "Unknown", "false",
                                                  "delete")) == 1
    assert total(text, "argocd_app_info", name="db") == 0


def test_an_app_with_an_invalid_spec_still_gets_its_info_line(api, redis_client):
    store = AppStore(redis_client)
    store.put_app("broken", {"metadata": {"name": "broken"},
                             "spec": {"project": 7, "syncPolicy": {"automated": {"prune": "maybe"}},
                                      "source": "not-a-map", "destination": ["x"]}})
    assert value(scrape(api), "argocd_app_info", namespace="argocd", name="broken", project="7",
                 autosync_enabled="true", repo="", dest_server="", dest_namespace="", sync_status="Unknown",
                 health_status="Unknown", operation="") == 1


@pytest.mark.parametrize(("url", "label"), [
    ("https://bob:hunter2@git.example.com/Org/Repo.git", "https://git.example.com/org/repo"),
    ("git@gitlab.example.com:Platform/GitOps.git", "git@gitlab.example.com/platform/gitops"),
    ("ssh://git:hunter2@git.example.com:2222/org/repo.git", "git.example.com:2222/org/repo"),
])
def test_app_info_repo_label_is_argo_cds_normalized_url_without_credentials(api, redis_client, url, label):
    app = _app("private", "default", {})
    app["spec"]["source"]["repoURL"] = url
    AppStore(redis_client).put_app("private", app)
    text = scrape(api)
    assert "hunter2" not in text
    assert total(text, "argocd_app_info", name="private", repo=label) == 1


def test_openmetrics_is_served_when_prometheus_asks_for_it(api):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    AppLocks(api.app.state.services.redis, 60).acquire("web")
    response = api.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    parsed = {f.name: f for f in parse_openmetrics(response.text)}
    assert parsed["wavecd_app_locks_held"].samples[0].value == 1
