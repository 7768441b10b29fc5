"""Metrics kept in Redis: what is recorded is what a scrape shows, across processes and batches."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.state.app_store import AppStore
from shared.telemetry import log_context
from shared.telemetry.metrics import (
    APP_RECONCILE,
    GIT_REQUEST_TOTAL,
    MetricsError,
    MetricsRecorder,
    render,
)
from tests.metrics.helpers import families, total, value

pytestmark = pytest.mark.integration  # real Redis

QUEUES = {"git": ["git"], "apply": ["apply"], "health": ["health"]}


def scrape(client: redis.Redis) -> str:
    return render(client, QUEUES).decode()


def test_counters_from_two_recorders_add_up(redis_client):
    # Two recorders stand for two worker processes (on two hosts): the scrape sees their sum.
    first, second = MetricsRecorder(redis_client), MetricsRecorder(redis_client)
    first.kube_request("get", 200)
    first.kube_request("get", 200)
    second.kube_request("get", 200)
    second.kube_request("patch", 409)
    text = scrape(redis_client)
    assert total(text, "argocd_app_k8s_request_total", verb="get", response_code="200") == 3
    assert total(text, "argocd_app_k8s_request_total", verb="patch", response_code="409") == 1
    assert families(text)["argocd_app_k8s_request"] == "counter"


def test_histogram_buckets_are_cumulative_with_sum_and_count(redis_client):
    rec = MetricsRecorder(redis_client)
    for seconds in (0.1, 0.3, 0.3, 3.0, 100.0):
        rec.reconcile(seconds, "")
    text = scrape(redis_client)
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="0.25") == 1
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="0.5") == 3
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="2.0") == 3
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="4.0") == 4
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="16.0") == 4
    assert value(text, "argocd_app_reconcile_bucket", namespace="", dest_server="", le="+Inf") == 5
    assert value(text, "argocd_app_reconcile_count", namespace="", dest_server="") == 5
    assert value(text, "argocd_app_reconcile_sum", namespace="", dest_server="") == pytest.approx(103.7)
    assert families(text)["argocd_app_reconcile"] == "histogram"


def test_a_value_on_a_bucket_bound_falls_in_that_bucket(redis_client):
    rec = MetricsRecorder(redis_client)
    rec.observe(APP_RECONCILE, {"namespace": "argocd", "dest_server": "https://kubernetes.default.svc"}, 0.25)
    assert value(scrape(redis_client), "argocd_app_reconcile_bucket", namespace="argocd",
                 dest_server="https://kubernetes.default.svc", le="0.25") == 1


def test_batched_recorder_writes_nothing_until_flushed(redis_client):
    rec = MetricsRecorder(redis_client, batch_seconds=3600)
    for _ in range(50):
        rec.kube_request("list", 200)
    rec.reconcile(1.5, "")
    assert total(scrape(redis_client), "argocd_app_k8s_request_total", verb="list", response_code="200") == 0
    assert rec.pending() == 3  # one counter field, one bucket field, one sum field
    rec.flush()
    text = scrape(redis_client)
    assert total(text, "argocd_app_k8s_request_total", verb="list", response_code="200") == 50
    assert value(text, "argocd_app_reconcile_count", namespace="", dest_server="") == 1
    assert rec.pending() == 0


def test_batched_recorder_flushes_by_itself_once_the_interval_passed(redis_client):
    rec = MetricsRecorder(redis_client, batch_seconds=0.05)
    rec.kube_request("get", 200)
    time.sleep(0.1)
    rec.kube_request("get", 200)  # this record finds the batch old enough and writes both
    assert total(scrape(redis_client), "argocd_app_k8s_request_total", verb="get", response_code="200") == 2


def test_git_requests_are_counted_and_timed_without_credentials(redis_client):
    rec = MetricsRecorder(redis_client)
    rec.git_request("fetch", "https://bob:hunter2@git.example.com/org/repo.git", 0.7)
    rec.git_request("ls-remote", "https://bob:hunter2@git.example.com/org/repo.git", 0.05)
    text = scrape(redis_client)
    assert "hunter2" not in text
    repo = [s for s in text.splitlines() if s.startswith("argocd_git_request_total{")][0]
    assert "git.example.com/org/repo.git" in repo
    assert total(text, "argocd_git_request_total") == 2
    assert total(text, "argocd_git_request_duration_seconds_count", request_type="fetch") == 1
    assert total(text, "argocd_git_request_duration_seconds_bucket", request_type="fetch", le="1.0") == 1
    assert total(text, "argocd_git_request_duration_seconds_bucket", request_type="fetch", le="0.5") == 0


def test_webhook_results_are_counted_per_provider_and_result(redis_client):
    rec = MetricsRecorder(redis_client)
    rec.webhook_request("github", "accepted")
    rec.webhook_request("github", "accepted")
    rec.webhook_request("gitlab", "forbidden")
    text = scrape(redis_client)
    assert value(text, "wavecd_webhook_requests_total", provider="github", result="accepted") == 2
    assert value(text, "wavecd_webhook_requests_total", provider="gitlab", result="forbidden") == 1


@pytest.mark.parametrize("labels", [{}, {"verb": "get"}, {"repo": "r", "request_type": "fetch", "extra": "x"}])
def test_wrong_label_names_are_refused_precisely(redis_client, labels):
    with pytest.raises(MetricsError, match=r"argocd_git_request_total takes labels \['repo', 'request_type'\]"):
        MetricsRecorder(redis_client).inc(GIT_REQUEST_TOTAL, labels)


def test_label_values_with_quotes_and_unicode_survive_the_round_trip(redis_client):
    rec = MetricsRecorder(redis_client)
    rec.inc(GIT_REQUEST_TOTAL, {"repo": 'https://h/"odd"|repo/é', "request_type": "fetch"})
    assert value(scrape(redis_client), "argocd_git_request_total", repo='https://h/"odd"|repo/é',
                 request_type="fetch") == 1


def test_a_finished_operation_is_counted_once_by_phase(redis_client):
    store, rec = AppStore(redis_client), MetricsRecorder(redis_client)
    store.log_operation("web", "op1", "start")
    assert rec.count_finished_sync("web") is None  # still running
    store.log_operation("web", "op1", "end", "Succeeded")
    assert rec.count_finished_sync("web") == "Succeeded"
    assert rec.count_finished_sync("web") is None  # a redelivered step sees it counted already
    store.log_operation("web", "op2", "start")
    store.log_operation("web", "op2", "end", "Failed")
    store.log_operation("db", "op3", "start")
    store.log_operation("db", "op3", "end", "Succeeded")
    assert rec.count_finished_sync("web") == "Failed"
    assert rec.count_finished_sync("db") == "Succeeded"
    assert rec.count_finished_sync("never-synced") is None
    text = scrape(redis_client)
    assert total(text, "argocd_app_sync_total", name="web", phase="Succeeded") == 1
    assert total(text, "argocd_app_sync_total", name="web", phase="Failed") == 1
    assert total(text, "argocd_app_sync_total", phase="Succeeded") == 2


def test_redis_down_drops_the_batch_with_a_warning_instead_of_failing(caplog):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    rec = MetricsRecorder(dead, batch_seconds=3600)
    rec.kube_request("get", 200)
    with caplog.at_level(logging.WARNING, logger="shared.telemetry.metrics"):
        rec.flush()
        assert rec.count_finished_sync("web") is None
    assert rec.pending() == 0
    assert "dropping 1 metric updates" in caplog.text


def _put_app(store: AppStore, name: str, project: str, server: str, namespace: str | None = None) -> None:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    store.put_app(name, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta,
                         "spec": {"project": project,
                                  "source": {"repoURL": "https://bob:hunter2@git.example.com/org/repo.git",
                                             "path": ".", "targetRevision": "HEAD"},
                                  "destination": {"server": server, "namespace": "shop"}}})


def test_app_series_carry_argo_cd_labels_from_the_app(redis_client):
    """argocd_app_sync_total, argocd_app_reconcile and argocd_app_k8s_request_total are labelled as Argo CD
    labels them: the Application's namespace, name, project and destination server."""
    store, rec = AppStore(redis_client), MetricsRecorder(redis_client, app_namespace="argocd")
    _put_app(store, "web", "shop", "https://kubernetes.default.svc")
    _put_app(store, "edge", "default", "https://10.0.0.9:6443", namespace="team-a")
    store.log_operation("web", "op1", "start")
    store.log_operation("web", "op1", "end", "Succeeded")
    assert rec.count_finished_sync("web") == "Succeeded"
    rec.reconcile(0.3, "web")
    rec.reconcile(5.0, "edge")
    with log_context.scope({"app": "web"}):  # a task serving app "web"
        rec.kube_request("patch", 200)
        rec.kube_request("patch", 200)
    with log_context.scope({"app": "edge"}):
        rec.reconcile(0.1)  # the app of the current task when none is named
    rec.kube_request("get", 0)  # outside any app's task
    text = scrape(redis_client)
    assert "hunter2" not in text
    assert value(text, "argocd_app_sync_total", namespace="argocd", name="web", project="shop",
                 dest_server="https://kubernetes.default.svc", phase="Succeeded") == 1
    assert value(text, "argocd_app_k8s_request_total", namespace="argocd", name="web", project="shop",
                 server="https://kubernetes.default.svc", response_code="200", verb="patch", resource_kind="",
                 resource_namespace="") == 2
    assert value(text, "argocd_app_k8s_request_total", namespace="", name="", project="", server="",
                 response_code="0", verb="get", resource_kind="", resource_namespace="") == 1
    assert value(text, "argocd_app_reconcile_count", namespace="argocd",
                 dest_server="https://kubernetes.default.svc") == 1
    assert value(text, "argocd_app_reconcile_count", namespace="team-a", dest_server="https://10.0.0.9:6443") == 2
    assert value(text, "argocd_app_reconcile_bucket", namespace="team-a", dest_server="https://10.0.0.9:6443",
                 le="0.25") == 1
