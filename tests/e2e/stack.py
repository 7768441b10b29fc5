"""`wavecd up` as a subprocess, and the ways a user reaches it: the CLI, the REST API and git webhooks.

The process is started as tests/run/test_up.py starts it (its `_env` and `_command`), pointed either at
the cluster named by WAVECD_TEST_KUBECONFIG or, without one, at the emulator `up --sandbox` starts.
Every wait is a bounded poll on a condition that fails with what it saw last.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config

from tests.fixtures.redis import free_port
from tests.run.test_up import STARTED, _command, _env, _group_members

API_PREFIX = "/api/v1"
WEBHOOK_PATH = "/api/webhook"  # scheduler/webhook.py
READY_LINE = "Press Ctrl-C to stop everything."
SANDBOX_KUBECONFIG = re.compile(r"Cluster: the WaveCD sandbox .*kubeconfig (\S+)")


def wait_for(what: str, check: Callable[[], Any], timeout: float, *, describe: Callable[[], Any] | None = None,
              interval: float = 0.3) -> Any:  # noqa: ANN401 - whatever `check` returns when truthy
    """Poll `check` until it returns something truthy; fail after `timeout` with the last state seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = describe() if describe is not None else result
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n"
                                 f"{json.dumps(detail, indent=1, default=str)[:6000]}")
        time.sleep(interval)


