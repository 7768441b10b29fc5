"""The receiver at the ASGI level: it stops reading an oversized body, and no input yields a 5xx.

The hypothesis tests drive the app in-process (httpx's ASGI transport) so hundreds of examples stay fast;
the streaming tests feed the ASGI app by hand to count how much of a body it pulled.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from scheduler.webhook import create_webhook_router
from tests.webhooks.cases import PROVIDER_CASES, auth_headers, body_bytes, load, make_app, settings
from tests.webhooks.receiver import Recorder, build_app

RECORDER = Recorder()
APP = build_app(RECORDER)
CASES = [load(path) for path in PROVIDER_CASES]
ALL_APPS = [make_app(spec) for case in CASES for spec in case["apps"] if spec["name"]]

PROVIDER_HEADERS = [
    "X-GitHub-Event", "X-Hub-Signature-256", "X-Gitlab-Event", "X-Gitlab-Token", "X-Event-Key", "X-Hook-UUID",
    "X-Hub-Signature", "X-Gogs-Event", "X-Gogs-Signature", "X-Gitea-Event", "X-Gitea-Signature",
    "X-Vss-ActivityId", "Authorization", "Content-Type", "Content-Length",
]
EVENT_VALUES = ["push", "ping", "Push Hook", "Tag Push Hook", "repo:push", "repo:refs_changed",
                "diagnostics:ping", "git.push", "", "sha256=00", "Basic Zm9vOmJhcg=="]
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
header_values = st.one_of(st.sampled_from(EVENT_VALUES), header_text)
headers_strategy = st.dictionaries(
    st.one_of(st.sampled_from(PROVIDER_HEADERS), st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)),
    header_values, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)


def post(content: bytes, headers: dict[str, str], app: FastAPI = APP) -> httpx.Response:
    """One request through the ASGI app in-process (no socket); server exceptions propagate."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wavecd.test") as client:
            return await client.post("/api/webhook", content=content, headers=headers)

    return asyncio.run(run())


def _configure(**overrides: Any) -> None:
    RECORDER.reset(settings=settings(**overrides), apps=ALL_APPS)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=headers_strategy, body=st.binary(max_size=512))
def test_arbitrary_headers_and_bytes_never_give_a_5xx(headers: dict[str, str], body: bytes):
    _configure(webhook_max_bytes=400)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    response = post(body, headers)
    assert response.status_code in (202, 400, 401, 403, 413), response.text
    assert response.json()["status"] in ("accepted", "ignored", "refused")
    if response.json()["status"] != "accepted":
        assert RECORDER.fetches == []


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_index=st.integers(0, len(CASES) - 1), data=st.data())
def test_correctly_signed_mutated_payloads_never_give_a_5xx(case_index: int, data: st.DataObject):
    """Past verification, a payload of the right provider with any field replaced is a 202 or a 400."""
    _configure()
    case = CASES[case_index]
    payload = json.loads(json.dumps(case["body"]))
    node: Any = payload
    # Walk down a random path and replace what is there with arbitrary JSON.
    for _ in range(data.draw(st.integers(0, 4))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], dict | list) and node[key]:
                node = node[key]
                continue
            node[key] = data.draw(json_values)
            break
        if isinstance(node, list) and node:
            index = data.draw(st.integers(0, len(node) - 1))
            if isinstance(node[index], dict | list) and node[index]:
                node = node[index]
                continue
            node[index] = data.draw(json_values)
            break
    body = json.dumps(payload).encode()
    headers = {**case["headers"], **auth_headers(case["provider"], body)}
    response = post(body, headers)
    assert response.status_code in (202, 400), response.text
    if response.status_code == 400:
        assert RECORDER.fetches == []
        assert case["provider"] in response.json()["error"]


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_index=st.integers(0, len(CASES) - 1), value=json_values)
def test_correctly_signed_arbitrary_json_never_gives_a_5xx(case_index: int, value: Any):
    _configure()
    case = CASES[case_index]
    body = json.dumps(value).encode()
    headers = {**case["headers"], **auth_headers(case["provider"], body)}
    response = post(body, headers)
    assert response.status_code in (202, 400), response.text


def test_deeply_nested_json_is_a_400_not_a_crash():
    _configure()
    case = next(c for c in CASES if c["provider"] == "github" and not c["expect"].get("ignored"))
    body = b'{"ref": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {**case["headers"], **auth_headers("github", body)}
    response = post(body, headers)
    assert response.status_code == 400


def test_form_encoded_github_payload_is_accepted():
    case = next(c for c in CASES if c["provider"] == "github" and c["expect"].get("refresh") == ["guestbook",
                                                                                                "guestbook-ssh"])
    RECORDER.reset(apps=[make_app(spec) for spec in case["apps"]])
    body = urlencode({"payload": json.dumps(case["body"])}).encode()
    headers = {**case["headers"], "Content-Type": "application/x-www-form-urlencoded",
               **auth_headers("github", body)}
    response = post(body, headers)
    assert response.status_code == 202 and response.json()["apps"] == ["guestbook", "guestbook-ssh"]


def _drive(headers: list[tuple[bytes, bytes]], chunk: bytes, chunks: int) -> tuple[int, int]:
    """Send `chunks` copies of `chunk` to the ASGI app; return (status, chunks it pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/webhook", "raw_path": b"/api/webhook", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    asyncio.run(APP(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), pulled


def test_streamed_body_stops_being_read_past_the_limit():
    _configure(webhook_max_bytes=64 * 1024)
    status, pulled = _drive([(b"x-github-event", b"push")], b"x" * 16 * 1024, chunks=1000)
    assert status == 413
    assert pulled <= 5, f"read {pulled} chunks of 16 KiB past a 64 KiB limit"
    assert RECORDER.results == [("github", "too_large")]


def test_declared_length_over_the_limit_reads_nothing():
    _configure(webhook_max_bytes=1024)
    status, pulled = _drive([(b"x-gitlab-event", b"Push Hook"), (b"content-length", b"99999999999")],
                            b"x" * 1024, chunks=10)
    assert status == 413 and pulled == 0


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b""])
def test_bad_content_length_is_a_400(value: bytes):
    _configure()
    status, _ = _drive([(b"x-github-event", b"push"), (b"content-length", value)], b"{}", chunks=1)
    assert status == 400


def test_client_disconnect_mid_body_is_a_400():
    _configure()
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"{", "more_body": True} if pulled == 1 else {
            "type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/webhook", "raw_path": b"/api/webhook", "query_string": b"",
             "root_path": "", "headers": [(b"x-github-event", b"push")], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80)}
    asyncio.run(APP(scope, receive, send))
    assert RECORDER.fetches == []
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert not starts or starts[0]["status"] == 400


def test_a_failing_enqueue_is_a_503_not_a_crash():
    """Not a client error: the receiver says so with a 503 so the git host retries the delivery."""

    def broken(repo_url: str, apps: list[str], revision: str | None) -> None:
        raise ConnectionError("redis down")

    case = next(c for c in CASES if c["provider"] == "github" and not c["expect"].get("ignored"))
    app = FastAPI()
    app.include_router(create_webhook_router(lambda: settings(), lambda: [make_app(s) for s in case["apps"]],
                                             broken))
    body = body_bytes(case)
    response = post(body, {**case["headers"], **auth_headers("github", body)}, app=app)
    assert response.status_code == 503
    assert "redis" not in response.text
