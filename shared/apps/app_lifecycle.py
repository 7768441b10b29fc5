"""Creating, updating and deleting Applications, and the cascade of Argo CD's resources finalizer.

An Application deleted with `resources-finalizer.argocd.argoproj.io` first deletes what it deployed
(foreground, or background with the `/background` suffix), and only then lets Kubernetes remove it;
without the finalizer its resources stay. The cascade runs under the app's lock like any operation.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.errors import WaveCDError
from shared.core.models import Application
from shared.core.resources import RESOURCES_FINALIZER, ResourceKey, tracking_app_of
from shared.state import keys
from shared.state.app_lock import LockToken

if TYPE_CHECKING:
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)


@dataclass
class FinalizeOutcome:
    summary: str
    done: bool
    retry_in: float = 0.0


def _our_finalizer(finalizers: list[str]) -> str | None:
    for item in finalizers:
        if item == RESOURCES_FINALIZER or item.startswith(RESOURCES_FINALIZER + "/"):
            return item
    return None


def finalize_app(svc: Services, token: LockToken) -> FinalizeOutcome:
    """Delete an app's tracked resources, then drop the finalizer. Re-entrant: call until done."""
    name = token.app
    doc = svc.store.get_app(name)
    if doc is None:
        return FinalizeOutcome("app already gone", True)
    finalizers = list((doc.get("metadata") or {}).get("finalizers") or [])
    finalizer = _our_finalizer(finalizers)
    if finalizer is None:
        return FinalizeOutcome("no resources finalizer", True)
    propagation = "Background" if finalizer.endswith("/background") else "Foreground"
    app = Application.parse(doc)
    cluster = svc.clusters.for_destination(app.spec.destination)
    inventory = (svc.store.status(name).get("inventory") or [])
    remaining = []
    for entry in inventory:
        key = ResourceKey.from_dict(entry)
        live = cluster.get(key, api_version=entry["apiVersion"], fresh=True)
        if live is None or tracking_app_of(live) not in (name, None):
            continue
        remaining.append(str(key))
        if not (live.get("metadata") or {}).get("deletionTimestamp"):
            cluster.delete(entry["apiVersion"], key, propagation=propagation)
    if remaining:
        return FinalizeOutcome(f"waiting for {len(remaining)} resources to be deleted: "
                               + ", ".join(remaining[:5]), False, 1.0)
    settings = svc.settings
    control = svc.clusters.default()
    control.patch_application(settings.app_api_group, settings.app_api_version, settings.app_namespace, name,
                              {"metadata": {"finalizers": [f for f in finalizers if f != finalizer]}})
    svc.store.remove_app(name)
    return FinalizeOutcome(f"deleted {len(inventory)} resources and removed the finalizer", True)


def stash_manifest(svc: Services, obj: dict[str, Any]) -> str:
    """Keep an Application body in Redis for a worker, so task arguments carry only its key."""
    key = keys.app_stash(secrets.token_hex(8))
    svc.redis.set(key, json.dumps(obj), ex=600)
    return key


def create_app(svc: Services, stash_key: str) -> str:
    raw = svc.redis.getdel(stash_key)
    if raw is None:
        raise WaveCDError("the Application to create expired before a worker took it")
    obj = json.loads(raw)
    app = Application.parse(obj)
    settings = svc.settings
    obj.setdefault("apiVersion", settings.app_api)
    obj.setdefault("kind", "Application")
    obj["metadata"]["namespace"] = settings.app_namespace
    svc.clusters.default().create_application(settings.app_api_group, settings.app_api_version,
                                              settings.app_namespace, obj)
    svc.store.put_app(app.name, obj)
    return app.name


def merge_patch_between(old: Any, new: Any) -> Any:  # noqa: ANN401 - JSON values
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: removed keys become null."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch_between(old[key], value)
    return patch


def update_app(svc: Services, stash_key: str) -> str:
    """Replace an Application's spec with the stashed one (`wavecd app set/unset/patch`, `create --upsert`)."""
    raw = svc.redis.getdel(stash_key)
    if raw is None:
        raise WaveCDError("the Application to update expired before a worker took it")
    obj = json.loads(raw)
    app = Application.parse(obj)
    old = svc.store.get_app(app.name)
    if old is None:
        raise WaveCDError(f"application '{app.name}' no longer exists")
    settings = svc.settings
    patch = {"spec": merge_patch_between(old.get("spec") or {}, obj["spec"])}
    svc.clusters.default().patch_application(settings.app_api_group, settings.app_api_version,
                                             settings.app_namespace, app.name, patch)
    svc.store.put_app(app.name, {**old, "spec": obj["spec"]})
    return app.name


def stash_resource_delete(svc: Services, app: str, entry: dict[str, Any], orphan: bool) -> str:
    """Keep a delete-resource request (`wavecd app delete-resource`) in Redis for a worker."""
    return stash_manifest(svc, {"app": app, "orphan": orphan,
                                **{k: str(entry.get(k) or "") for k in ("group", "version", "kind", "namespace",
                                                                         "name")}})


def delete_resource(svc: Services, stash_key: str) -> tuple[str, str]:
    """Delete one live object of an app (Argo CD's DeleteResource), never one another app tracks.

    Returns the app's name and what was done."""
    raw = svc.redis.getdel(stash_key)
    if raw is None:
        raise WaveCDError("the resource to delete expired before a worker took it")
    req = json.loads(raw)
    doc = svc.store.get_app(req["app"])
    if doc is None:
        raise WaveCDError(f"application '{req['app']}' no longer exists")
    app = Application.parse(doc)
    key = ResourceKey(req["group"], req["kind"], req["namespace"], req["name"])
    api_version = f"{req['group']}/{req['version']}" if req["group"] else req["version"]
    cluster = svc.clusters.for_destination(app.spec.destination)
    live = cluster.get(key, api_version=api_version, fresh=True)
    if live is None:
        return app.name, f"{key} already gone"
    if tracking_app_of(live) not in (app.name, None):
        raise WaveCDError(f"{key} is tracked by application '{tracking_app_of(live)}', not '{app.name}'")
    cluster.delete(api_version, key, propagation="Orphan" if req["orphan"] else "Foreground")
    return app.name, f"deleted {key}"


def delete_app(svc: Services, name: str, cascade: bool) -> str:
    settings = svc.settings
    control = svc.clusters.default()
    if cascade:
        doc = svc.store.get_app(name) or {}
        finalizers = list((doc.get("metadata") or {}).get("finalizers") or [])
        if _our_finalizer(finalizers) is None:
            control.patch_application(settings.app_api_group, settings.app_api_version,
                                      settings.app_namespace, name,
                                      {"metadata": {"finalizers": [*finalizers, RESOURCES_FINALIZER]}})
    control.delete_application(settings.app_api_group, settings.app_api_version, settings.app_namespace, name)
    return name
