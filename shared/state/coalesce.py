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

A queued mark is a promise that a `diff` message is on its way. A fault can break the promise (a
message lost with a Redis that lost its data, a redelivery dropped by the cap): the mark would then
swallow every refresh, hard refresh and repair for its whole lifetime (600 s). So a mark older than
`stale_after` no longer blocks a claim: the claimer enqueues a fresh refresh and the mark starts over.
At worst a refresh that really was waiting in a long queue runs twice, and the second finds nothing
to do. The age is the lifetime the mark has used up (its TTL counts down from `queued_ttl`).
"""

from __future__ import annotations

import redis

from shared.state import keys


def queued_key(app: str) -> str:
    return keys.queued(app)


def pending_key(app: str) -> str:
    return keys.pending(app)


URGENT, ROUTINE = "urgent", "routine"

# Set the queued mark unless an equally urgent refresh is queued already, and not for too long.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
local stale = false
if current ~= false then
  local left = redis.call('PTTL', KEYS[1])
  stale = left >= 0 and tonumber(ARGV[2]) * 1000 - left > tonumber(ARGV[3])
end
if current == false or stale or (ARGV[1] == 'urgent' and current ~= 'urgent') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


class Coalescer:
    def __init__(self, client: redis.Redis, queued_ttl: float, stale_after: float = 15.0) -> None:
        self._redis = client
        self._queued_ttl = max(1, int(queued_ttl))
        self._stale_ms = max(1, int(min(stale_after, self._queued_ttl) * 1000))
        self._claim = client.register_script(_CLAIM)

    def claim_enqueue(self, app: str, *, routine: bool = False) -> bool:
        """True when the caller must enqueue a refresh; False when one as urgent is already queued."""
        return bool(self._claim(keys=[queued_key(app)],
                                args=[ROUTINE if routine else URGENT, self._queued_ttl, self._stale_ms]))

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
        """A refresh is queued and the promise is fresh (a stale mark no longer counts)."""
        left = int(self._redis.pttl(queued_key(app)))
        return left >= 0 and self._queued_ttl * 1000 - left <= self._stale_ms

    def queued_ages(self, apps: list[str]) -> list[float | None]:
        """Seconds each app's queued mark has existed (None: no mark), in one round trip."""
        pipe = self._redis.pipeline()
        for app in apps:
            pipe.pttl(queued_key(app))
        return [None if left < 0 else (self._queued_ttl * 1000 - left) / 1000 for left in pipe.execute()]

    @property
    def stale_after(self) -> float:
        return self._stale_ms / 1000
