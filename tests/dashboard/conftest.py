"""Fixtures for the dashboard's HTTP tests: the real API server (with its dashboard) on the test Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from scheduler.api import create_app
from shared.core.settings import Settings
from shared.pipeline.services import Services
from shared.state.app_store import AppStore
from tests.api.serving import serve

TOKEN = "dashboard-test-token-0123456789"
READONLY = "dashboard-read-only-token-0123456789"


@dataclass
class Served:
    base: str
    client: httpx.Client          # no session
    store: AppStore
    services: Services

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}

    @contextmanager
    def signed_in(self, token: str = TOKEN) -> Iterator[httpx.Client]:
        """A client holding the session cookie, as a browser does after signing in."""
        with httpx.Client(base_url=self.base, timeout=20) as client:
            response = client.post("/login", data={"token": token, "next": "/applications"}, headers=self.origin)
            assert response.status_code == 303, response.text
            yield client


@pytest.fixture()
def served(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Served]:
    settings = Settings(redis_url=redis_url, home=tmp_path / "home", api_token=SecretStr(TOKEN),
                        api_readonly_token=SecretStr(READONLY),
                        git_cache_dir=tmp_path / "git-cache")
    services = Services(settings, redis_client)
    with serve(create_app(settings, services)) as base, httpx.Client(base_url=base, timeout=20) as client:
        yield Served(base, client, services.store, services)
