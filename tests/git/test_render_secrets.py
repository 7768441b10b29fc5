"""Secret values stay out of Redis: the render cache holds a rendered Secret without `data`/`stringData`
(this process keeps them, and a process that lacks them renders again). tests/project/test_secret_values.py
checks all of Redis after a whole reconcile."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest
import redis

from shared.source import render
from shared.source.git_source import RepoCache
from shared.source.manifests import DirectoryOptions
from shared.source.render import render_app
from tests.fixtures.git import GitFactory

PLAIN = "pl41n-s3cret-value-1234"
ENCODED_PLAIN = "b64-s3cret-value-5678"
SECRET = f"""apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
data:
  token: {base64.b64encode(ENCODED_PLAIN.encode()).decode()}
stringData:
  password: {PLAIN}
"""
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\ndata:\n  colour: blue\n"
OPTS = DirectoryOptions()
NEEDLES = [PLAIN.encode(), ENCODED_PLAIN.encode(), base64.b64encode(ENCODED_PLAIN.encode()),
           base64.b64encode(PLAIN.encode())]


def redis_values(client: redis.Redis) -> list[bytes]:
    """Every value Redis holds, of any type, with zlib payloads decompressed as well."""
    found: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            items = [client.get(key) or b""]
        elif kind == b"hash":
            items = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == b"list":
            items = client.lrange(key, 0, -1)
        elif kind in (b"set",):
            items = list(client.smembers(key))
        elif kind == b"zset":
            items = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            items = [b"".join(k + v for k, v in fields.items()) for _, fields in client.xrange(key)]
        else:
            items = []
        for item in items:
            found.append(key + b" " + item)
            try:
                found.append(key + b" " + zlib.decompress(item))
            except zlib.error:
                pass
    return found


def assert_no_secret_in(client: redis.Redis) -> None:
    for value in redis_values(client):
        for needle in NEEDLES:
            assert needle not in value, f"a Secret value is in Redis: {value[:120]!r}"


@pytest.fixture()
def repo(git_factory: GitFactory, tmp_path: Path) -> tuple[object, RepoCache]:
    handle = git_factory.create("sec", {"app/secret.yaml": SECRET, "app/cm.yaml": CM.format("cm"),
                                        "plain/cm.yaml": CM.format("plain")})
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    return handle, cache


def _secret_of(objects: list[dict[str, object]]) -> dict[str, object]:
    return next(o for o in objects if o["kind"] == "Secret")


def test_render_cache_holds_no_secret_value(repo, redis_client: redis.Redis) -> None:
    handle, cache = repo
    render.forget_local_secrets()
    render.stats.clear()
    first = render_app(cache, redis_client, handle.url, handle.head(), "app", OPTS)
    secret = _secret_of(first.objects)
    assert secret["stringData"] == {"password": PLAIN}
    assert_no_secret_in(redis_client)
    (key,) = redis_client.keys(f"{render.CACHE_PREFIX}:*")
    cached = zlib.decompress(redis_client.get(key))
    assert b'"kind":"Secret"' in cached and b"ConfigMap" in cached  # the Secret's shape is cached, not its values

    again = render_app(cache, redis_client, handle.url, handle.head(), "app", OPTS)  # this process holds them
    assert render.stats["cache_hits"] == 1 and render.stats["renders"] == 1
    assert again.objects == first.objects


def test_a_process_without_the_values_renders_again_and_gets_them(repo, redis_client: redis.Redis) -> None:
    handle, cache = repo
    render.forget_local_secrets()
    render.stats.clear()
    first = render_app(cache, redis_client, handle.url, handle.head(), "app", OPTS)
    plain = render_app(cache, redis_client, handle.url, handle.head(), "plain", OPTS)
    render.forget_local_secrets()  # another worker process: the Redis entry, not the values
    other = render_app(cache, redis_client, handle.url, handle.head(), "app", OPTS)
    assert render.stats["secret_rerenders"] == 1 and render.stats["renders"] == 3
    assert _secret_of(other.objects) == _secret_of(first.objects)
    assert base64.b64decode(_secret_of(other.objects)["data"]["token"]).decode() == ENCODED_PLAIN  # type: ignore[index]
    # A render without Secrets is a plain hit in any process.
    assert render_app(cache, redis_client, handle.url, handle.head(), "plain", OPTS).objects == plain.objects
    assert render.stats["renders"] == 3
    assert_no_secret_in(redis_client)
