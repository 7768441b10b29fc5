"""The receiver over real HTTP: uvicorn on a loopback port, httpx sending really signed requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from shared.core.repo_url import normalize_repo_url
from tests.webhooks.cases import (
    PROVIDER_CASES,
    auth_headers,
    body_bytes,
    forged_headers,
    load,
    make_app,
    settings,
    signed_headers,
)
from tests.webhooks.receiver import Recorder, build_app

CASES = [pytest.param(path, id=path.stem) for path in PROVIDER_CASES]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    port = _free_port()
    config = uvicorn.Config(build_app(recorder), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/api/webhook", recorder
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def http(server: tuple[str, Recorder]) -> Iterator[tuple[httpx.Client, str, Recorder]]:
    url, recorder = server
    recorder.reset()
    with httpx.Client(timeout=10) as client:
        yield client, url, recorder


@pytest.mark.parametrize("path", CASES)
def test_signed_request_enqueues_one_fetch_per_repo(http, path: Path):
    client, url, recorder = http
    case = load(path)
    recorder.reset(apps=[make_app(spec) for spec in case["apps"]])
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["provider"] == case["provider"]
    if case["expect"].get("ignored"):
        assert data["status"] == "ignored"
        assert recorder.fetches == []
        assert recorder.results == [(case["provider"], "ignored")]
        return
    expected = case["expect"]["refresh"]
    assert data["status"] == "accepted"
    assert data["matched"] == len(expected) and data["apps"] == expected
    fetched = [name for _, names, _ in recorder.fetches for name in names]
    assert sorted(fetched) == sorted(expected)
    repos = [repo for repo, _, _ in recorder.fetches]
    assert len(repos) == len(set(repos)), "one fetch per repository"
    assert len({normalize_repo_url(r) for r in repos}) == len(repos), "spellings of one repo share a fetch"
    assert all(revision == case["expect"].get("revision") for _, _, revision in recorder.fetches)
    assert recorder.results == [(case["provider"], "accepted")]


@pytest.mark.parametrize("path", CASES)
def test_forged_request_is_refused_and_enqueues_nothing(http, path: Path):
    client, url, recorder = http
    case = load(path)
    recorder.reset(apps=[make_app(spec) for spec in case["apps"]])
    body = body_bytes(case)
    response = client.post(url, content=body, headers=forged_headers(case, body))
    assert response.status_code == 403
    assert response.json()["status"] == "refused"
    assert recorder.fetches == []
    assert recorder.results == [(case["provider"], "forbidden")]


@pytest.mark.parametrize("path", CASES)
def test_unsigned_request_is_refused_and_enqueues_nothing(http, path: Path):
    client, url, recorder = http
    case = load(path)
    recorder.reset(apps=[make_app(spec) for spec in case["apps"]])
    response = client.post(url, content=body_bytes(case), headers=case["headers"])
    assert response.status_code == 401
    assert recorder.fetches == []


@pytest.mark.parametrize("path", CASES)
def test_secret_required_but_not_configured_is_refused(http, path: Path):
    client, url, recorder = http
    case = load(path)
    provider_keys = {
        "github": ["webhook_github_secret"], "gitlab": ["webhook_gitlab_secret"],
        "bitbucket": ["webhook_bitbucket_uuid"], "bitbucketserver": ["webhook_bitbucketserver_secret"],
        "gogs": ["webhook_gogs_secret"], "gitea": ["webhook_gitea_secret", "webhook_gogs_secret"],
        "azuredevops": ["webhook_azuredevops_username", "webhook_azuredevops_password"],
    }[case["provider"]]
    unset = dict.fromkeys(provider_keys)
    recorder.reset(settings=settings(**unset, webhook_require_secrets=True),
                   apps=[make_app(spec) for spec in case["apps"]])
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.status_code == 403
    assert "webhook_require_secrets" in response.json()["error"]
    assert recorder.fetches == []


@pytest.mark.parametrize("path", CASES)
def test_malformed_json_is_a_400(http, path: Path):
    client, url, recorder = http
    case = load(path)
    body = body_bytes(case)[:-7]
    response = client.post(url, content=body, headers=signed_headers(case, body))
    # A ping's body is never parsed; an event named in the body (Azure DevOps, GitLab system hooks) is.
    if case["expect"].get("ignored") and case["provider"] != "azuredevops" and not case.get("event_in_body"):
        assert response.status_code == 202
    else:
        assert response.status_code == 400, response.text
        assert "not valid JSON" in response.json()["error"]
        assert recorder.results == [(case["provider"], "invalid")]
    assert recorder.fetches == []


def test_body_over_content_length_limit_is_413(http):
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    recorder.reset(settings=settings(webhook_max_bytes=1024), apps=[make_app(s) for s in case["apps"]])
    body = body_bytes(case)
    assert len(body) > 1024
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.status_code == 413
    assert "1024-byte limit" in response.json()["error"]
    assert recorder.fetches == [] and recorder.results == [("github", "too_large")]


def test_chunked_body_over_limit_is_413(http):
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    recorder.reset(settings=settings(webhook_max_bytes=1024), apps=[make_app(s) for s in case["apps"]])
    body = body_bytes(case)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start:start + 256]

    response = client.post(url, content=chunks(), headers=signed_headers(case, body))
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert recorder.fetches == []


def test_unknown_provider_is_ignored(http):
    client, url, recorder = http
    response = client.post(url, content=b'{"hello": "world"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    assert response.json() == {"provider": None, "status": "ignored", "reason": "no known git provider headers",
                               "matched": 0, "apps": []}
    assert recorder.results == [("unknown", "ignored")]


def test_unknown_event_of_known_provider_is_ignored(http):
    client, url, recorder = http
    body = b'{"action": "opened", "number": 1}'
    headers = {"X-GitHub-Event": "pull_request", "Content-Type": "application/json"}
    response = client.post(url, content=body, headers={**headers, **auth_headers("github", body)})
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert recorder.fetches == []


def test_monorepo_push_refreshes_only_the_touched_app(http):
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    apps = [make_app({"name": name, "repoURL": "https://github.com/acme/gitops", "path": f"apps/{name}",
                      "targetRevision": "HEAD"}) for name in ("guestbook", "billing", "search", "auth")]
    recorder.reset(apps=apps)
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.json()["apps"] == ["guestbook"]
    assert recorder.fetches == [("https://github.com/acme/gitops", ["guestbook"],
                                 "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")]


def test_no_matching_app_enqueues_nothing(http):
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    recorder.reset(apps=[make_app({"name": "x", "repoURL": "https://github.com/other/repo", "path": "."})])
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.status_code == 202
    assert response.json()["matched"] == 0 and response.json()["status"] == "accepted"
    assert recorder.fetches == []


def test_push_touching_no_app_path_still_fetches_for_the_detection(http):
    """Only a kustomize base changed: no app matches by path, yet the repository is fetched (nobody urgent),
    so the fetch's detection can refresh the overlay apps that build the base."""
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    apps = [make_app({"name": name, "repoURL": "https://github.com/acme/gitops", "path": f"overlays/{name}",
                      "targetRevision": "HEAD"}) for name in ("prod", "staging")]
    apps.append(make_app({"name": "pinned", "repoURL": "https://github.com/acme/gitops", "path": "overlays/x",
                          "targetRevision": "v1.0.0"}))
    recorder.reset(apps=apps)
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.json()["matched"] == 0
    assert recorder.fetches == [("https://github.com/acme/gitops", [], "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")]


def test_fetch_arguments_never_carry_url_credentials(http):
    client, url, recorder = http
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    recorder.reset(apps=[make_app({"name": "guestbook", "repoURL": "https://bot:t0ken@github.com/acme/gitops.git",
                                   "path": "apps/guestbook", "targetRevision": "main"})])
    body = body_bytes(case)
    response = client.post(url, content=body, headers=signed_headers(case, body))
    assert response.json()["apps"] == ["guestbook"]
    assert recorder.fetches == [("https://github.com/acme/gitops.git", ["guestbook"],
                                 "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")]
    assert "t0ken" not in response.text
