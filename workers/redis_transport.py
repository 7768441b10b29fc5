"""kombu's Redis transport, patched so a worker survives a Redis restart and loses no message.

The stock transport (kombu 5.7) fails in two ways when Redis restarts while a worker holds
unacknowledged messages (late-acked tasks running, or ETA/countdown tasks waiting in the worker):

1. The worker dies. On a lost connection Celery's consumer first calls `Connection.collect()`, which
   drops the transport's reference to its `Connection` (`transport.client = None`), and then
   `Connection.close()`, which closes the channel; closing the channel restores the unacked
   messages, which needs a new Redis pool, whose parameters `_connparams` reads from
   `transport.client.hostname`: `AttributeError: 'NoneType' object has no attribute 'hostname'`.
   An AttributeError is not a connection error, so nothing catches it and Celery stops with
   "Unrecoverable error" (the same path is reported in celery/kombu#582 and #970).
2. Even without the crash, the restore happens while Redis is down, so it fails; the messages stay in
   kombu's unacked hash until `restore_visible` brings back those older than the visibility timeout
   (600 s here, which must exceed the longest task).

The subclass below fixes both without touching kombu's behaviour otherwise:
* the channel remembers the broker address it was opened with, so `_connparams` works after collect;
* the QoS does not try to restore through a collected transport (Redis is gone at that moment): it
  remembers the delivery tags, and the next channel this process opens (Celery's reconnect) puts
  them back on their queues with kombu's own atomic `restore_by_tag` (a WATCH/MULTI transaction that
  moves the stored message back to its queue only if it is still in the unacked hash, so a message
  is never restored twice). If Redis lost its data the hash is empty and nothing comes back; the
  tick's repair re-drives the operation from its recorded progress (shared.pipeline.app_index).
* a worker killed outright (kill -9 of its main process, a lost node) leaves its messages in the
  unacked hash, where kombu would leave them for the visibility timeout. So each consuming process
  records, beside kombu's own unacked entry, which process holds the message (`OWNER_KEY`) and keeps a
  short-lived heartbeat key alive from a thread; every live consumer's thread also looks for messages
  whose holder's heartbeat is gone and restores them with the same `restore_by_tag`. A slow but alive
  holder is never robbed: its heartbeat is a thread of its own, independent of the tasks it runs.

Registered under kombu's `redis` alias by workers.celery_app.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual as kombu_virtual
from kombu.utils.json import dumps

from shared.state import keys
from workers.catalogue import QUEUES

log = logging.getLogger(__name__)

OWNER_KEY = keys.UNACKED_OWNER  # delivery tag -> id of the consuming process holding it
HEARTBEAT_EVERY = 2.0
HEARTBEAT_TTL = 10.0

_orphans: set[str] = set()           # delivery tags whose restore must wait for a new connection
_orphans_lock = threading.Lock()


def orphaned_tags() -> set[str]:
    """The delivery tags this process still has to restore (for tests and logs)."""
    with _orphans_lock:
        return set(_orphans)


class _Heartbeat:
    """This process's identity as a message holder, its heartbeat thread, and the reaper of dead holders."""

    def __init__(self) -> None:
        self.pid = 0
        self.ident = ""
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.channel: Channel | None = None

    def ensure(self, channel: Channel) -> str:
        """The id this process records as holder; starts the heartbeat on first use (again after a fork)."""
        with self.lock:
            self.channel = channel
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.ident = f"{socket.gethostname()}:{self.pid}:{secrets.token_hex(4)}"
                self.thread = None
            if self.thread is None or not self.thread.is_alive():
                self._beat()  # alive before any message is recorded under this id
                self.thread = threading.Thread(target=self._run, name="wavecd-consumer-heartbeat", daemon=True)
                self.thread.start()
            return self.ident

    def _client(self) -> Any:  # noqa: ANN401 - a redis.Redis
        channel = self.channel
        if channel is None:
            return None
        return channel.Client(connection_pool=channel.pool)

    def _beat(self) -> None:
        client = self._client()
        if client is not None:
            client.set(keys.consumer_alive(self.ident), "1", px=int(HEARTBEAT_TTL * 1000))

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY)
            try:
                self._beat()
                self._reap()
            except Exception as exc:  # noqa: BLE001 - Redis away or restarting: the next beat tries again
                log.debug("consumer heartbeat: %s", exc)

    def _reap(self) -> None:
        """Restore the messages whose holder stopped beating (killed): kombu's atomic restore_by_tag."""
        channel = self.channel
        client = self._client()
        if channel is None or client is None:
            return
        owners = {tag.decode(): owner.decode() for tag, owner in client.hgetall(OWNER_KEY).items()}
        if not owners:
            return
        holders = sorted(set(owners.values()))
        alive = {h for h, beat in zip(holders, client.mget([keys.consumer_alive(h) for h in holders]),
                                      strict=True) if beat is not None}
        dead = [tag for tag, owner in owners.items() if owner not in alive]
        for tag in dead:
            channel.qos.restore_by_tag(tag, client=client)  # also drops the OWNER_KEY entry
        if dead:
            log.warning("restored %d message(s) held by worker process(es) that died: %s", len(dead),
                        ", ".join(sorted(set(holders) - alive)))


