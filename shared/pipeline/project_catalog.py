"""The declarative setup as the API shows it: projects, clusters and repositories, mirrored in Redis.

Workers read AppProjects and Secrets from the cluster (`declarative`) and write here what `wavecd proj|
cluster|repo list` may show; the API server reads only this. Projects are stored as written (a project
spec holds no secret); clusters and repositories only as summaries: names, servers, URLs and which kind
of credential exists, never a value.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from shared.state import keys

if TYPE_CHECKING:
    import redis

    from shared.cluster.client import ClusterEntry
    from shared.source.git_credentials import RepoCredential

STATUS_STALE_AFTER = 60.0


class ConnectionStatus(BaseModel):
    """Argo CD's cluster connection state: Successful, Failed, or Unknown when not probed lately."""

    status: str = "Unknown"
    version: str = ""
    message: str = ""
    at: float = 0.0


class ClusterSummary(BaseModel):
    name: str
    server: str
    namespaces: list[str] = Field(default_factory=list)
    project: str = ""
    auth: list[str] = Field(default_factory=list)  # e.g. ["bearerToken"], ["tlsClientConfig"], never values
    insecure: bool = False
    source: str = "Secret"  # Secret | in-cluster | kubeconfig
    connection: ConnectionStatus = Field(default_factory=ConnectionStatus)


class RepoSummary(BaseModel):
    url: str
    name: str = ""
    project: str = ""
    kind: str = "repository"  # repository | repo-creds
    type: str = "git"
    username: bool = False
    password: bool = False
    ssh_private_key: bool = Field(default=False, alias="sshPrivateKey")
    tls_client_cert: bool = Field(default=False, alias="tlsClientCert")
    insecure: bool = False
    source: str = "Secret"  # Secret | file (WAVECD_REPO_CREDENTIALS_FILE)

    model_config = {"populate_by_name": True}

    @property
    def has_credentials(self) -> bool:
        return self.username or self.password or self.ssh_private_key or self.tls_client_cert


def cluster_summary(entry: ClusterEntry, project: str = "") -> ClusterSummary:
    config = dict(entry.config or {})
    tls = config.get("tlsClientConfig") or {}
    auth = [k for k in ("bearerToken", "execProviderConfig") if config.get(k)]
    if config.get("username"):
        auth.append("basic")
    if tls.get("certData") or tls.get("keyData"):
        auth.append("tlsClientConfig")
    return ClusterSummary(name=entry.name, server=entry.server, namespaces=list(entry.namespaces),
                          project=project, auth=auth, insecure=bool(tls.get("insecure")))


def repo_summary(credential: RepoCredential, source: str = "Secret") -> RepoSummary:
    return RepoSummary.model_validate({**credential.summary(), "source": source})


def _replace(pipe: Any, key: str, values: dict[str, str]) -> None:  # noqa: ANN401 - a redis pipeline
    pipe.delete(key)
    if values:
        pipe.hset(key, mapping=values)


def publish(client: redis.Redis, *, projects: list[dict[str, Any]] | None = None,
            clusters: list[ClusterSummary] | None = None, repos: list[RepoSummary] | None = None) -> None:
    """Replace the given parts of the catalog at once (MULTI): a reader never sees half of one."""
    pipe = client.pipeline(transaction=True)
    if projects is not None:
        _replace(pipe, keys.CATALOG_PROJECTS, {str(p["metadata"]["name"]): json.dumps(_project_view(p), sort_keys=True)
                                      for p in projects if (p.get("metadata") or {}).get("name")})
    if clusters is not None:
        _replace(pipe, keys.CATALOG_CLUSTERS, {c.name: c.model_dump_json() for c in clusters})
    if repos is not None:
        _replace(pipe, keys.CATALOG_REPOS, {r.url: r.model_dump_json(by_alias=True) for r in repos})
    pipe.set(keys.CATALOG_REFRESHED, str(time.time()))
    pipe.execute()


def _project_view(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "labels", "annotations", "resourceVersion",
                                 "creationTimestamp") if k in meta}
    return {"apiVersion": obj.get("apiVersion", "argoproj.io/v1alpha1"), "kind": "AppProject",
            "metadata": kept, "spec": obj.get("spec") or {}}


def projects(client: redis.Redis) -> dict[str, dict[str, Any]]:
    return {k.decode(): json.loads(v) for k, v in client.hgetall(keys.CATALOG_PROJECTS).items()}


def clusters(client: redis.Redis) -> list[ClusterSummary]:
    """The clusters with their last connection status (Unknown when older than STATUS_STALE_AFTER)."""
    found = [ClusterSummary.model_validate_json(v) for v in client.hgetall(keys.CATALOG_CLUSTERS).values()]
    statuses = {k.decode(): ConnectionStatus.model_validate_json(v)
                for k, v in client.hgetall(keys.CATALOG_CLUSTER_STATUS).items()}
    now = time.time()
    for cluster in found:
        status = statuses.get(cluster.name)
        if status is not None and now - status.at <= STATUS_STALE_AFTER:
            cluster.connection = status
    return found


def connection(client: redis.Redis, name: str) -> ConnectionStatus | None:
    """The last probe of one cluster, or None when it was never probed."""
    raw = client.hget(keys.CATALOG_CLUSTER_STATUS, name)
    return ConnectionStatus.model_validate_json(raw) if raw else None


def record_connection(client: redis.Redis, name: str, status: ConnectionStatus) -> None:
    client.hset(keys.CATALOG_CLUSTER_STATUS, name, status.model_dump_json())


def repos(client: redis.Redis) -> list[RepoSummary]:
    return [RepoSummary.model_validate_json(v) for v in client.hgetall(keys.CATALOG_REPOS).values()]


def refreshed_at(client: redis.Redis) -> float | None:
    raw = client.get(keys.CATALOG_REFRESHED)
    return float(raw) if raw else None
