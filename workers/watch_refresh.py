"""A live object that changes asks for a refresh of the app that tracks it.

Argo CD notices drift and health changes from its watches, not from polling; WaveCD's workers already
watch every kind they read (shared.cluster.live_cache), so each event names, by its tracking annotation, the app
to compare again. The request goes through the coalescing path (one queued refresh per app, however many
events and worker processes report it) at routine priority, half a second later so that a burst of
events (a rollout's status updates) makes one comparison. A manual edit is thus reverted (self-heal)
within seconds instead of at the next due time.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init

from shared.cluster import live_cache
from shared.core.resources import tracking_app_of
from workers.tasks import request_refresh

log = logging.getLogger(__name__)

BATCH_SECONDS = 0.5


def refresh_owner(obj: dict[str, Any]) -> None:
    app = tracking_app_of(obj)
    if app:
        request_refresh(app, routine=True, countdown=BATCH_SECONDS)


@worker_process_init.connect
def _install(**_: object) -> None:
    live_cache.on_change = refresh_owner
