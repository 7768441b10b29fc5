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
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from shared.state import keys

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
  return fence
end
return 0
"""

# ARGV[3] 'max' never shortens the lease (the keeper; a hand-over); 'set' sets it (a task that starts).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == 'set' or redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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


class AppLocks:
    """The lock operations, bound to one Redis client."""

    def __init__(self, client: redis.Redis, ttl_seconds: float) -> None:
        self._redis = client
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, app: str) -> LockToken | None:
        """Take the lock without waiting; None when another operation holds it."""
        owner = secrets.token_hex(8)
        fence = int(self._acquire(keys=[lock_key(app), fence_key(app)], args=[owner, self._ttl_ms]))
        if not fence:
            return None
        token = LockToken(app, owner, fence)
        _keeper.hold(self, token)
        return token

    def renew(self, token: LockToken) -> bool:
        """A task of the chain holds the lease now: one TTL from now, kept alive while the task runs;
        False when the token no longer owns the lock (it expired or was taken)."""
        owned = bool(self._renew(keys=[lock_key(token.app)], args=[token.value, self._ttl_ms, "set"]))
        if owned:
            _keeper.hold(self, token)
        return owned

    def hand_over(self, token: LockToken, wait: float) -> bool:
        """The chain's next task is sent and may wait `wait` seconds (its countdown, its queue) before it
        renews: the lease covers that (never shortened), and this task stops keeping it alive."""
        _keeper.drop(token)
        return bool(self._renew(keys=[lock_key(token.app)],
                                args=[token.value, self._ttl_ms + max(0, int(wait * 1000)), "max"]))

    def release(self, token: LockToken) -> bool:
        _keeper.drop(token)
        return bool(self._release(keys=[lock_key(token.app)], args=[token.value]))

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
                    if not locks._renew(keys=[lock_key(token.app)], args=[token.value, locks._ttl_ms, "max"]):
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
