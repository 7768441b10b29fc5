"""The beat process: one short, idempotent tick every few seconds (`celery -A scheduler.beat beat`).

Beat only sends `wavecd.tick`; a worker does the tick's work (listing Applications, popping due apps
from a Redis sorted set), so beat itself stays trivial and holds no state worth losing. Two beats by
mistake would only duplicate ticks, which a short Redis lock in the tick makes harmless.
"""

from __future__ import annotations

import workers.instrumentation  # noqa: F401 - its `setup_logging` handler formats beat's lines as the workers'
from shared.core.settings import get_settings
from workers.catalogue import Tick
from workers.celery_app import app

# Beat sends nothing but the tick, a heartbeat: no "task-sent" event for it, so Flower (and any other
# event consumer) shows the work (fetch, diff, wave_apply, health_check) rather than a clock. The workers
# keep the tick's own events out too (task_annotations in workers.celery_app).
app.conf.task_send_sent_event = False
app.conf.beat_schedule = {
    "wavecd-tick": {
        "task": Tick.task,
        "schedule": get_settings().beat_tick,
        "options": {"expires": max(1.0, get_settings().beat_tick * 2), "queue": Tick.queue.value},
    },
}

__all__ = ["app"]
