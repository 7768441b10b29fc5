"""Hostile and careless clients (issue #17, points 4 to 8): the API answers them with a 4xx, fast and cheaply.

The memory and event-loop cases run the API in a process of its own (tests/api/server_process.py) and
measure it from outside: peak resident memory from /proc, and which answer comes first. The others use
the in-thread server of the other API tests. Every refused request is also checked for what it must not
have done: nothing stored, nothing queued.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.api.conftest import AUTH, TOKEN, ApiFactory, application, queued_tasks
from tests.api.server_process import ServerProcess, api_process, push_body, read_answer
from tests.api.test_api import _error, _seed
from workers.catalogue import AppAction, AppAdmin

MIB = 1024 * 1024
# Growth of the server's peak memory we accept while it refuses a body many times larger than this.
MEMORY_SLACK = 32 * MIB


@pytest.fixture(scope="module")
def _server_process(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with api_process(redis_url, tmp_path_factory.mktemp("home"), WAVECD_API_TOKEN=TOKEN) as proc:
        yield proc


@pytest.fixture()
def server(_server_process: ServerProcess) -> ServerProcess:
    """The API process, started once per module; its peak memory counts from this test on."""
    _server_process.reset_peak_rss()
    return _server_process


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _stash_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter("wavecd:stash:*"))


# -- 4. bodies: the token first, then a cap, refused from Content-Length or by bytes read -------------------


def test_a_huge_body_without_a_token_is_refused_before_it_is_read(server: ServerProcess):
    declared = 128 * MIB
    before = server.peak_rss_bytes()
    with server.connect() as sock:
        answer = push_body(sock, _head("POST", "/api/v1/applications/a/sync", {
            "Content-Type": "application/json", "Content-Length": str(declared)}), declared)
    assert answer.status == 401, answer.head
    assert json.loads(answer.body)["code"] == 401
    assert answer.body_bytes_sent < declared  # answered while the body was still being sent
    assert server.peak_rss_bytes() - before < MEMORY_SLACK


def test_a_declared_oversize_body_is_413_before_it_is_read(server: ServerProcess):
    declared = 64 * MIB
    with server.connect() as sock:
        answer = push_body(sock, _head("POST", "/api/v1/applications/a/sync", {
            **AUTH, "Content-Type": "application/json", "Content-Length": str(declared)}), declared)
    assert answer.status == 413, answer.head
    assert "limit" in json.loads(answer.body)["error"]
    assert answer.body_bytes_sent < declared


def test_a_chunked_body_is_cut_off_at_the_cap(server: ServerProcess, redis_client: redis.Redis):
    total = 128 * MIB
    before = server.peak_rss_bytes()
    with server.connect() as sock:
        answer = push_body(sock, _head("POST", "/api/v1/applications", {
            **AUTH, "Content-Type": "application/yaml", "Transfer-Encoding": "chunked"}), total, chunked=True)
    assert answer.status == 413, answer.head
    assert answer.body_bytes_sent < total
    assert server.peak_rss_bytes() - before < MEMORY_SLACK
    assert queued_tasks(redis_client, "apply") == []


def test_invalid_json_without_a_token_is_401_not_422(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    for path in ("/api/v1/applications/a/sync", "/api/v1/applications/a/rollback", "/api/v1/applications"):
        response = api.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert "Bearer" in _error(response, 401), path


def test_every_api_body_is_capped(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    big = json.dumps({"prune": True, "syncOptions": ["x" * 100] * (2 * MIB // 100)}).encode()
    for path in ("/api/v1/applications/a/sync", "/api/v1/applications/a/rollback", "/api/v1/applications"):
        response = api.post(path, content=big, headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.status_code, response.text[:300])
        assert "1048576-byte limit" in response.json()["error"], path
    assert redis_client.get("wavecd:sync-request:a") is None


def test_the_webhook_keeps_its_own_larger_cap(make_api: ApiFactory):
    api = make_api(webhook_max_bytes=3 * MIB)
    body = json.dumps({"padding": "x" * (2 * MIB)}).encode()  # over the API's cap, under the webhook's
    response = api.post("/api/webhook", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    too_big = json.dumps({"padding": "x" * (4 * MIB)}).encode()
    response = api.post("/api/webhook", content=too_big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "3145728-byte limit" in response.json()["error"]


# -- 5. a big parse runs off the event loop -------------------------------------------------------------------


def _big_manifest(items: int) -> bytes:
    values = ", ".join(f"item-{i:06d}-padding" for i in range(items))
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: big}}\n"
            f"spec:\n  source:\n    repoURL: https://h/r.git\n    path: p\n    helm:\n"
            f"      valuesObject: {{list: [{values}]}}\n  destination: {{namespace: d}}\n").encode()


def test_a_big_manifest_does_not_block_other_requests(server: ServerProcess):
    # A big document the server must parse before it can refuse it (its kind is wrong): the answer follows
    # the parse at once, so the only time small requests can be answered in between is during the parse.
    body = _big_manifest(40_000).replace(b"kind: Application", b"kind: ConfigMap")
    assert len(body) < MIB
    with server.connect() as big, httpx.Client(base_url=server.base, timeout=60) as small:
        big.sendall(_head("POST", "/api/v1/applications", {
            **AUTH, "Content-Type": "application/yaml", "Content-Length": str(len(body))}) + body)
        server.wait_until_body_consumed(big)  # from here on the server holds the whole body: it is parsing
        answered_meanwhile = 0
        while not select.select([big], [], [], 0)[0]:
            response = small.post("/api/webhook", content=b"{}", headers={"Content-Type": "application/json"})
            assert response.status_code == 202, response.text
            if not select.select([big], [], [], 0)[0]:
                answered_meanwhile += 1  # this small request started and ended while the big one was parsed
        status, head, answer = read_answer(big)
    assert status == 422 and b"kind must be Application" in answer, head
    # With the parse on the event loop (as before), a request sent once the body is in is answered only after
    # the big one: none would count. How many fit in depends on the machine's load, not on the code, so the
    # test asks for the one that the blocking server can never give (three failed once on a loaded CI run).
    assert answered_meanwhile >= 1, answered_meanwhile


# -- 6. alias bombs -----------------------------------------------------------------------------------------


def _alias_bomb(levels: int) -> bytes:
    lines = ["apiVersion: argoproj.io/v1alpha1", "kind: Application", "metadata: {name: bomb}", "spec:",
             "  destination: {namespace: d}", "  source:", "    repoURL: https://h/r.git", "    path: p",
             "    helm:", "      valuesObject:", "        l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"        l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return ("\n".join(lines) + "\n").encode()


def test_an_alias_bomb_is_refused_and_nothing_is_stored(api: httpx.Client, redis_client: redis.Redis):
    body = _alias_bomb(6)
    assert len(body) < 1024
    message = _error(api.post("/api/v1/applications", content=body,
                              headers={**AUTH, "Content-Type": "application/yaml"}), 422)
    assert "alias" in message
    assert queued_tasks(redis_client, "apply") == [] and _stash_keys(redis_client) == []


def test_a_few_aliases_are_fine(api: httpx.Client, redis_client: redis.Redis):
    body = _alias_bomb(1).replace(b"name: bomb", b"name: anchors")
    response = api.post("/api/v1/applications", content=body, headers={**AUTH, "Content-Type": "application/yaml"})
    assert response.status_code == 202, response.text
    [call] = queued_tasks(redis_client, "apply")
    assert isinstance(call, AppAdmin) and call.stash is not None
    stored = json.loads(redis_client.get(call.stash))
    assert stored["spec"]["source"]["helm"]["valuesObject"]["l1"] == [["lol"] * 10] * 10


# -- 7. deep nesting is a 4xx with a message, never a 500 -------------------------------------------------------


def _nested_json(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


DEEP_BODIES = [
    pytest.param("application/yaml", b"[" * 1000, id="yaml-1000-open-brackets"),
    pytest.param("application/yaml", b"[" * 600 + b"]" * 600, id="yaml-600-closed-brackets"),
    pytest.param("application/yaml", "".join(" " * i + "- \n" for i in range(800)).encode(), id="yaml-block"),
    pytest.param("application/json", _nested_json(1000), id="json-1000-objects"),
    pytest.param("application/json", b"[" * 100_000 + b"]" * 100_000, id="json-100000-arrays"),
]


@pytest.mark.parametrize(("content_type", "body"), DEEP_BODIES)
@pytest.mark.parametrize("path", ["/api/v1/applications", "/api/v1/applications/a/sync",
                                  "/api/v1/applications/a/rollback"])
def test_deep_nesting_is_a_4xx_naming_the_problem(api: httpx.Client, redis_client: redis.Redis, path: str,
                                                 content_type: str, body: bytes):
    _seed(redis_client, application("a"))
    response = api.post(path, content=body, headers={**AUTH, "Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["error"]
    assert "nest" in message or "invalid" in message or "not a JSON" in message, message
    assert queued_tasks(redis_client, "apply") == [] and redis_client.get("wavecd:sync-request:a") is None


def test_moderate_nesting_is_accepted(api: httpx.Client, redis_client: redis.Redis):
    manifest = application("nested")
    manifest["spec"]["source"]["helm"] = {"valuesObject": json.loads(_nested_json(40))}
    response = api.post("/api/v1/applications", json=manifest, headers=AUTH)
    assert response.status_code == 202, response.text


# -- 8. a typo never deletes: explicit cascade, known parameters only, a CLI that asks ------------------------


def test_a_query_string_typo_in_the_path_deletes_nothing(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("demo"))
    response = api.request("DELETE", "/api/v1/applications/demo?x=1/operation", headers=AUTH)
    assert 400 <= response.status_code < 500, response.text
    assert "x" in response.json()["error"]
    assert queued_tasks(redis_client, "apply") == []
    assert store.get_app("demo") is not None


def test_delete_needs_an_explicit_cascade(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    assert "cascade" in _error(api.delete("/api/v1/applications/a", headers=AUTH), 400)
    assert queued_tasks(redis_client, "apply") == []
    assert api.delete("/api/v1/applications/a", params={"cascade": "true"}, headers=AUTH).status_code == 202
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=True)]


def test_unknown_query_parameters_on_writes_are_refused(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    assert "dryrun" in _error(api.post("/api/v1/applications/a/sync", params={"dryrun": "true"}, headers=AUTH), 400)
    assert "hrad" in _error(api.post("/api/v1/applications/a/refresh", params={"hrad": "true"}, headers=AUTH), 400)
    assert redis_client.get("wavecd:sync-request:a") is None
    assert queued_tasks(redis_client, "git") == []


def test_every_write_route_refuses_unknown_query_parameters(api: httpx.Client, redis_client: redis.Redis):
    # The check sits in the write permission itself, so routers mounted with it (projects) get it too.
    message = _error(api.request("DELETE", "/api/v1/projects/team?x=1/destinations", headers=AUTH), 400)
    assert "'x'" in message and "/api/v1/projects/team" in message
    message = _error(api.post("/api/v1/projects", params={"upsrt": "true"}, headers=AUTH,
                              json={"metadata": {"name": "team"}}), 400)
    assert "'upsrt'" in message and "upsert" in message  # names what the route does take
    assert queued_tasks(redis_client, "apply") == [] and _stash_keys(redis_client) == []


def _wavecd_on_a_terminal(args: list[str], answer: bytes | None, env: dict[str, str]) -> tuple[int, str]:
    """Run the `wavecd` command with a pseudo-terminal as its stdin/stdout; type `answer` at the prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "wavecd"), *args], stdin=slave, stdout=slave,
                            stderr=slave, env={**os.environ, **env}, close_fds=True)
    os.close(slave)
    output = b""
    typed = answer is None
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"wavecd produced nothing for 60 s: {output!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not typed and b"[y/n]" in output:
                os.write(master, answer)
                typed = True
        return proc.wait(30), output.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.fixture()
