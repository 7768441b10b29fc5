"""Fixtures for the operation tests: a driver over a real (flushed) Redis, a fake cluster and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.operation.driver import Driver, FakeClock, FakeCluster, patch_pipeline, services


@pytest.fixture()
def driver(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    cluster = FakeCluster()
    made = Driver(services(redis_client, cluster), cluster, FakeClock())
    patch_pipeline(monkeypatch, lambda: made)
    yield made
