"""WaveCD's state in Redis: the app index, each app's status, its operation, and the due schedule.

Everything a reader needs fast (the API, the CLI, the beat tick) is here under `wavecd:*` keys. Status
writes are fenced: a Lua script stores a document only while the writer's lock token still owns the
app's lock and its fencing number is not older than the last write, so a task that lost its lock
(expired, taken over after a crash) can never overwrite a newer operation's result. The operation's own
moves (`transition`, `request_terminate`) are optimistic transactions (WATCH/MULTI) on the typed
`shared.operation.model.Operation`: read, decide in Python, write only if nothing changed meanwhile.
The cluster keeps a copy of status on each Application, so a wiped Redis is rebuilt from there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from shared.operation.model import Operation, Phase
from shared.state import keys
from shared.state.app_lock import LockToken, lock_key

_FENCED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local last = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0')
if tonumber(ARGV[2]) < last then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4], 'fence', ARGV[2])
return 1
"""




def _loads(raw: bytes | None) -> dict[str, Any] | None:
    return json.loads(raw) if raw else None


def _loads_text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class AppSnapshot:
    """What a diff reads of an app before it decides anything, read in one round trip.

    The user's requests are only seen here (`take_*` consumes them later, once the diff gets that far):
    one that arrives after the snapshot stays for the next diff, which its sender asks for."""

    doc: dict[str, Any] | None            # the Application as last indexed
    status: dict[str, Any]
    operation: dict[str, Any] | None      # the stored operation as JSON
    source: dict[str, Any] | None         # what the last fetch resolved for the app
    sync_requested: bool
    hard_refresh: bool
    retries: int                          # the diff's consecutive transient failures so far


@dataclass(frozen=True, slots=True)
class StepView:
    """What an operation's step reads as it starts, in one round trip: the operation, whether a terminate
    was asked for, and the Application."""

    operation: dict[str, Any] | None
    terminate: bool
    doc: dict[str, Any] | None


class StaleWriterError(Exception):
    """A fenced write was refused: the writer no longer owns the app's lock."""


