"""`GET /metrics` on the API server: every WaveCD process's metrics, in Prometheus text format.

The metrics carry Argo CD's names (`argocd_app_info`, `argocd_app_sync_total`, ...; see `shared.telemetry.metrics`),
so dashboards and alerts written for Argo CD's controller work when pointed at this endpoint.

The numbers live in Redis (see `shared.telemetry.metrics` for why), so one scrape of any API replica shows the
counts of all workers on all hosts. This module adds what only the front door knows: which Redis lists
are the Celery queues (kombu's key layout), and a counter for the webhooks it receives.

`scheduler.api.create_app` includes `create_metrics_router(services)` and passes `webhook_result` to the
webhook router as its `on_result` callback. Like Argo CD's metrics endpoint, `/metrics` needs no token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client.exposition import choose_encoder

from shared.pipeline.services import Services
from shared.telemetry.metrics import MetricsRecorder, registry
from workers.catalogue import QUEUES

METRICS_PATH = "/metrics"

_recorder: MetricsRecorder | None = None


def queue_keys(queues: tuple[str, ...] = QUEUES) -> dict[str, list[str]]:
    """The Redis lists holding each queue's messages: the queue's own list plus one per priority step.

    kombu's Redis transport keeps priority 0 in the list named after the queue and priority n in
    `<queue>\\x06\\x16<n>`; counting all of them gives the true depth whatever priorities tasks use.
    """
    return {name: [name, *(f"{name}{Channel.sep}{step}" for step in PRIORITY_STEPS if step)] for name in queues}


def create_metrics_router(services: Services) -> APIRouter:
    """The `/metrics` route, reading the Redis of `services`; webhook counts go there from now on too."""
    global _recorder
    _recorder = MetricsRecorder(services.redis)
    keys = queue_keys()
    router = APIRouter()

    @router.get(METRICS_PATH, include_in_schema=False)
    def metrics(request: Request) -> Response:  # sync: the Redis reads run in the thread pool
        # The format Prometheus asks for: text 0.0.4 by default, OpenMetrics when its Accept header says so.
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encode(registry(services.redis, keys, services.settings.lock_ttl, services.settings.app_namespace))
        return Response(content=body, headers={"Content-Type": content_type})

    return router


def webhook_result(provider: str, result: str) -> None:
    """The webhook router's `on_result`: one HINCRBY per webhook request (after the router exists)."""
    if _recorder is not None:
        _recorder.webhook_request(provider, result)
