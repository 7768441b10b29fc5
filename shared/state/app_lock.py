"""One operation per app: a Redis lock that belongs to an operation, not to a worker.

`SET NX PX` takes it and `INCR` issues a fencing number in the same Lua script, so a token and its
fence always go together. Renewal and release are compare-and-set scripts: only the owner extends or
frees the lock. The token travels along the task chain (it is an opaque random id, not a secret) and
each task renews it; a worker that dies leaves a lock that simply expires. Nothing ever waits for the
lock: a caller that does not get it marks the app pending and returns (see `shared.state.coalesce`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
  return fence
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
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
    return f"wavecd:lock:{app}"


def fence_key(app: str) -> str:
    return f"wavecd:fence:{app}"


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
        return LockToken(app, owner, fence) if fence else None

    def renew(self, token: LockToken) -> bool:
        """Extend the TTL; False when the token no longer owns the lock (it expired or was taken)."""
        return bool(self._renew(keys=[lock_key(token.app)], args=[token.value, self._ttl_ms]))

    def release(self, token: LockToken) -> bool:
        return bool(self._release(keys=[lock_key(token.app)], args=[token.value]))

    def holder(self, app: str) -> LockToken | None:
        raw = self._redis.get(lock_key(app))
        return LockToken.decode(app, raw.decode()) if raw else None

    def owns(self, token: LockToken) -> bool:
        raw = self._redis.get(lock_key(token.app))
        return raw is not None and raw.decode() == token.value

    def held_count(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=lock_key("*"), count=500))
