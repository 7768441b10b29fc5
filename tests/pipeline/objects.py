"""Manifests the pipeline tests deploy: small, valid on a real cluster, and quick to become healthy."""

from __future__ import annotations

from typing import Any


def _meta(name: str, wave: int | None, annotations: dict[str, str] | None) -> dict[str, Any]:
    ann = dict(annotations or {})
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    meta: dict[str, Any] = {"name": name}
    if ann:
        meta["annotations"] = ann
    return meta


def cm(name: str, wave: int | None = None, annotations: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, wave, annotations),
            "data": data or {"k": "v"}}


def secret(name: str, wave: int | None = None, **values: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, wave, None), "type": "Opaque",
            "stringData": values}


def deployment(name: str, wave: int | None = None, image: str = "registry.k8s.io/pause:3.9",
               annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, wave, annotations),
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def service(name: str, wave: int | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, wave, None),
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


def job_hook(name: str, hook: str, *, succeed: bool = True, delete_policy: str | None = None,
             generate_name: bool = False) -> dict[str, Any]:
    """A hook Job; `succeed=False` runs `false`, which fails on any cluster (backoffLimit 0)."""
    annotations = {"argocd.argoproj.io/hook": hook}
    if delete_policy:
        annotations["argocd.argoproj.io/hook-delete-policy"] = delete_policy
    meta: dict[str, Any] = {"annotations": annotations}
    if generate_name:
        meta["generateName"] = f"{name}-"
    else:
        meta["name"] = name
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "hook", "image": "busybox:1.36",
                                "command": ["true"] if succeed else ["false"]}]}}}}
