"""Refresh coalescing with the semantics of Kubernetes' workqueue (a dirty set and a processing set).

A thousand pushes must not make a thousand syncs, and a push during a sync must not be lost. So:
* `request` marks the app queued; only the caller that set the mark enqueues a task. The mark says
  whether the queued refresh is urgent (a change asked for it) or routine (the app was merely due):
  an urgent request that finds only a routine one queued enqueues its own, so a push never waits
  behind the routine refreshes of hundreds of apps (the routine one then finds little to do);
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


URGENT, ROUTINE = "urgent", "routine"

# Set the queued mark unless an equally urgent refresh is queued already.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current == false or (ARGV[1] == 'urgent' and current ~= 'urgent') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


class Coalescer:
    def __init__(self, client: redis.Redis, queued_ttl: float) -> None:
        self._redis = client
        self._queued_ttl = max(1, int(queued_ttl))
        self._claim = client.register_script(_CLAIM)

    def claim_enqueue(self, app: str, *, routine: bool = False) -> bool:
        """True when the caller must enqueue a refresh; False when one as urgent is already queued."""
        return bool(self._claim(keys=[queued_key(app)], args=[ROUTINE if routine else URGENT, self._queued_ttl]))

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
