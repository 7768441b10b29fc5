"""Every place a Secret value could leave the cluster, read back as text, and a search through them.

Places: the CLI's and the REST API's answers (collected by the test), the log files under the WaveCD
home, every value of every Redis key (strings, hashes, lists, sets, sorted sets, streams; Celery's queued
messages decoded from their base64 bodies; zlib-compressed values decompressed), and Flower's task list
with each task's arguments and result.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis


@dataclass(frozen=True)
class Place:
    """One piece of text a user or operator can see, and where it was found."""

    where: str
    text: str


def needles(*values: str) -> list[str]:
    """Each value as written and as Kubernetes stores it in a Secret's `data` (base64)."""
    found: list[str] = []
    for value in values:
        found += [value, base64.b64encode(value.encode()).decode()]
    return found


def leaks(places: list[Place], values: list[str]) -> list[str]:
    """`where: value[:4]...` for every place holding one of `values` (the values themselves never printed)."""
    return [f"{place.where}: holds {value[:4]}..." for place in places for value in values if value in place.text]


def _decoded(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _celery_bodies(data: object) -> Iterator[str]:
    """Bodies of Celery messages (kombu's Redis transport keeps them base64-encoded) anywhere in `data`:
    a queued message is a JSON object; a reserved one sits in the `unacked` hash inside a JSON list."""
    if isinstance(data, list):
        for item in data:
            yield from _celery_bodies(item)
    elif isinstance(data, dict):
        body = data.get("body")
        if isinstance(body, str) and (data.get("properties") or {}).get("body_encoding") == "base64":
            try:
                yield _decoded(base64.b64decode(body))
            except binascii.Error:
                pass


def _expanded(raw: bytes) -> Iterator[tuple[str, str]]:
    """(how, text) for a stored value: as is, decompressed when it is zlib, and Celery's message bodies."""
    yield "", _decoded(raw)
    try:
        yield " (zlib-decompressed)", _decoded(zlib.decompress(raw))
    except zlib.error:
        pass
    try:
        message = json.loads(raw)
    except ValueError:
        return
    for body in _celery_bodies(message):
        yield " (Celery message body)", body


def redis_places(client: redis.Redis) -> list[Place]:
    """Every key's every value, by type; unknown types are reported as such so nothing is skipped silently."""
    places: list[Place] = []
    for key in client.scan_iter(count=500):
        name = _decoded(key)
        kind = _decoded(client.type(key))
        values: list[bytes]
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [part for _, fields in client.xrange(key) for pair in fields.items() for part in pair]
        elif kind == "none":
            continue  # expired between SCAN and TYPE
        else:
            raise AssertionError(f"Redis key {name} has type {kind}, which this scan cannot read")
        places.append(Place(f"Redis key {name}", name))
        for value in values:
            for how, text in _expanded(value):
                places.append(Place(f"Redis key {name}{how}", text))
    return places


def log_places(home: Path) -> list[Place]:
    """Every file under the home's logs directory (the current and the rotated ones)."""
    logdir = home / "logs"
    return [Place(f"log {path.relative_to(home)}", path.read_text(errors="replace"))
            for path in sorted(logdir.rglob("*")) if path.is_file()]


def flower_places(url: str) -> list[Place]:
    """Flower's task list and each task's details (arguments, keyword arguments, result)."""
    tasks = httpx.get(f"{url}/api/tasks", timeout=10)
    tasks.raise_for_status()
    places = [Place("Flower /api/tasks", tasks.text)]
    for task_id in tasks.json():
        info = httpx.get(f"{url}/api/task/info/{task_id}", timeout=10)
        info.raise_for_status()
        places.append(Place(f"Flower /api/task/info/{task_id}", info.text))
    return places
