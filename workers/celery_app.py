"""The Celery application every WaveCD worker, beat and Flower process loads.

Configuration choices, each for a reason:
* JSON only: task arguments are names and ids, readable in Flower, never pickled objects.
* Late acks + reject on worker loss: a task killed mid-way is redelivered, and every task is
  re-entrant, so it resumes. Redeliveries are capped per task id (Celery issue #9082 would otherwise
  loop forever on a task that kills its worker) by `workers.base.WaveTask`.
* Prefetch 1: a worker never sits on tasks another idle worker could run.
* Results ignored: state lives in WaveCD's own Redis keys, so no result backend is needed.
* The Redis visibility timeout exceeds the longest task time limit, so a slow task is never run twice.
* The broker transport is kombu's Redis transport patched by `workers.redis_transport`: a Redis restart
  no longer kills the worker, and the messages it held unacknowledged go back to their queues as soon
  as Redis answers again instead of after the visibility timeout (issue #17). It is registered under
  kombu's own alias `redis` (which also serves `redis+socket://`), so broker URLs keep their scheme
  and Flower still recognises the broker.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

from shared.core.settings import get_settings
from shared.state.redis_conn import resolve_redis_url
from workers.catalogue import LOW_PRIORITY, QUEUES, TASK_ROUTES, Tick

# Every kombu connection with a redis:// or redis+socket:// URL in a process that loads this module.
TRANSPORT_ALIASES["redis"] = "workers.redis_transport:Transport"

# The queues and each task's route come from the task catalogue (names and arguments in one place).
__all__ = ["LOW_PRIORITY", "QUEUES", "TASK_ROUTES", "app", "make_celery"]


def _broker_url(url: str) -> str:
    """kombu names a Redis unix socket `redis+socket://`; redis-py (and the embedded server) `unix://`."""
    return "redis+socket://" + url[len("unix://"):] if url.startswith("unix://") else url


def _config() -> dict[str, object]:
    """Read lazily, when Celery first needs its configuration: importing this module starts nothing."""
    settings = get_settings()
    return dict(
        broker_url=_broker_url(resolve_redis_url(settings)),
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="git",
        task_routes=TASK_ROUTES,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(1.0, settings.task_time_limit - 10),
        # kombu's Redis transport keeps priorities 0/3/6/9 in separate lists and serves 0 first: a push's
        # refresh (0) goes ahead of the periodic reconcile of every app (LOW_PRIORITY).
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=True,
        # The beat's heartbeat task runs every few seconds: its events would bury the syncs in Flower.
        task_annotations={Tick.task: {"send_events": False}},
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
    )


# What a worker imports as it starts (before it sets up logging): the tasks, and the signal handlers of
# its logging, metrics and live-object watch. Listed here rather than imported, so that no module this
# one imports comes back to it (tasks -> celery_app): there is no import circle to hide.
WORKER_MODULES = ["workers.tasks", "workers.project_tasks", "workers.instrumentation", "workers.watch_refresh"]


def make_celery() -> Celery:
    app = Celery("wavecd", include=WORKER_MODULES)
    app.add_defaults(_config)
    return app


app = make_celery()
