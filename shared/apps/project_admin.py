"""Changes to AppProjects, as `argocd proj create|delete|add-destination|add-source` make them.

The API checks a change and stashes it in Redis; a worker applies it to the AppProject in the control
cluster (a read, then a write conditional on the resourceVersion read, so concurrent edits are never
lost) and refreshes the catalog. Task arguments carry only the stash key.
"""

from __future__ import annotations

import copy
import json
import secrets
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from shared.core.errors import WaveCDError
from shared.pipeline.project_declarative import refresh_declarative
from shared.project.model import API_VERSION, DEFAULT_PROJECT, KIND, AppProject, ProjectError
from shared.state import keys

if TYPE_CHECKING:
    from shared.pipeline.services import Services

STASH_TTL = 600


class ProjectAction(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    ADD_DESTINATION = "add-destination"
    ADD_SOURCE = "add-source"


class ProjectChange(BaseModel):
    action: ProjectAction
    name: str
    project: dict[str, Any] | None = None          # create: the AppProject object
    destination: dict[str, str] = Field(default_factory=dict)  # add-destination: server|name, namespace
    source: str = ""                                # add-source: a repository URL (glob)
    upsert: bool = False                            # create: replace an existing project


def stash_change(svc: Services, change: ProjectChange) -> str:
    key = keys.project_stash(secrets.token_hex(8))
    svc.redis.set(key, change.model_dump_json(), ex=STASH_TTL)
    return key


def read_change(svc: Services, key: str) -> ProjectChange:
    """The stashed change (kept until its result is recorded, so a redelivered task finds it)."""
    raw = svc.redis.get(key)
    if raw is None:
        raise WaveCDError("the project change expired before a worker took it")
    return ProjectChange.model_validate_json(raw)


def add_destination(spec: dict[str, Any], destination: dict[str, str], name: str) -> dict[str, Any]:
    """The spec with one more destination; refused when that server/name and namespace is listed."""
    updated = copy.deepcopy(spec)
    listed = updated.setdefault("destinations", []) or []
    cluster = destination.get("server") or destination.get("name") or ""
    for item in listed:
        if (item.get("server") or item.get("name") or "") == cluster and \
                (item.get("namespace") or "") == destination.get("namespace", ""):
            raise ProjectError(f"destination '{cluster}/{destination.get('namespace', '')}' already added "
                               f"to project '{name}'")
    listed.append({k: v for k, v in destination.items() if v})
    updated["destinations"] = listed
    return updated


def add_source(spec: dict[str, Any], source: str, name: str) -> dict[str, Any]:
    updated = copy.deepcopy(spec)
    repos = updated.setdefault("sourceRepos", []) or []
    if source in repos:
        raise ProjectError(f"source repository '{source}' already added to project '{name}'")
    repos.append(source)
    updated["sourceRepos"] = repos
    return updated


def apply_change(svc: Services, change: ProjectChange) -> str:
    """Carry out one change against the control cluster; returns a one-line summary."""
    settings = svc.settings
    cluster = svc.clusters.default()
    info = cluster.resource_info(f"{settings.app_api_group}/{settings.app_api_version}", KIND)
    namespace = settings.app_namespace
    what = f"AppProject {namespace}/{change.name}"
    live = cluster.transport.request("GET", info.path(namespace, change.name), verb="get", what=what, kind=KIND,
                                     not_found_ok=True)
    if change.action == ProjectAction.CREATE:
        body = copy.deepcopy(change.project or {})
        body.update(apiVersion=API_VERSION, kind=KIND)
        body["metadata"] = {**(body.get("metadata") or {}), "name": change.name, "namespace": namespace}
        AppProject.parse(body)
        if live is None:
            cluster.transport.request("POST", info.path(namespace), verb="create", what=what, kind=KIND, body=body)
        elif change.upsert:
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            cluster.transport.request("PUT", info.path(namespace, change.name), verb="update", what=what,
                                      kind=KIND, body=body)
        else:
            raise ProjectError(f"project '{change.name}' already exists")
        summary = f"project {change.name} created"
    elif change.action == ProjectAction.DELETE:
        if change.name == DEFAULT_PROJECT:
            raise ProjectError("the default project cannot be deleted")
        cluster.transport.request("DELETE", info.path(namespace, change.name), verb="delete", what=what,
                                  kind=KIND, not_found_ok=True)
        summary = f"project {change.name} deleted"
    else:
        if live is None:
            raise ProjectError(f"project '{change.name}' does not exist")
        spec = live.get("spec") or {}
        if change.action == ProjectAction.ADD_DESTINATION:
            spec = add_destination(spec, change.destination, change.name)
        else:
            spec = add_source(spec, change.source, change.name)
        body = {**live, "spec": spec}
        AppProject.parse(body)
        cluster.transport.request("PUT", info.path(namespace, change.name), verb="update", what=what, kind=KIND,
                                  body=body)
        summary = f"project {change.name}: {change.action.value} done"
    refresh_declarative(svc, force=True)
    return summary


def record_result(svc: Services, key: str, ok: bool, message: str) -> None:
    """The outcome of a stashed change, for a client that waits on it (`wavecd proj ...`)."""
    pipe = svc.redis.pipeline(transaction=True)
    pipe.set(keys.stash_result(key), json.dumps({"ok": ok, "message": message}), ex=STASH_TTL)
    pipe.delete(key)
    pipe.execute()


def run_change(svc: Services, key: str) -> str:
    """What the worker task does: apply the stashed change and record its outcome either way."""
    try:
        summary = apply_change(svc, read_change(svc, key))
    except WaveCDError as exc:
        record_result(svc, key, False, str(exc))
        return f"refused: {exc}"
    record_result(svc, key, True, summary)
    return summary