_heartbeat = _Heartbeat()


# A Celery message's task id, in its headers (kombu's JSON; the body is base64, so nothing else matches).
_TASK_ID = re.compile(rb'"id": *"([^"]+)"')


def tasks_in_broker(client: Any, task_ids: Iterable[str]) -> set[str]:  # noqa: ANN401 - a redis.Redis
    """Which of these task ids the broker still holds: in a queue (any priority) or unacknowledged by a worker.

    The tick asks this of a chain's step that is overdue (shared.state.app_lock): a message that is in
    neither place was lost, and waiting for it would only wait out the lock's grace. A message between a
    worker's pop and its unacked record is in neither for a moment; taking it for lost is safe (fencing)."""
    wanted = {task_id for task_id in task_ids if task_id}
    if not wanted:
        return set()
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        for step in Channel.priority_steps:
            pipe.lrange(f"{queue}{Channel.sep}{step}" if step else queue, 0, -1)
    pipe.hvals(Channel.unacked_key)
    held: set[str] = set()
    for batch in pipe.execute():
        for raw in batch:  # a backlog may hold thousands: one pass over each, not one per wanted id
            held.update(match.decode() for match in _TASK_ID.findall(raw))
    return wanted & held


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:  # noqa: ANN401
        """kombu's unacked record and our holder record in one round trip: the fewer the round trips after
        the pop, the smaller the window in which a killed worker loses a message outright."""
        ident = _heartbeat.ensure(self.channel)
        delivery = message.delivery_info
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()}) \
                .hset(self.unacked_key, delivery_tag,
                      dumps([message._raw, delivery["exchange"], delivery["routing_key"]])) \
                .hset(OWNER_KEY, delivery_tag, ident) \
                .execute()
        kombu_virtual.QoS.append(self, message, delivery_tag)

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:  # noqa: ANN401
        return super()._remove_from_indices(delivery_tag, pipe).hdel(OWNER_KEY, delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:  # noqa: ANN401 - kombu's signature
        if client is None and self.channel.connection.client is None:
            # The transport was collected after a lost connection: Redis is unreachable now.
            self._orphan_delivered()
            return
        try:
            super().restore_unacked(client)
        except self.channel.connection_errors:
            # Closed before the collect (Redis refused the restore): kombu would mark them restored and
            # forget them. restore_by_tag is idempotent, so all of them are tried again on reconnect.
            self._orphan_delivered()

    def _orphan_delivered(self) -> None:
        with _orphans_lock:
            _orphans.update(self._delivered)
        log.warning("broker connection lost: %d unacknowledged message(s) will be restored on reconnect",
                    len(self._delivered))
        self._delivered.clear()


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        connection = args[0] if args else kwargs["connection"]
        self._conninfo = connection.client   # the kombu Connection: host, port, credentials
        super().__init__(*args, **kwargs)
        self._restore_orphans()

    def basic_consume(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        _heartbeat.ensure(self)  # a consuming process beats, and reaps dead holders, even before its first message
        return super().basic_consume(*args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport.client is not None or self._conninfo is None:
            return super()._connparams(asynchronous=asynchronous)
        transport.client = self._conninfo  # collected: read the address this channel was opened with
        try:
            return super()._connparams(asynchronous=asynchronous)
        finally:
            transport.client = None

    def _restore_orphans(self) -> None:
        """Put back the messages a lost connection left unacknowledged (Redis answers again)."""
        with _orphans_lock:
            tags = sorted(_orphans)
        if not tags:
            return
        qos = self.qos
        restored = 0
        for tag in tags:
            try:
                qos.restore_by_tag(tag)
            except self.connection_errors:
                return  # Redis went away again: the next channel tries again
            with _orphans_lock:
                _orphans.discard(tag)
            restored += 1
        log.warning("re-queued what Redis still held of %d message(s) a lost broker connection left "
                    "unacknowledged", restored)


class Transport(kombu_redis.Transport):
    Channel = Channel
