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

Configured by `broker_transport` in workers.celery_app.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

_orphans: set[str] = set()           # delivery tags whose restore must wait for a new connection
_orphans_lock = threading.Lock()


def orphaned_tags() -> set[str]:
    """The delivery tags this process still has to restore (for tests and logs)."""
    with _orphans_lock:
        return set(_orphans)


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:  # noqa: ANN401 - kombu's signature
        if client is None and self.channel.connection.client is None:
            # The transport was collected after a lost connection: Redis is unreachable now.
            with _orphans_lock:
                _orphans.update(self._delivered)
            log.warning("broker connection lost: %d unacknowledged message(s) will be restored on "
                        "reconnect", len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        connection = args[0] if args else kwargs["connection"]
        self._conninfo = connection.client   # the kombu Connection: host, port, credentials
        super().__init__(*args, **kwargs)
        self._restore_orphans()

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
