"""One operation per app: a Redis lock that belongs to an operation, not to a worker.

`SET NX PX` takes it and `INCR` issues a fencing number in the same Lua script, so a token and its
fence always go together. Renewal and release are compare-and-set scripts: only the owner extends or
frees the lock. The token travels along the task chain (it is an opaque random id, not a secret) and
each task renews it; a worker that dies leaves a lock that simply expires. Nothing ever waits for the
lock: a caller that does not get it marks the app pending and returns (see `shared.state.coalesce`).

The TTL is a short lease (issue #17: a 60 s TTL made a killed worker cost 75 s). It stays short
because it is renewed while its owner lives: a task runs inside `lease_scope()`, and a keeper thread
renews, every third of the lease, each token that task acquired or renewed, until the task ends. When
a task sends the chain's next step, `hand_over(token, wait)` stretches the lease over the step's
countdown plus a grace for its time in the queue (a long queue must not make the repair start a
second chain); the next task, as it starts, `renew`s it back to one TTL. So a lease lapses within one
TTL of the death of the process running the chain's task, and the tick's repair takes over; a message
a dead worker held is put back by workers.redis_transport well within the grace.

A hand-over also records which task it handed the app to and when that task was due to start. A message
can be lost outright (a worker killed between popping it and recording it unacknowledged, Redis losing its
data): then the grace would be waited out for nothing. So the tick looks at the hand-overs overdue by a few
seconds, asks the broker whether it still holds their task anywhere (a queue, a worker's unacknowledged
messages), and `break_handover`s those it does not: the lock goes at once and the repair resumes the
operation. Fencing keeps that safe if the broker was wrong: the old step, should it ever start, no longer
owns the lock and stops.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from shared.state import keys

# KEYS: the lock, its fence counter, the hand-over index and records. A new owner drops a past owner's hand-over.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
  return fence
end
return 0
"""

# KEYS: the lock, the hand-over index and records. ARGV[3] 'max' never shortens the lease (the keeper);
# 'set' sets it: a task of the chain starts, so the step handed over has arrived.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == 'set' or redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  if ARGV[3] == 'set' then
    redis.call('ZREM', KEYS[2], ARGV[4])
    redis.call('HDEL', KEYS[3], ARGV[4])
  end
  return 1
end
return 0
"""

# ARGV: token, lease (ms), app, due time, task id.
_HAND_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[1] .. ' ' .. ARGV[5])
  end
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# ARGV: app, token, task id. 1: the lock was taken from the lost step's chain; 2: the lock had gone
# already (only the record is dropped); 0: the hand-over moved on meanwhile (nothing done).
_BREAK = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] .. ' ' .. ARGV[3] then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 2
"""


def lock_key(app: str) -> str:
    return keys.lock(app)


def fence_key(app: str) -> str:
    return keys.fence(app)


@dataclass(frozen=True, slots=True)
class LockToken:
    """Who holds an app's lock: a random owner id plus the fencing number issued with it."""

    app: str
    owner: str
    fence: int

    @property
    def value(self) -> str:
        return f"{self.owner}:{self.fence}"

    def encode(self) -> str:
        """The short text form that rides in task arguments."""
        return self.value

    @classmethod
    def decode(cls, app: str, text: str) -> LockToken:
        owner, _, fence = text.rpartition(":")
        return cls(app, owner, int(fence))


@dataclass(frozen=True, slots=True)
class Handover:
    """A chain's next step, sent and not started yet: the task that should renew `token`, due at `due`."""

    token: LockToken
    task_id: str
    due: float


