"""The `/scale` subresource: a workload's replicas seen and set through an autoscaling/v1 Scale.

`kubectl scale`, HorizontalPodAutoscalers and Argo CD's resource actions change replicas through this
view rather than the whole object. Deployments, ReplicaSets, StatefulSets and ReplicationControllers
have it, and so does any CRD that declares `subresources.scale` with its own JSON paths.
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import ApiError, invalid
from sandbox.resources import ResourceType, ScalePaths

SCALE_API_VERSION = "autoscaling/v1"


def _steps(path: str) -> list[str]:
    return [step for step in path.strip().lstrip(".").split(".") if step]


def read_path(obj: Any, path: str) -> Any:
    for step in _steps(path):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def write_path(obj: dict[str, Any], path: str, value: Any) -> None:
    steps = _steps(path)
    for step in steps[:-1]:
        child = obj.get(step)
        if not isinstance(child, dict):
            child = obj[step] = {}
        obj = child
    obj[steps[-1]] = value


def _requirement(expr: dict[str, Any]) -> str:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
    if op == "In":
        return f"{key} in ({','.join(values)})"
    if op == "NotIn":
        return f"{key} notin ({','.join(values)})"
    if op == "Exists":
        return str(key)
    if op == "DoesNotExist":
        return f"!{key}"
    return ""


def selector_string(selector: Any) -> str:
    """A LabelSelector (or a ReplicationController's map) in the text form Kubernetes prints."""
    if not isinstance(selector, dict):
        return ""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        requirements = [(str(k), f"{k}={v}") for k, v in selector.items()]  # a plain label map
    else:
        requirements = [(str(k), f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
        requirements += [(str(e.get("key", "")), _requirement(e)) for e in selector.get("matchExpressions") or []
                         if isinstance(e, dict)]
    return ",".join(text for _, text in sorted(requirements, key=lambda r: r[0]))


def paths(rt: ResourceType) -> ScalePaths:
    if rt.scale is None:
        raise ApiError(404, "the server could not find the requested resource")
    return rt.scale


def to_scale(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale a GET of `<object>/scale` returns."""
    where = paths(rt)
    meta = obj.get("metadata") or {}
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                  if k in meta}
    status: dict[str, Any] = {"replicas": read_path(obj, where.status_replicas) or 0}
    raw_selector = read_path(obj, where.label_selector) if where.label_selector else None
    selector = raw_selector if isinstance(raw_selector, str) else selector_string(raw_selector)
    if selector:
        status["selector"] = selector
    replicas = read_path(obj, where.spec_replicas) or 0
    return {"kind": "Scale", "apiVersion": SCALE_API_VERSION, "metadata": scale_meta,
            "spec": {"replicas": replicas} if replicas else {}, "status": status}  # spec omits a zero


def desired_replicas(rt: ResourceType, name: str, scale: Any) -> int:
    """The replicas a Scale body asks for; 422 as Kubernetes answers an invalid one."""
    if not isinstance(scale, dict):
        raise ApiError(400, "the body of the request must be a Scale object")
    kind, api_version = scale.get("kind"), scale.get("apiVersion")
    if kind and kind != "Scale" or api_version and api_version != SCALE_API_VERSION:
        raise ApiError(400, f"the body of the request was not an {SCALE_API_VERSION} Scale")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise ApiError(400, "spec.replicas must be an integer")
    if replicas < 0:
        raise invalid("Scale", "autoscaling", name, [("spec.replicas", "FieldValueInvalid",
                                                       f"Invalid value: {replicas}: must be greater than or equal "
                                                       "to 0")])
    paths(rt)
    return replicas