class AppStore:
    """Typed access to the keys; one per process, bound to its Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._fenced_set = client.register_script(_FENCED_SET)

    # -- the app index (Applications as last read from the cluster) -------------------------------
    def put_app(self, name: str, obj: dict[str, Any]) -> bool:
        """Store an Application (metadata + spec); True when it is new or its spec changed."""
        doc = _json({"metadata": obj.get("metadata", {}), "spec": obj.get("spec", {}),
                     "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                     "operation": obj.get("operation")})
        old = self.redis.hget(keys.APPS, name)
        if old is not None and json.loads(old).get("spec") == json.loads(doc).get("spec") \
                and json.loads(old).get("metadata", {}).get("deletionTimestamp") == \
                obj.get("metadata", {}).get("deletionTimestamp"):
            if old.decode() != doc:
                self.redis.hset(keys.APPS, name, doc)
            return False
        self.redis.hset(keys.APPS, name, doc)
        return True

    def snapshot(self, name: str) -> AppSnapshot:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.APPS, name)
        pipe.hmget(keys.state(name), ["status", "operation"])
        pipe.get(keys.source(name))
        pipe.exists(keys.sync_request(name))
        pipe.exists(keys.hard_refresh(name))
        pipe.get(keys.diff_retry(name))
        doc, (status, operation), source, requested, hard, retries = pipe.execute()
        return AppSnapshot(_loads(doc), _loads(status) or {}, _loads(operation), _loads(source), bool(requested),
                           bool(hard), int(retries or 0))

    def step_view(self, name: str) -> StepView:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.state(name), "operation")
        pipe.exists(keys.terminate(name))
        pipe.hget(keys.APPS, name)
        operation, terminate, doc = pipe.execute()
        return StepView(_loads(operation), bool(terminate), _loads(doc))

    def get_app(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(keys.APPS, name)
        return json.loads(raw) if raw else None

    def all_apps(self) -> dict[str, dict[str, Any]]:
        return {k.decode(): json.loads(v) for k, v in self.redis.hgetall(keys.APPS).items()}

    def all_apps_raw(self) -> dict[str, bytes]:
        """The stored documents as bytes: callers that memoize parsing compare these."""
        return {k.decode(): v for k, v in self.redis.hgetall(keys.APPS).items()}

    def sources(self, names: list[str]) -> list[dict[str, Any] | None]:
        raws = self.redis.mget([keys.source(n) for n in names]) if names else []
        return [json.loads(r) if r else None for r in raws]

    def set_sources(self, values: dict[str, dict[str, Any]]) -> None:
        if values:
            self.redis.mset({keys.source(n): _json(v) for n, v in values.items()})

    def app_names(self) -> list[str]:
        return sorted(k.decode() for k in self.redis.hkeys(keys.APPS))

    def remove_app(self, name: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(keys.APPS, name)
        pipe.zrem(keys.DUE, name)
        pipe.srem(keys.RUNNING, name)
        pipe.delete(keys.state(name), keys.source(name))
        pipe.execute()

    # -- due schedule -----------------------------------------------------------------------------
    def schedule(self, name: str, at: float) -> None:
        self.redis.zadd(keys.DUE, {name: at})

    def schedule_if_absent(self, name: str, at: float) -> None:
        self.redis.zadd(keys.DUE, {name: at}, nx=True)

    def pop_due(self, now: float, next_at: dict[str, float] | None = None, limit: int = 1000) -> list[str]:
        """Apps whose time has come; each is rescheduled (at `next_at[name]`) in the same step."""
        names = [n.decode() for n in self.redis.zrangebyscore(keys.DUE, "-inf", now, start=0, num=limit)]
        if names and next_at is not None:
            self.redis.zadd(keys.DUE, {n: next_at.get(n, now) for n in names})
        return names

    # -- status and operation (fenced) --------------------------------------------------------------
    def write(self, token: LockToken, field: str, doc: dict[str, Any]) -> None:
        """Store `status` or `operation` for the lock holder; StaleWriterError when it lost the lock."""
        ok = self._fenced_set(keys=[lock_key(token.app), keys.state(token.app)],
                              args=[token.value, token.fence, field, _json(doc)])
        if not ok:
            raise StaleWriterError(f"app {token.app}: lock token {token.fence} no longer owns the lock")

    def write_operation(self, token: LockToken, op: Operation) -> None:
        """Store the app's operation for the lock holder (a new one, or one claimed by a new token)."""
        self.write(token, "operation", op.dump())

    def transition(self, token: LockToken, op: Operation, expected_seq: int) -> bool:
        """Store `op` only if the stored operation is still the same one at `expected_seq`.

        This is the compare-and-set that keeps an operation chain single: of two deliveries of one
        task, only the first moves the chain on; the second finds the sequence number changed and
        stops. StaleWriterError when the token lost the lock; False when the chain moved on. A
        terminate asked since the chain read the operation stays visible (the stored phase Terminating
        is kept over Running): the chain ends the operation at its next step.
        """
        watched = (lock_key(token.app), keys.state(token.app))

        def attempt(pipe: redis.client.Pipeline) -> bool:
            if _loads_text(pipe.get(watched[0])) != token.value:
                raise StaleWriterError(f"app {token.app}: lock token {token.fence} no longer owns the lock")
            stored = Operation.load(_loads(pipe.hget(watched[1], "operation")))
            if stored is None or stored.id != op.id or stored.progress.seq != expected_seq:
                return False
            doc = op
            if stored.phase == Phase.TERMINATING and op.phase == Phase.RUNNING:
                doc = op.model_copy(update={"phase": Phase.TERMINATING})
            pipe.multi()
            pipe.hset(watched[1], mapping={"operation": _json(doc.dump()), "fence": token.fence})
            return True

        return bool(self.redis.transaction(attempt, *watched, value_from_callable=True))

    def write_unfenced(self, app: str, field: str, doc: dict[str, Any]) -> None:
        """Seed a field outside any operation (rebuilding Redis from the cluster)."""
        self.redis.hset(keys.state(app), field, _json(doc))

    def read(self, app: str, field: str) -> dict[str, Any] | None:
        raw = self.redis.hget(keys.state(app), field)
        return json.loads(raw) if raw else None

    def status(self, app: str) -> dict[str, Any]:
        return self.read(app, "status") or {}

    def operation(self, app: str) -> dict[str, Any] | None:
        """The stored operation as JSON (Argo CD's field names), for views that only read it."""
        return self.read(app, "operation")

    def current_operation(self, app: str) -> Operation | None:
        """The stored operation, typed."""
        return Operation.load(self.read(app, "operation"))

    def has_state(self, app: str) -> bool:
        return bool(self.redis.hexists(keys.state(app), "status"))

    # -- operation log: when each operation started and ended (audit, and the exclusivity tests) ----
    def log_operation(self, app: str, op_id: str, event: str, phase: str = "") -> None:
        key = keys.oplog(app)
        pipe = self.redis.pipeline()
        pipe.rpush(key, _json({"op": op_id, "event": event, "phase": phase, "at": time.time()}))
        pipe.ltrim(key, -200, -1)
        pipe.expire(key, 7 * 86400)
        pipe.execute()

    def operation_log(self, app: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(keys.oplog(app), 0, -1)]

    # -- running operations (for orphan detection by the tick) -------------------------------------
    def mark_running(self, app: str) -> None:
        self.redis.sadd(keys.RUNNING, app)

    def clear_running(self, app: str) -> None:
        self.redis.srem(keys.RUNNING, app)

    def running(self) -> list[str]:
        return sorted(n.decode() for n in self.redis.smembers(keys.RUNNING))

    # -- requests from users ------------------------------------------------------------------------
    def request_sync(self, app: str, request: dict[str, Any]) -> None:
        self.redis.set(keys.sync_request(app), _json({**request, "requestedAt": time.time()}), ex=3600)

    def take_sync_request(self, app: str) -> dict[str, Any] | None:
        raw = self.redis.getdel(keys.sync_request(app))
        return json.loads(raw) if raw else None

    def peek_sync_request(self, app: str) -> dict[str, Any] | None:
        raw = self.redis.get(keys.sync_request(app))
        return json.loads(raw) if raw else None

    def request_terminate(self, app: str) -> None:
        """Ask the running chain to stop at its next step, and show the operation as Terminating meanwhile.

        Only the phase of a Running operation changes (atomically, in Lua); the chain, which owns the
        operation, ends it as Failed "Operation terminated" when it next looks.
        """
        self.redis.set(keys.terminate(app), "1", ex=3600)
        key = keys.state(app)

        def mark(pipe: redis.client.Pipeline) -> None:
            try:
                op = Operation.load(_loads(pipe.hget(key, "operation")))
            except ValidationError:  # a damaged document: the flag alone ends the chain at its next step
                return
            if op is None or op.phase != Phase.RUNNING:
                return
            op.phase = Phase.TERMINATING
            pipe.multi()
            pipe.hset(key, "operation", _json(op.dump()))

        self.redis.transaction(mark, key)

    def terminate_requested(self, app: str) -> bool:
        return bool(self.redis.exists(keys.terminate(app)))

    def clear_terminate(self, app: str) -> None:
        self.redis.delete(keys.terminate(app))

    def request_hard_refresh(self, app: str) -> None:
        self.redis.set(keys.hard_refresh(app), "1", ex=3600)

    def take_hard_refresh(self, app: str) -> bool:
        return self.redis.getdel(keys.hard_refresh(app)) is not None

    # -- what the last fetch resolved for each app ---------------------------------------------------
    def source(self, app: str) -> dict[str, Any] | None:
        raw = self.redis.get(keys.source(app))
        return json.loads(raw) if raw else None