class AppLocks:
    """The lock operations, bound to one Redis client."""

    def __init__(self, client: redis.Redis, ttl_seconds: float) -> None:
        self._redis = client
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._hand_over = client.register_script(_HAND_OVER)
        self._break = client.register_script(_BREAK)

    def acquire(self, app: str) -> LockToken | None:
        """Take the lock without waiting; None when another operation holds it."""
        owner = secrets.token_hex(8)
        fence = int(self._acquire(keys=[lock_key(app), fence_key(app), keys.HANDOVER_DUE, keys.HANDOVER_TASK],
                                  args=[owner, self._ttl_ms, app]))
        if not fence:
            return None
        token = LockToken(app, owner, fence)
        _keeper.hold(self, token)
        return token

    def renew(self, token: LockToken) -> bool:
        """A task of the chain holds the lease now: one TTL from now, kept alive while the task runs;
        False when the token no longer owns the lock (it expired or was taken)."""
        owned = self._renew_as(token, self._ttl_ms, "set")
        if owned:
            _keeper.hold(self, token)
        return owned

    def _renew_as(self, token: LockToken, ttl_ms: int, mode: str) -> bool:
        return bool(self._renew(keys=[lock_key(token.app), keys.HANDOVER_DUE, keys.HANDOVER_TASK],
                                args=[token.value, ttl_ms, mode, token.app]))

    def hand_over(self, token: LockToken, wait: float, *, task_id: str = "", countdown: float = 0.0) -> bool:
        """The chain's next task is sent and may wait `wait` seconds (its countdown, its queue) before it
        renews: the lease covers that (never shortened), and this task stops keeping it alive. With a
        `task_id`, the hand-over is recorded as due `countdown` seconds from now (see `overdue_handovers`)."""
        _keeper.drop(token)
        return bool(self._hand_over(keys=[lock_key(token.app), keys.HANDOVER_DUE, keys.HANDOVER_TASK],
                                    args=[token.value, self._ttl_ms + max(0, int(wait * 1000)), token.app,
                                          time.time() + max(0.0, countdown), task_id]))

    def release(self, token: LockToken) -> bool:
        _keeper.drop(token)
        return bool(self._release(keys=[lock_key(token.app), keys.HANDOVER_DUE, keys.HANDOVER_TASK],
                                  args=[token.value, token.app]))

    def overdue_handovers(self, before: float) -> list[Handover]:
        """The hand-overs whose step was due to start before `before` and has not renewed the lock yet."""
        apps = [raw.decode() for raw in self._redis.zrangebyscore(keys.HANDOVER_DUE, "-inf", before)]
        if not apps:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(keys.HANDOVER_TASK, apps)
        pipe.zmscore(keys.HANDOVER_DUE, apps)
        records, dues = pipe.execute()
        found = []
        for app, record, due in zip(apps, records, dues, strict=True):
            if record is None or due is None:
                continue
            value, _, task_id = record.decode().partition(" ")
            found.append(Handover(LockToken.decode(app, value), task_id, float(due)))
        return found

    def break_handover(self, handover: Handover) -> bool:
        """The step handed over is lost: free its app now (True) unless the hand-over moved on meanwhile."""
        token = handover.token
        return int(self._break(keys=[lock_key(token.app), keys.HANDOVER_DUE, keys.HANDOVER_TASK],
                               args=[token.app, token.value, handover.task_id])) == 1

    @property
    def ttl(self) -> float:
        return self._ttl_ms / 1000

    def holder(self, app: str) -> LockToken | None:
        raw = self._redis.get(lock_key(app))
        return LockToken.decode(app, raw.decode()) if raw else None

    def owns(self, token: LockToken) -> bool:
        raw = self._redis.get(lock_key(token.app))
        return raw is not None and raw.decode() == token.value

    def held_count(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=lock_key("*"), count=500))


_scope: ContextVar[dict[LockToken, AppLocks] | None] = ContextVar("wavecd_lease_scope", default=None)


class _LeaseKeeper:
    """Renews the leases of the tasks running in this process, from one daemon thread."""

    def __init__(self) -> None:
        self._held: dict[int, dict[LockToken, AppLocks]] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, locks: AppLocks, token: LockToken) -> None:
        held = _scope.get()
        if held is not None and token not in held:  # outside a task (API, tests): the caller renews itself
            held[token] = locks
            self._wake.set()  # the keeper may be asleep on a longer interval

    def drop(self, token: LockToken) -> None:
        held = _scope.get()
        if held is not None:
            held.pop(token, None)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        held: dict[LockToken, AppLocks] = {}
        reset = _scope.set(held)
        with self._guard:
            self._held[id(held)] = held
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wavecd-lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._guard:
                self._held.pop(id(held), None)
            _scope.reset(reset)

    def _run(self) -> None:
        while True:
            with self._guard:
                pairs = [(token, locks) for held in self._held.values() for token, locks in list(held.items())]
            interval = min((locks.ttl for _, locks in pairs), default=5.0) / 3
            for token, locks in pairs:
                try:
                    if not locks._renew_as(token, locks._ttl_ms, "max"):
                        self._forget(token)  # lost (taken over after a lapse): the step's own checks stop it
                except Exception:  # noqa: BLE001 - Redis away: the next round tries again
                    pass
            self._wake.wait(max(0.05, interval))
            self._wake.clear()

    def _forget(self, token: LockToken) -> None:
        with self._guard:
            for held in self._held.values():
                held.pop(token, None)


_keeper = _LeaseKeeper()


def lease_scope() -> contextlib.AbstractContextManager[None]:
    """Run a task inside this: the leases it takes or renews stay alive until it returns."""
    return _keeper.scope()
