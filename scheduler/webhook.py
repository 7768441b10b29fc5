"""The HTTP front door for git hosts: `POST /api/webhook`, answered fast, refusing anything unproven.

A push must reach a refresh within milliseconds, and a flood of pushes (or of garbage) must not hurt:
the body size is checked from Content-Length before reading and counted while streaming; verification,
parsing and matching (pure CPU, no git, no cluster) run off the event loop; the only side effect is one
`enqueue_fetch` per distinct repository whose tracked revision moved, naming the apps matched by path: the
fetch refreshes those at once (urgent, through the coalescing path) and its detection finds the others a
push changed that no path names (a kustomize base outside an overlay's path).
Anything a client sends is answered with a 2xx or 4xx, never a 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shared.core.models import Application
from shared.core.repo_url import normalize_repo_url, redact_url
from shared.core.settings import Settings
from shared.webhooks import MatchResult, PushEvent, WebhookError, detect_provider, match_apps, parse_webhook

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhook"
_RESULTS = {400: "invalid", 401: "forbidden", 403: "forbidden", 413: "too_large"}

SettingsGetter = Callable[[], Settings]
ListApps = Callable[[], Iterable[Application]]
EnqueueFetch = Callable[[str, list[str], str | None], None]
OnResult = Callable[[str, str], None]


@dataclass
class _Outcome:
    status_code: int
    body: dict[str, Any]
    result: str
    headers: dict[str, str] = field(default_factory=dict)


def _error(provider: str | None, status_code: int, message: str) -> _Outcome:
    headers = {"Connection": "close"} if status_code == 413 else {}
    return _Outcome(status_code, {"provider": provider, "status": "refused", "error": message},
                    _RESULTS.get(status_code, "invalid"), headers)


def group_by_repo(apps: Iterable[Application], names: list[str], event: PushEvent) -> dict[str, list[str]]:
    """The matched apps grouped per repository (one fetch each), keyed by the URL the first app uses.

    Apps name one repository in different spellings (https, ssh, `.git`); they share one fetch. The URL is
    passed with any embedded `user:password@` removed: task arguments are visible in Flower and Redis.
    """
    wanted = set(names)
    event_keys = {normalize_repo_url(url) for url in event.repo_urls}
    by_key: dict[str, tuple[str, list[str]]] = {}
    for app in apps:
        if app.name not in wanted:
            continue
        sources = app.spec.sources or ([app.spec.source] if app.spec.source else [])
        for source in sources:
            key = normalize_repo_url(source.repo_url)
            if key in event_keys:
                url, members = by_key.setdefault(key, (redact_url(source.repo_url), []))
                if app.name not in members:
                    members.append(app.name)
    return {url: members for url, members in by_key.values()}


def create_webhook_router(
    settings_getter: SettingsGetter,
    list_apps: ListApps,
    enqueue_fetch: EnqueueFetch,
    on_result: OnResult | None = None,
) -> APIRouter:
    """A router serving `POST /api/webhook` (see the module docstring for what it does).

    `enqueue_fetch(repo_url, urgent_app_names, revision_hint)` is called once per distinct repository that
    an app tracks at a revision the push moved (the list may be empty: the fetch's detection decides);
    `on_result(provider, result)` once per request, result one of accepted, ignored, forbidden, invalid,
    too_large (for metrics).
    """
    router = APIRouter()

    def handle(headers: dict[str, str], body: bytes, settings: Settings) -> _Outcome:
        provider = detect_provider(headers)
        name = provider.name if provider else None
        try:
            event = parse_webhook(headers, body, settings)
        except WebhookError as exc:
            log.info("webhook refused: provider=%s status=%s reason=%s", name, exc.status_code, exc.message)
            return _error(name, exc.status_code, exc.message)
        if event is None:
            reason = "not a push event" if provider else "no known git provider headers"
            return _Outcome(202, {"provider": name, "status": "ignored", "reason": reason, "matched": 0,
                                  "apps": []}, "ignored")
        apps = list(list_apps())
        matched: MatchResult = match_apps(event, apps)
        # One fetch per repository a moved app tracks: the matched apps refresh at once after it (urgent), and
        # its detection finds what paths cannot show, so a push touching only a kustomize base still counts.
        groups = group_by_repo(apps, matched.refresh + matched.watch, event)
        urgent = set(matched.refresh)
        for repo_url, app_names in groups.items():
            enqueue_fetch(repo_url, [name for name in app_names if name in urgent], event.revision)
        log.info("webhook accepted: provider=%s repo=%s ref=%s matched=%d skipped=%d fetches=%d",
                 event.provider, redact_url(event.repo_urls[0]), event.ref, len(matched.refresh),
                 len(matched.skipped), len(groups))
        body = {"provider": event.provider, "status": "accepted", "matched": len(matched.refresh),
                "apps": matched.refresh, "ref": event.ref}
        return _Outcome(202, body, "accepted")

    @router.post(WEBHOOK_PATH, status_code=202)
    async def receive_webhook(request: Request) -> JSONResponse:
        settings = settings_getter()
        headers = {key.lower(): value for key, value in request.headers.items()}
        outcome = await _read_and_handle(request, headers, settings, handle)
        if on_result is not None:
            try:
                on_result(outcome.body.get("provider") or "unknown", outcome.result)
            except Exception:  # metrics must never break the answer
                log.exception("webhook on_result callback failed")
        return JSONResponse(outcome.body, status_code=outcome.status_code, headers=outcome.headers)

    return router


async def _read_and_handle(
    request: Request,
    headers: dict[str, str],
    settings: Settings,
    handle: Callable[[dict[str, str], bytes, Settings], _Outcome],
) -> _Outcome:
    provider = detect_provider(headers)
    name = provider.name if provider else None
    limit = settings.webhook_max_bytes
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return _error(name, 400, "Content-Length is not a non-negative integer")
        if int(declared) > limit:
            return _error(name, 413, f"webhook body of {int(declared)} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _error(name, 413, f"webhook body is over the {limit}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        return _error(name, 400, "client disconnected before sending the whole body")
    body = b"".join(chunks)
    try:
        return await run_in_threadpool(handle, headers, body, settings)
    except Exception:
        # Not the client's doing (listing apps or enqueueing failed): say so without details.
        log.exception("webhook handling failed: provider=%s", name)
        return _Outcome(503, {"provider": name, "status": "error",
                              "error": "could not enqueue the refresh; the git host may retry"}, "error")
