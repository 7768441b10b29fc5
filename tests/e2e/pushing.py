"""A user's checkout of the served repository: commits made in a work tree and pushed with `git push`.

The git command line is what users push with, and its smart HTTP client sends a small push with a
Content-Length, which the test server (tests/fixtures/git.py, `git http-backend` behind basic auth)
reads. Credentials go in an `Authorization` header for each command, never into the remote URL or a file.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.git import GitHttpServer, GitRepoHandle


class Checkout:
    """`git clone` of a repository the HTTP server serves, with pushes enabled on the server side."""

    def __init__(self, server: GitHttpServer, handle: GitRepoHandle, url: str, path: Path) -> None:
        if shutil.which("git") is None:
            pytest.skip("the git command line is not installed (needed to push over smart HTTP)")
        handle.repo.config["http.receivepack"] = True  # the fixture serves read-only until told otherwise
        self.handle = handle
        self.path = path
        token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        self._auth = f"http.extraHeader=Authorization: Basic {token}"
        self._env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(path.parent), "GIT_TERMINAL_PROMPT": "0",
                     "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
        self._git("clone", "--branch", "main", url, str(path), cwd=path.parent)

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(["git", "-c", self._auth, "-c", "user.name=E2E Tester", "-c",
                               "user.email=e2e@wavecd.invalid", *args], cwd=cwd or self.path, env=self._env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"git {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"
        return done.stdout

    def push(self, files: dict[str, str | None], message: str) -> str:
        """Write (or, for None, delete) `files`, commit them all and push; returns the pushed commit's sha."""
        for relative, content in files.items():
            target = self.path / relative
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        self._git("add", "--all")
        self._git("commit", "--quiet", "-m", message)
        self._git("push", "--quiet", "origin", "HEAD:main")
        sha = self._git("rev-parse", "HEAD").strip()
        assert self.handle.head() == sha, "the push did not move the served branch"
        return sha
