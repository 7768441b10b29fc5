"""Every metric /metrics shows, with the name, type, label names and buckets a dashboard written for Argo CD
expects: one YAML file per metric under tests/testdata/metrics/ (written from Argo CD's metrics docs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.state.app_lock import AppLocks
from shared.state.app_store import AppStore
from shared.telemetry import log_context
from shared.telemetry.metrics import MetricsRecorder, render

pytestmark = pytest.mark.integration  # real Redis

CASES = sorted((Path(__file__).resolve().parents[1] / "testdata" / "metrics").glob("*.yaml"))
QUEUES = {"git": ["git"], "apply": ["apply"], "health": ["health"]}


@pytest.fixture()
def families(redis_client: redis.Redis) -> dict[str, Any]:
    """A scrape after one event of every kind, parsed as Prometheus parses it."""
    store, rec = AppStore(redis_client), MetricsRecorder(redis_client, app_namespace="argocd")
    store.put_app("web", {"metadata": {"name": "web"}, "spec": {
        "project": "shop", "source": {"repoURL": "https://git.example.com/org/repo.git", "path": "."},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}}})
    store.log_operation("web", "op1", "start")
    store.log_operation("web", "op1", "end", "Succeeded")
    rec.count_finished_sync("web")
    rec.reconcile(0.7, "web")
    with log_context.scope({"app": "web"}):
        rec.kube_request("patch", 200)
    rec.git_request("fetch", "https://git.example.com/org/repo.git", 0.3)
    rec.webhook_request("github", "accepted")
    AppLocks(redis_client, 60).acquire("web")
    text = render(redis_client, QUEUES).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_exposed_metric_has_a_case(families: dict[str, Any]) -> None:
    documented = {yaml.safe_load(p.read_text())["metric"] for p in CASES}
    exposed = {f.name + ("_total" if f.type == "counter" else "") for f in families.values()}
    assert exposed == documented


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_metric_matches_its_case(path: Path, families: dict[str, Any]) -> None:
    case = yaml.safe_load(path.read_text())
    family = families[case.get("family", case["metric"])]
    assert family.type == case["type"]
    assert family.samples, "the event recorded above shows up"
    for sample in family.samples:
        names = set(sample.labels) - {"le"}
        assert names == set(case["labels"]), sample
    if "buckets" in case:
        bounds = sorted({float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")})
        assert bounds == [*map(float, case["buckets"]), float("inf")]
