"""A FastAPI app mounting the webhook router, with recording fakes for its callbacks, for the tests.

`list_apps`, `enqueue_fetch` and `on_result` are the receiver's only ways out; recording them lets a test
assert exactly what a request enqueued (and that a refused one enqueued nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI

from scheduler.webhook import create_webhook_router
from shared.core.models import Application
from shared.core.settings import Settings
from tests.webhooks.cases import settings as make_settings


@dataclass
class Recorder:
    settings: Settings = field(default_factory=make_settings)
    apps: list[Application] = field(default_factory=list)
    fetches: list[tuple[str, list[str], str | None]] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)

    def reset(self, settings: Settings | None = None, apps: list[Application] | None = None) -> None:
        self.settings = settings or make_settings()
        self.apps = apps or []
        self.fetches.clear()
        self.results.clear()

    def enqueue_fetch(self, repo_url: str, app_names: list[str], revision: str | None) -> None:
        self.fetches.append((repo_url, list(app_names), revision))

    def on_result(self, provider: str, result: str) -> None:
        self.results.append((provider, result))


def build_app(recorder: Recorder) -> FastAPI:
    app = FastAPI()
    app.include_router(create_webhook_router(lambda: recorder.settings, lambda: recorder.apps,
                                             recorder.enqueue_fetch, recorder.on_result))
    return app
