"""The CLI's HTTP client for the WaveCD API, and where it finds the server and the token.

Lookup order, first found wins (as `argocd` does with flags, env and its config file):
1. the `--server` / `--auth-token` flags;
2. `WAVECD_SERVER` / `WAVECD_AUTH_TOKEN`;
3. `~/.wavecd/config.yaml` (keys `server` and `auth-token`; under `WAVECD_HOME` when set, which is where
   `wavecd up` writes it; `WAVECD_CONFIG` names another file, which must exist);
4. for the token only: the file a local API server writes when none is configured
   (`<WAVECD_HOME or ~/.wavecd>/api-token`), so `wavecd up` needs no setup.
The server defaults to http://127.0.0.1:8080. Every failure becomes one `ClientError` with a message
fit for a single line on stderr; HTTP and connection details never surface as tracebacks. A server that
wants a token when none was found is answered with where a token can come from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

DEFAULT_SERVER = "http://127.0.0.1:8080"
TOKEN_FILE_NAME = "api-token"  # the name scheduler.api writes; kept here so the CLI imports no server code


class ClientError(Exception):
    """A failed API call: `status` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _home() -> Path:
    return Path(os.environ.get("WAVECD_HOME") or Path.home() / ".wavecd")


def _config_file() -> Path:
    return Path(os.environ.get("WAVECD_CONFIG") or _home() / "config.yaml")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        if os.environ.get("WAVECD_CONFIG"):
            raise ClientError(0, f"WAVECD_CONFIG names {path}, which does not exist") from None
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ClientError(0, f"cannot read the config file {path}: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClientError(0, f"the config file {path} must be a mapping with 'server' and 'auth-token'")
    return data


@dataclass(frozen=True)
class Connection:
    server: str
    token: str | None

    @classmethod
    def resolve(cls, server: str | None = None, token: str | None = None) -> Connection:
        server = server or os.environ.get("WAVECD_SERVER")
        token = token or os.environ.get("WAVECD_AUTH_TOKEN")
        # The file is read only for what flags and environment left open.
        config = _read_config(_config_file()) if not (server and token) else {}
        server = server or config.get("server") or DEFAULT_SERVER
        token = token or config.get("auth-token") or config.get("authToken")
        if not token:
            try:
                token = (_home() / TOKEN_FILE_NAME).read_text().strip() or None
            except OSError:
                token = None
        server = str(server).rstrip("/")
        if "://" not in server:
            server = f"http://{server}"
        return cls(server, str(token) if token else None)


class ApiClient:
    """One method per API call; each returns the decoded JSON body or raises ClientError."""

    def __init__(self, connection: Connection, timeout: float = 30.0) -> None:
        self.connection = connection
        headers = {"Accept": "application/json"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self._http = httpx.Client(base_url=connection.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json: Any = None) -> Any:  # noqa: ANN401 - JSON
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise ClientError(0, f"cannot reach the WaveCD API at {self.connection.server}: "
                                 f"{exc or type(exc).__name__}") from None
        if response.status_code == 401 and not self.connection.token:
            raise ClientError(401, f"the WaveCD API at {self.connection.server} needs a token and none is "
                                   f"configured: pass --auth-token, set WAVECD_AUTH_TOKEN, or put `auth-token` "
                                   f"in {_config_file()} (`wavecd up` writes it there)")
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text.strip() or response.reason_phrase
            raise ClientError(response.status_code, str(message))
        try:
            return response.json()
        except ValueError:
            raise ClientError(response.status_code, f"the server answered with non-JSON: "
                                                    f"{response.text[:200]!r}") from None

    # -- reads ---------------------------------------------------------------------------------------
    def list_apps(self, projects: list[str] | None = None, selector: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if projects:
            params["project"] = projects
        if selector:
            params["selector"] = selector
        return list(self._call("GET", "/api/v1/applications", params=params)["items"])

    def get_app(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/applications/{quote(name, safe='')}"))

    def diff(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/applications/{quote(name, safe='')}/diff"))

    def history(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/v1/applications/{quote(name, safe='')}/history")["items"])

    # -- actions -------------------------------------------------------------------------------------
    def sync(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/applications/{quote(name, safe='')}/sync", json=request))

    def rollback(self, name: str, history_id: int, prune: bool = False) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/applications/{quote(name, safe='')}/rollback",
                               json={"id": history_id, "prune": prune}))

    def terminate(self, name: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/api/v1/applications/{quote(name, safe='')}/operation"))

    def refresh(self, name: str, hard: bool = False) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/applications/{quote(name, safe='')}/refresh",
                               params={"hard": "true"} if hard else None))

    def update_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/api/v1/applications/{quote(name, safe='')}/spec", json=spec))

    def delete_resource(self, name: str, *, group: str, kind: str, namespace: str, resource_name: str,
                        orphan: bool) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/api/v1/applications/{quote(name, safe='')}/resource",
                               params={"group": group, "kind": kind, "namespace": namespace,
                                       "resourceName": resource_name, "orphan": "true" if orphan else "false"}))

    def request_manifests(self, name: str, source: str, revision: str | None) -> str:
        params = {"source": source, **({"revision": revision} if revision else {})}
        answer = self._call("POST", f"/api/v1/applications/{quote(name, safe='')}/manifests", params=params)
        return str(answer["request"]["id"])

    def manifests(self, name: str, request_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/applications/{quote(name, safe='')}/manifests/"
                                      f"{quote(request_id, safe='')}"))

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/api/v1/applications", json=manifest))

    def delete(self, name: str, cascade: bool = True) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/api/v1/applications/{quote(name, safe='')}",
                               params={"cascade": "true" if cascade else "false"}))
