"""The worker side of `wavecd proj create|delete|add-destination|add-source`: one thin task that applies
a project change the API stashed in Redis (its argument is the stash key only)."""

from __future__ import annotations

from shared.apps.project_admin import run_change
from workers.base import WaveTask
from workers.celery_app import app
from workers.context import services


@app.task(base=WaveTask, name="wavecd.project_admin", bind=True)
def project_admin(self: WaveTask, *, stash: str) -> str:
    """Apply one stashed AppProject change to the control cluster and record its outcome."""
    return run_change(services(), stash)
