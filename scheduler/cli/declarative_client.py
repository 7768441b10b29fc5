"""The API calls behind `wavecd proj|cluster|repo`: projects, clusters and repositories.

An extension of the app client (same connection lookup, same one-line ClientError), so the three verb
modules share it without touching `wavecd app`'s client.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from scheduler.cli.client import ApiClient, ClientError

POLL_SECONDS = 0.3


def _q(name: str) -> str:
    return quote(name, safe="")


class DeclarativeClient(ApiClient):
    def projects(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/projects")["items"])

    def project(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/projects/{_q(name)}"))

    def windows(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/v1/projects/{_q(name)}/windows")["items"])

    def create_project(self, manifest: dict[str, Any], upsert: bool = False) -> dict[str, Any]:
        return dict(self._call("POST", "/api/v1/projects", json=manifest,
                               params={"upsert": "true"} if upsert else None))

    def delete_project(self, name: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/api/v1/projects/{_q(name)}"))

    def add_destination(self, name: str, destination: dict[str, str]) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/projects/{_q(name)}/destinations", json=destination))

    def add_source(self, name: str, url: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/projects/{_q(name)}/sources", json={"repoURL": url}))

    def wait_change(self, change: str, timeout: float) -> str:
        """Wait until a worker applied a project change; its message, or ClientError when it failed."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = self._call("GET", f"/api/v1/project-changes/{_q(change)}")
            if outcome["state"] == "succeeded":
                return str(outcome["message"])
            if outcome["state"] == "failed":
                raise ClientError(409, str(outcome["message"]))
            if timeout and time.monotonic() > deadline:
                raise ClientError(0, f"no worker applied the change within {timeout:.0f}s (is a worker running?)")
            time.sleep(POLL_SECONDS)  # a CLI polling the API, not a task

    def clusters(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/clusters")["items"])

    def repositories(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/repositories")["items"])