def cli_env(make_api: ApiFactory, tmp_path: Path) -> dict[str, str]:
    api = make_api()
    return {"WAVECD_SERVER": str(api.base_url), "WAVECD_AUTH_TOKEN": TOKEN,
            "WAVECD_CONFIG": str(tmp_path / "no-config.yaml"), "WAVECD_HOME": str(tmp_path / "cli-home")}


def test_cli_delete_asks_on_a_terminal_and_no_deletes_nothing(cli_env, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    code, output = _wavecd_on_a_terminal(["app", "delete", "a"], b"n\n", cli_env)
    assert "Are you sure you want to delete 'a' and all its resources? [y/n]" in output
    assert "The command to delete 'a' was cancelled." in output and code == 0, output
    assert queued_tasks(redis_client, "apply") == []
    code, output = _wavecd_on_a_terminal(["app", "delete", "a"], b"y\n", cli_env)
    assert code == 0 and "application 'a' delete requested" in output, output
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=True)]


def test_cli_delete_without_cascade_does_not_ask(cli_env, redis_client: redis.Redis):
    # As argocd: only a cascaded delete (which removes the app's resources) is confirmed.
    _seed(redis_client, application("a"))
    code, output = _wavecd_on_a_terminal(["app", "delete", "a", "--no-cascade"], None, cli_env)
    assert code == 0 and "Are you sure" not in output, output
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=False)]


