"""Fixtures for the API tests: a served API on the test Redis, an HTTP client, and app documents."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from scheduler.api import create_app
from shared.core.settings import Settings
from shared.pipeline.services import Services
from tests.api.serving import serve
from workers.catalogue import TaskCall, parse

TOKEN = "test-token-0123456789"


def application(name: str, *, project: str = "default", labels: dict[str, str] | None = None,
                automated: bool = False, repo: str = "https://git.example.com/org/repo.git") -> dict[str, Any]:
    policy: dict[str, Any] = {"automated": {"prune": True}} if automated else {}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd", "labels": labels or {}},
            "spec": {"project": project, "source": {"repoURL": repo, "path": "app", "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "dest"},
                     "syncPolicy": policy}}


def queued_tasks(client: redis.Redis, queue: str) -> list[TaskCall]:
    """The Celery messages waiting in a queue (kombu's Redis transport keeps a list per queue), read back
    through the task catalogue: named arguments only, each checked against its task's model."""
    tasks: list[TaskCall] = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        call = parse(message["headers"]["task"], kwargs)
        assert args == [] and call is not None, message["headers"]
        tasks.append(call)
    return tasks


ApiFactory = Callable[..., httpx.Client]


@pytest.fixture()
def make_api(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[ApiFactory]:
    """Start an API server with settings overrides; returns an httpx client bound to it (no auth header)."""
    with ExitStack() as stack:
        def start(**overrides: Any) -> httpx.Client:
            values: dict[str, Any] = {"redis_url": redis_url, "home": tmp_path / "home",
                                      "api_token": SecretStr(TOKEN), "api_open_reads": False}
            values.update(overrides)
            settings = Settings(**values)
            client = redis_client if values["redis_url"] == redis_url else redis.Redis.from_url(values["redis_url"])
            app = create_app(settings, Services(settings, client))
            base = stack.enter_context(serve(app))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=20))
            return http
        yield start


@pytest.fixture()
def api(make_api: ApiFactory) -> httpx.Client:
    return make_api()


AUTH = {"Authorization": f"Bearer {TOKEN}"}
