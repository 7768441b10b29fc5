"""The base class of every WaveCD task: a redelivery cap, log context, and arguments checked against the
catalogue (`workers.catalogue`: named arguments only).

With late acks, a task that kills its worker is redelivered; Celery issue #9082 shows it can then loop
forever. Counting deliveries per task id (and attempt) in Redis bounds that: past the cap the task is
acknowledged and dropped with an error log, and the tick's repair path takes over the app.

Every task runs inside `lease_scope()`: the app locks it takes or renews stay leased while it runs, however
long it runs, and lapse within one lease after its process dies (shared.state.app_lock).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from shared.state import keys
from shared.state.app_lock import lease_scope
from workers.catalogue import parse
from workers.context import services
from workers.logging_context import task_context

log = logging.getLogger(__name__)


class WaveTask(Task):
    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - Celery's signature
        svc = services()
        task_id = self.request.id
        if task_id:
            key = keys.deliveries(task_id, self.request.retries)
            pipe = svc.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 86400)
            deliveries = int(pipe.execute()[0])
            if deliveries > svc.settings.max_redeliveries:
                log.error("task %s %s delivered %d times: dropping it", self.name, task_id, deliveries)
                return {"dropped": True, "deliveries": deliveries}
        if args:
            raise TypeError(f"{self.name} takes keyword arguments only (workers.catalogue), not {len(args)} "
                            f"positional ones")
        call = parse(self.name, kwargs)
        named = call.kwargs() if call is not None else kwargs
        with task_context(self.name, named), lease_scope():
            return super().__call__(**named)