def test_cli_delete_off_a_terminal_does_not_ask(cli_env, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    result = subprocess.run([str(Path(sys.executable).parent / "wavecd"), "app", "delete", "a"], input=b"",
                            capture_output=True, env={**os.environ, **cli_env}, timeout=60, check=False)
    assert result.returncode == 0 and b"Are you sure" not in result.stdout, result
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=True)]


def test_cli_delete_with_yes_does_not_ask(cli_env, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    code, output = _wavecd_on_a_terminal(["app", "delete", "a", "--yes"], None, cli_env)
    assert code == 0 and "Are you sure" not in output, output
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=True)]


# -- every place a user's YAML enters: the project API uses the same loader -----------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(b"[" * 1000, "nesting is deeper than 100 levels", id="deep"),
    pytest.param(_alias_bomb(6).replace(b"kind: Application", b"kind: AppProject"), "alias", id="alias-bomb"),
])
def test_project_bodies_get_the_same_limits(api: httpx.Client, redis_client: redis.Redis, body: bytes,
                                            expected: str):
    response = api.post("/api/v1/projects", content=body, headers={**AUTH, "Content-Type": "application/yaml"})
    assert expected in _error(response, 422)
    assert queued_tasks(redis_client, "apply") == [] and _stash_keys(redis_client) == []
