"""The live cache's recovery paths, which a healthy API server rarely shows: a watch that expires with
410 Gone makes the cache relist; a type whose LIST is refused is served by direct requests instead.

The transport here replays scripted answers (a list page, a watch stream of JSON lines) through the real
`kubernetes.watch.Watch` parser, so the recovery logic runs as in production.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from shared.cluster.discovery import ResourceInfo
from shared.cluster.kube_errors import KubeForbidden
from shared.cluster.live_cache import LiveCache

INFO = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, verbs=frozenset({"list", "watch", "get"}))


def cm(name: str, rv: int, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "d", "resourceVersion": str(rv)}, "data": {"v": value}}


class StreamResponse:
    """What kubernetes.watch reads: `.status`, `.stream()`, `.close()`, `.release_conn()`."""

    status = 200

    def __init__(self, events: list[dict[str, Any]], hold: threading.Event | None = None) -> None:
        self._lines = [json.dumps(e).encode() + b"\n" for e in events]
        self._hold = hold

    def stream(self, amt: Any = None, decode_content: Any = None):
        yield from self._lines
        if self._hold is not None:
            self._hold.wait(5)

    def close(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def release_conn(self) -> None:
        pass


class ScriptedTransport:
    def __init__(self, lists: list[Any], watches: list[list[dict[str, Any]]]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_versions: list[str] = []
        self.list_calls = 0
        self.done = threading.Event()
        self.release = threading.Event()  # ends the idle watch, so stopping the cache is quick
        self.go = threading.Event()  # holds the first watch until the test has checked the listed state

    def list_page(self, info: ResourceInfo, *, limit: int, continue_token: str | None) -> dict[str, Any]:
        answer = self.lists[min(self.list_calls, len(self.lists) - 1)]
        self.list_calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    def open_watch(self, info: ResourceInfo, *, resource_version: str, timeout_seconds: int) -> Any:
        self.go.wait(5)
        self.watch_versions.append(resource_version)
        if self.watches:
            return StreamResponse(self.watches.pop(0))
        self.done.set()
        return StreamResponse([], hold=self.release)  # an idle watch until released


def test_watch_events_update_the_store_and_resume_from_last_version() -> None:
    transport = ScriptedTransport(
        lists=[{"metadata": {"resourceVersion": "10"}, "items": [cm("a", 5)]}],
        watches=[[{"type": "MODIFIED", "object": cm("a", 11, "2")}, {"type": "ADDED", "object": cm("b", 12)}],
                 [{"type": "DELETED", "object": cm("a", 13, "2")},
                  {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "20"}}}]])
    cache = LiveCache(transport, watch_timeout_seconds=1)
    try:
        assert cache.lookup(INFO, "d", "a") == (True, cm("a", 5))
        transport.go.set()
        assert transport.done.wait(5)
        assert cache.wait_until(lambda: cache.lookup(INFO, "d", "b")[1] is not None)
        assert cache.lookup(INFO, "d", "a") == (True, None)
        assert transport.watch_versions == ["10", "12", "20"]
        assert transport.list_calls == 1
    finally:
        transport.go.set()
        transport.release.set()
        cache.stop()


def test_gone_watch_relists() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version"}}
    transport = ScriptedTransport(
        lists=[{"metadata": {"resourceVersion": "10"}, "items": [cm("a", 5)]},
               {"metadata": {"resourceVersion": "50"}, "items": [cm("c", 40)]}],
        watches=[[gone]])
    cache = LiveCache(transport, watch_timeout_seconds=1)
    try:
        assert cache.lookup(INFO, "d", "a")[1] is not None
        transport.go.set()
        assert transport.done.wait(5)
        assert cache.wait_until(lambda: cache.lookup(INFO, "d", "c")[1] is not None)
        assert cache.lookup(INFO, "d", "a") == (True, None)  # the relist replaced the store
        assert transport.list_calls == 2
        assert transport.watch_versions == ["10", "50"]
    finally:
        transport.go.set()
        transport.release.set()
        cache.stop()


def test_refused_list_means_not_served() -> None:
    transport = ScriptedTransport(lists=[KubeForbidden("list configmaps: forbidden")], watches=[])
    cache = LiveCache(transport)
    try:
        assert cache.lookup(INFO, "d", "a") == (False, None)
        assert cache.lookup(INFO, "d", "a") == (False, None)
        assert transport.list_calls == 1  # not retried on every lookup
    finally:
        transport.go.set()
        transport.release.set()
        cache.stop()


def test_older_events_do_not_overwrite_our_newer_write() -> None:
    transport = ScriptedTransport(lists=[{"metadata": {"resourceVersion": "10"}, "items": []}], watches=[])
    cache = LiveCache(transport)
    try:
        assert cache.lookup(INFO, "d", "a") == (True, None)
        cache.observe(INFO, cm("a", 30, "new"))
        cache._apply_event(cache._informers[INFO.group_version_resource],  # noqa: SLF001
                           {"type": "MODIFIED", "raw_object": cm("a", 25, "old")})
        assert cache.lookup(INFO, "d", "a")[1]["data"] == {"v": "new"}
    finally:
        transport.go.set()
        transport.release.set()
        cache.stop()


def test_a_broken_watch_backs_off_by_the_one_backoff() -> None:
    """0.5 s after the first failure, doubling, capped at 30 s, each spread over [delay/2, delay]."""
    import random

    from shared.cluster.live_cache import watch_retry_delay

    highest = [watch_retry_delay(n, _Draw(1.0)) for n in range(9)]
    assert highest == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [watch_retry_delay(n, _Draw(0.0)) for n in (0, 6)] == [0.25, 15.0]
    rng = random.Random(7)
    assert all(2.0 <= watch_retry_delay(3, rng) <= 4.0 for _ in range(100))


class _Draw:
    """A random source that always draws the same number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value
