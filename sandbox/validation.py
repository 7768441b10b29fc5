"""The checks kube-apiserver makes on the spec of workload kinds, Pods and Services.

Kubernetes refuses a Deployment without a selector, a Job whose pods would restart Always, a Service
without ports, with 422 Invalid and one cause per problem, in the order its validation code finds them.
The OpenAPI schema marks some of these fields required, but the answer a client gets (which fields,
which reasons, which messages, what a missing template turns into) comes from the API server's Go
validation, so these rules follow it, cause for cause, as a v1.36 control plane answers
(tests/testdata/sandbox/invalid/ holds its recorded answers). Runs before defaults are stored, so it
applies the few defaults the API server sets before validating (restartPolicy, targetPort).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Cause = tuple[str, str, str]  # (field, reason, message)

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                  "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                  f"validation is '{_LABEL}')")


def _go_value(value: Any) -> str:
    """How the API server prints a value in 'Invalid value: ...'."""
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def required(field: str, detail: str = "") -> Cause:
    return (field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def invalid_value(field: str, value: Any, detail: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {_go_value(value)}: {detail}")


def unsupported(field: str, value: Any, supported: tuple[str, ...]) -> Cause:
    return (field, "FieldValueNotSupported", f"Unsupported value: {_go_value(value)}: supported values: "
            + ", ".join(f'"{s}"' for s in supported))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any]) -> bool:
    """A label selector against a label set; None selects nothing, {} selects everything."""
    if selector is None:
        return False
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _nonnegative(spec: dict[str, Any], field: str, path: str) -> list[Cause]:
    value = spec.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid_value(f"{path}.{field}", value, "must be greater than or equal to 0")]
    return []


def pod_spec(spec: Any, path: str, restart: tuple[str, ...] | None = None, restart_required: bool = False,
             ) -> list[Cause]:
    """A pod spec after the API server's defaulting: containers, container names and images, restartPolicy.

    `restart`: the restartPolicy values the owning kind allows (default: all three). A Job reports a
    disallowed value as "Required value: valid values: ..." (`restart_required`), as Kubernetes does.
    """
    spec = _dict(spec)
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        container = _dict(container)
        where = f"{path}.containers[{index}]"
        name = container.get("name")
        if not name:
            causes.append(required(f"{where}.name"))
        elif not isinstance(name, str) or len(name) > 63 or not re.fullmatch(_LABEL, name):
            causes.append(invalid_value(f"{where}.name", name, _LABEL_MESSAGE))
        elif name in seen:
            causes.append((f"{where}.name", "FieldValueDuplicate", f"Duplicate value: {_go_value(name)}"))
        else:
            seen.add(name)
        if not container.get("image"):
            causes.append(required(f"{where}.image"))
    policy = spec.get("restartPolicy") or "Always"
    allowed = restart or ("Always", "OnFailure", "Never")
    if policy not in allowed:
        if restart_required:
            causes.append(required(f"{path}.restartPolicy",
                                   "valid values: " + ", ".join(f'"{v}"' for v in allowed)))
        else:
            causes.append(unsupported(f"{path}.restartPolicy", policy, allowed))
    return causes


def _replicated(kind: str, spec: dict[str, Any], selector_required: bool = True) -> list[Cause]:
    """Deployment, ReplicaSet, StatefulSet, DaemonSet: replicas, selector, template labels, pod spec."""
    causes = [] if kind == "daemonset" else _nonnegative(spec, "replicas", "spec")
    selector = spec.get("selector")
    if selector is None:
        if selector_required:
            causes.append(required("spec.selector"))
    elif isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
        # ReplicaSet's validation shares Deployment's wording
        causes.append(invalid_value("spec.selector", selector,
                                    f"empty selector is invalid for {'deployment' if kind == 'replicaset' else kind}"))
    template = _dict(spec.get("template"))
    labels = _dict(template.get("metadata")).get("labels")
    if not _selector_matches(selector if isinstance(selector, dict) else None, _dict(labels)):
        causes.append(invalid_value("spec.template.metadata.labels", labels,
                                    "`selector` does not match template `labels`"))
    causes += pod_spec(template.get("spec"), "spec.template.spec", restart=("Always",))
    return causes


def _job(spec: dict[str, Any], path: str) -> list[Cause]:
    template = _dict(spec.get("template"))
    return pod_spec(template.get("spec"), f"{path}.template.spec", restart=("OnFailure", "Never"),
                    restart_required=True)


def _cron_job(spec: dict[str, Any]) -> list[Cause]:
    causes = [] if spec.get("schedule") else [required("spec.schedule")]
    return causes + _job(_dict(_dict(spec.get("jobTemplate")).get("spec")), "spec.jobTemplate.spec")


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _service(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    kind = spec.get("type") or "ClusterIP"
    if kind not in _SERVICE_TYPES:
        causes.append(unsupported("spec.type", kind, _SERVICE_TYPES))
    ports = spec.get("ports") or []
    if kind == "ExternalName":
        if not spec.get("externalName"):
            causes.append(required("spec.externalName"))
    elif not ports and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    for index, port in enumerate(ports if isinstance(ports, list) else []):
        port = _dict(port)
        where = f"spec.ports[{index}]"
        if len(ports) > 1 and not port.get("name"):
            causes.append(required(f"{where}.name"))
        number = port.get("port") or 0
        if isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(invalid_value(f"{where}.port", number, "must be between 1 and 65535, inclusive"))
        target = port.get("targetPort", number)
        if isinstance(target, int) and not 1 <= target <= 65535:
            causes.append(invalid_value(f"{where}.targetPort", target, "must be between 1 and 65535, inclusive"))
    return causes


_RULES: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {
    ("apps", "Deployment"): lambda spec: _replicated("deployment", spec),
    ("apps", "ReplicaSet"): lambda spec: _replicated("replicaset", spec),
    ("apps", "StatefulSet"): lambda spec: _replicated("statefulset", spec),
    ("apps", "DaemonSet"): lambda spec: _replicated("daemonset", spec, selector_required=False),
    ("batch", "Job"): lambda spec: _job(spec, "spec"),
    ("batch", "CronJob"): _cron_job,
    ("", "Pod"): lambda spec: pod_spec(spec, "spec"),
    ("", "Service"): _service,
}


def spec_causes(group: str, kind: str, obj: dict[str, Any]) -> list[Cause]:
    """The 422 causes for the spec of a workload, Pod or Service (empty for other kinds)."""
    rule = _RULES.get((group, kind))
    return rule(_dict(obj.get("spec"))) if rule else []


# Fields an update may not change (the API server's update validation); each gives "field is immutable".
_IMMUTABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch", "Job"): ("selector", "template"),
    ("apps", "Deployment"): ("selector",),
    ("apps", "ReplicaSet"): ("selector",),
    ("apps", "DaemonSet"): ("selector",),
    ("apps", "StatefulSet"): ("selector",),
}


def immutable_causes(group: str, kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """The 422 causes of an update that changes an immutable field (compared once defaults are applied)."""
    old_spec, new_spec = _dict(old.get("spec")), _dict(new.get("spec"))
    return [invalid_value(f"spec.{field}", new_spec.get(field), "field is immutable")
            for field in _IMMUTABLE.get((group, kind), ()) if old_spec.get(field) != new_spec.get(field)]
