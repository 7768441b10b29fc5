"""An app's manifests for `wavecd app manifests`: the target ones from git, or the live ones from the cluster.

The API server reads neither git nor a cluster, so a request is a short-lived Redis record a worker fills:
the API records it and hands its id to a worker, the worker renders (git) or reads (live) the objects and
writes them back, and the CLI polls the API until they are there. Secret values are masked as in diffs,
and the server-owned `managedFields` are left out, as `argocd app manifests` shows them.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from shared.core.errors import WaveCDError
from shared.core.models import Application
from shared.core.resources import ResourceKey
from shared.diff.masking import mask_object
from shared.pipeline.desired_state import load_desired, resolve_commit
from shared.pipeline.project_gate import admit_source
from shared.state import keys

if TYPE_CHECKING:
    from shared.pipeline.services import Services

TTL_SECONDS = 300
Source = Literal["git", "live"]


class ManifestsRequest(BaseModel):
    """What was asked, and (once a worker answered) the masked objects or the error."""

    app: str
    source: Source = "git"
    revision: str | None = None
    state: Literal["pending", "done", "failed"] = "pending"
    manifests: list[dict[str, Any]] = []
    error: str = ""


def request_manifests(svc: Services, app: str, source: Source, revision: str | None) -> str:
    request_id = secrets.token_hex(8)
    record = ManifestsRequest(app=app, source=source, revision=revision)
    svc.redis.set(keys.manifests(request_id), record.model_dump_json(), ex=TTL_SECONDS)
    return request_id


def read_manifests(svc: Services, request_id: str) -> ManifestsRequest | None:
    raw = svc.redis.get(keys.manifests(request_id))
    return ManifestsRequest.model_validate_json(raw) if raw else None


def _shown(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return mask_object({**obj, "metadata": meta})


def produce_manifests(svc: Services, request_id: str) -> str:
    """Fill the request (a worker's part); a failure is recorded for the caller, not raised."""
    record = read_manifests(svc, request_id)
    if record is None:
        return "request expired"
    try:
        doc = svc.store.get_app(record.app)
        if doc is None:
            raise WaveCDError(f"application '{record.app}' not found")
        app = Application.parse(doc)
        cluster = svc.clusters.for_destination(app.spec.destination)
        if record.source == "git":
            admit_source(svc, app)  # the project permits the app and its repository's credentials serve it
            commit = resolve_commit(svc, app, record.revision)
            objects = load_desired(svc, app, commit, cluster).objects
        else:
            objects = []
            for entry in svc.store.status(app.name).get("inventory") or []:
                live = cluster.get(ResourceKey.from_dict(entry), api_version=entry["apiVersion"], fresh=True)
                if live is not None:
                    objects.append(live)
        record.manifests = [_shown(o) for o in objects]
        record.state = "done"
    except WaveCDError as exc:
        record.state, record.error = "failed", exc.message
    svc.redis.set(keys.manifests(request_id), json.dumps(record.model_dump(mode="json")), ex=TTL_SECONDS)
    return f"{record.source} manifests of {record.app}: {record.state}"
