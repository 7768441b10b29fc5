"""What a worker process reports about itself: its logging setup and its metrics, through Celery signals.

The tasks stay thin and unaware of metrics: the signal handlers here time the `diff` step (the reconcile
histogram), count an operation when a step task finishes it, route the Kubernetes (and git) request hooks
of shared/ into a per-process `MetricsRecorder`, and write the batch after every task in one pipeline.
`setup_logging` replaces Celery's logging setup with `workers.logging_context.configure`, so
`WAVECD_LOG_JSON=true` makes every line JSON with the task's app, operation and revision.
Nothing here may fail a task: every handler logs and carries on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from shared.core.settings import get_settings
from shared.telemetry.metrics import MetricsRecorder
from workers import logging_context
from workers.catalogue import Diff, HealthCheck, WaveApply
from workers.context import services

log = logging.getLogger(__name__)

# Increments gather in memory and are written after each task, or at the latest this often.
BATCH_SECONDS = 5.0
RECONCILE_TASK = Diff.task
STEP_TASKS = frozenset({WaveApply.task, HealthCheck.task})

_recorder: MetricsRecorder | None = None
_recorder_pid = 0
_recorder_lock = threading.Lock()
_started: dict[str, float] = {}


def recorder() -> MetricsRecorder:
    """This process's recorder (a forked child makes its own: no client is shared across a fork)."""
    global _recorder, _recorder_pid
    with _recorder_lock:
        if _recorder is None or _recorder_pid != os.getpid():
            _recorder = MetricsRecorder(services().redis, batch_seconds=BATCH_SECONDS)
            _recorder_pid = os.getpid()
        return _recorder


def _kube_request(verb: str, code: int, kind: str, namespace: str) -> None:
    recorder().kube_request(verb, code, kind, namespace)


def _git_request(request_type: str, repo_url: str, seconds: float) -> None:
    recorder().git_request(request_type, repo_url, seconds)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:  # noqa: ANN401 - Celery's signal arguments
    """Our formatter and context filter instead of Celery's (connecting here stops Celery's own setup)."""
    settings = get_settings()
    logging_context.configure(settings.log_json, settings.log_level)


@worker_init.connect
@worker_process_init.connect
def install_hooks(**_: Any) -> None:  # noqa: ANN401 - Celery's signal arguments
    """Point shared/'s request hooks at the recorder (in the main process, so forked children inherit it)."""
    from shared.cluster import client as cluster  # heavy imports: only in worker processes
    from shared.source import git_source

    cluster.on_request = _kube_request
    git_source.on_request = _git_request


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:  # noqa: ANN401
    if task_id:
        _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, kwargs: Any = None,  # noqa: ANN401
                   state: str | None = None, **_: Any) -> None:  # noqa: ANN401
    started = _started.pop(task_id, None) if task_id else None
    name = getattr(task, "name", "")
    app = (kwargs or {}).get("app") if isinstance(kwargs, dict) else None
    try:
        rec = recorder()
        if name == RECONCILE_TASK and started is not None:
            rec.reconcile(time.monotonic() - started, str(app) if app else None)
        if name in STEP_TASKS and app:
            rec.count_finished_sync(str(app))
        rec.flush()
    except Exception:  # metrics must never disturb the task's outcome
        log.exception("recording metrics for %s failed", name)


@worker_process_shutdown.connect
def _flush_on_exit(**_: Any) -> None:  # noqa: ANN401
    if _recorder is not None and _recorder_pid == os.getpid():
        _recorder.flush()