def _interrupt(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT, then up to 90 s for `up` to stop what it started; SIGKILL only if it does not."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    return int(proc.returncode)


@dataclass
class CliResult:
    """One `wavecd` command line's exit code and output."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"wavecd {' '.join(self.args)} -> exit {self.code}\n{self.stdout}\n{self.stderr}"


@dataclass
class Stack:
    """A running `wavecd up`: its process, home, API server, Flower and the cluster it manages."""

    proc: subprocess.Popen[bytes]
    tmp_path: Path
    home: Path
    output: Path
    api_url: str
    flower_url: str
    token: str
    kubeconfig: str
    context: str | None
    sandbox: bool
    shown: list[tuple[str, str]] = field(default_factory=list)  # (where, text) every answer we were given

    # -- starting and stopping -------------------------------------------------------------------------

    @classmethod
    def start(cls, tmp_path: Path, redis_url: str, *, real_kubeconfig: str | None, real_context: str | None,
              timeout: float = 120.0, **settings: str) -> Stack:
        home = tmp_path / "home"
        flower_port = free_port()
        extra = dict(settings, WAVECD_REDIS_URL=redis_url, FLOWER_UNAUTHENTICATED_API="true")
        flags = ["--no-demo", "--flower-port", str(flower_port)]
        if real_kubeconfig:
            extra["WAVECD_KUBECONFIG"] = real_kubeconfig
            if real_context:
                extra["WAVECD_KUBE_CONTEXT"] = real_context
        else:
            flags.append("--sandbox")
        command = _command(home, *flags)
        port = int(command[command.index("--port") + 1])
        output = tmp_path / "up.out"
        with open(output, "wb") as out:
            proc = subprocess.Popen(command, env=_env(tmp_path, **extra), cwd=tmp_path, stdout=out,
                                    stderr=subprocess.STDOUT)

        def text() -> str:
            return output.read_text(errors="replace")

        def started() -> bool:
            assert proc.poll() is None, f"wavecd up exited with {proc.returncode}:\n{text()}"
            return READY_LINE in text()

        try:
            wait_for("wavecd up to start everything", started, timeout, describe=text)
            config_text = (home / "config.yaml").read_text()
            token = str(yaml.safe_load(config_text)["auth-token"])
            if real_kubeconfig:
                kubeconfig, context = real_kubeconfig, real_context
            else:
                found = SANDBOX_KUBECONFIG.search(text())
                assert found, text()
                kubeconfig, context = found[1].rstrip(","), None
            stack = cls(proc, tmp_path, home, output, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{flower_port}",
                        token, kubeconfig, context, not real_kubeconfig)
            wait_for("the API server to be ready", lambda: stack._answers(stack.api_url + "/readyz"), 60,
                     describe=text)
            wait_for("Flower to answer", lambda: stack._answers(stack.flower_url + "/healthcheck"), 60,
                     describe=text)
            return stack
        except BaseException:
            # Ctrl-C, so that `up` stops the process groups it started (a SIGKILL would orphan them).
            _interrupt(proc)
            raise

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; returns its exit code once every process it started is gone."""
        return _interrupt(self.proc)

    def leftovers(self) -> list[str]:
        """Processes of any group `up` started that are still there, after a short grace for reaping."""
        pgids = {int(pgid) for _, _, pgid in STARTED.findall(self.text())}
        assert pgids, self.text()
        deadline = time.monotonic() + 10
        while (left := _group_members(pgids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    # -- the cluster ------------------------------------------------------------------------------------

    def kube_api(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=self.kubeconfig, context=self.context)

    # -- the REST API -----------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401
        response = httpx.request(method, self.api_url + path, headers={"Authorization": f"Bearer {self.token}"},
                                 timeout=30, **kwargs)
        self.shown.append((f"API {method} {path}", response.text))
        return response

    def app(self, name: str) -> dict[str, Any]:
        response = self.api("GET", f"{API_PREFIX}/applications/{name}")
        if response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_app(self, name: str, what: str, check: Callable[[dict[str, Any]], bool],
                 timeout: float = 90.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def ok() -> bool:
            seen.clear()
            seen.update(self.app(name))
            return bool(seen) and check(seen)

        wait_for(f"{name}: {what}", ok, timeout, describe=lambda: {k: seen.get(k) for k in ("spec", "status")})
        return seen

    def api_get_everything(self, names: dict[str, str]) -> list[str]:
        """GET every path the OpenAPI document lists whose parameters `names` can fill (`/api/v1/<collection>`
        -> the name to use); each answer is recorded. Returns the paths read (the others need other input)."""
        spec = self.api("GET", "/openapi.json")
        assert spec.status_code == 200, spec.text
        read: list[str] = []
        for template, operations in sorted(spec.json()["paths"].items()):
            if "get" not in operations:
                continue
            collection = "/".join(template.split("/")[:4])
            path = template.replace("{name}", names[collection]) if collection in names else template
            if "{" in path:
                continue
            response = self.api("GET", path)
            assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:500]}"
            read.append(path)
        return read

    # -- the dashboard ------------------------------------------------------------------------------------

    def dashboard(self, *paths: str) -> dict[str, str]:
        """Sign in to the web UI with the API token, as its login form does, and read `paths` (HTML)."""
        with httpx.Client(base_url=self.api_url, timeout=30) as browser:
            signed_in = browser.post("/login", data={"token": self.token, "next": "/applications"},
                                     headers={"Origin": self.api_url})
            assert signed_in.status_code == 303, signed_in.text[:500]
            pages: dict[str, str] = {}
            for path in paths:
                page = browser.get(path)
                assert page.status_code == 200, f"GET {path}: {page.status_code}"
                self.shown.append((f"UI {path}", page.text))
                pages[path] = page.text
        return pages

    # -- the CLI ----------------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 180.0) -> CliResult:
        """`wavecd <args>` in another shell: it finds the server and token in the home's config.yaml."""
        env = _env(self.tmp_path, WAVECD_CONFIG=str(self.home / "config.yaml"))
        done = subprocess.run([sys.executable, "-c", "from scheduler.cli import main; main()", *args], env=env,
                              cwd=self.tmp_path, capture_output=True, text=True, timeout=timeout)
        result = CliResult(args, done.returncode, done.stdout, done.stderr)
        self.shown.append((f"CLI wavecd {' '.join(args)}", done.stdout + done.stderr))
        return result

    # -- Flower -----------------------------------------------------------------------------------------

    def flower_tasks(self) -> dict[str, dict[str, Any]]:
        response = httpx.get(f"{self.flower_url}/api/tasks", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    # -- webhooks ---------------------------------------------------------------------------------------

    def github_push(self, secret: str, repo_url: str, before: str, after: str, *, modified: list[str],
                    removed: list[str] | None = None, branch: str = "main") -> httpx.Response:
        """A GitHub push event signed as GitHub signs it: HMAC-SHA256 of the body in X-Hub-Signature-256."""
        web_url = repo_url.removesuffix(".git")
        payload = {
            "ref": f"refs/heads/{branch}", "before": before, "after": after, "created": False, "deleted": False,
            "forced": False,
            "repository": {"name": web_url.rsplit("/", 1)[-1], "full_name": "tests/e2e", "html_url": web_url,
                           "clone_url": repo_url, "default_branch": branch},
            "pusher": {"name": "tests"},
            "commits": [{"id": after, "message": "push", "added": [], "modified": modified,
                         "removed": removed or []}],
            "head_commit": {"id": after},
        }
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                   "X-GitHub-Delivery": f"e2e-{after[:12]}", "X-Hub-Signature-256": signature,
                   "User-Agent": "GitHub-Hookshot/e2e"}
        response = httpx.post(self.api_url + WEBHOOK_PATH, content=body, headers=headers, timeout=30)
        self.shown.append(("API POST /api/webhook", response.text))
        return response
