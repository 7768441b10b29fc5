"""Refresh coalescing with the semantics of Kubernetes' workqueue (a dirty set and a processing set).

A thousand pushes must not make a thousand syncs, and a push during a sync must not be lost. So:
* `request` marks the app queued (`SET NX`); only the caller that set the mark enqueues a task;
* the task, when it starts, clears the queued mark and sets a pending mark *before* trying the lock;
  with the lock it clears pending and works; without it, it leaves pending and returns;
* the lock owner, after releasing, takes the pending mark and requests one more refresh.
Result: at most one queued and one running operation per app, and the last trigger always causes a
refresh that starts after it. Nothing here waits.
"""

from __future__ import annotations

import redis


def queued_key(app: str) -> str:
    return f"wavecd:queued:{app}"


def pending_key(app: str) -> str:
    return f"wavecd:pending:{app}"


class Coalescer:
    def __init__(self, client: redis.Redis, queued_ttl: float) -> None:
        self._redis = client
        self._queued_ttl = max(1, int(queued_ttl))

    def claim_enqueue(self, app: str) -> bool:
        """True when the caller must enqueue a refresh; False when one is already queued."""
        return bool(self._redis.set(queued_key(app), "1", nx=True, ex=self._queued_ttl))

    def started(self, app: str) -> None:
        """A refresh task began: new requests may queue again; remember that work is wanted."""
        pipe = self._redis.pipeline()
        pipe.delete(queued_key(app))
        pipe.set(pending_key(app), "1", ex=self._queued_ttl)
        pipe.execute()

    def got_lock(self, app: str) -> None:
        self._redis.delete(pending_key(app))

    def mark_pending(self, app: str) -> None:
        self._redis.set(pending_key(app), "1", ex=self._queued_ttl)

    def take_pending(self, app: str) -> bool:
        """After releasing the lock: True when someone asked for a refresh meanwhile."""
        return self._redis.getdel(pending_key(app)) is not None

    def is_queued(self, app: str) -> bool:
        return bool(self._redis.exists(queued_key(app)))
