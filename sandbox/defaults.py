"""Validation and defaulting a kube-apiserver performs on every write.

Kubernetes rejects bad names and label syntax with 422 Invalid and fills in defaults (a Service's
clusterIP, a Deployment's strategy, a container's imagePullPolicy...). Live objects read back from a
real cluster carry those defaults, and diff logic must cope with them, so the emulator adds the common ones.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import re
import threading
from typing import Any

from sandbox.errors import ApiError, invalid
from sandbox.resources import ResourceType
from sandbox.validation import spec_causes

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


def _name_errors(name: str, rule: str) -> list[str]:
    if rule == "path":
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
    if rule == "label":
        if len(name) > 63:
            return ["must be no more than 63 characters"]
        if "." in name and re.fullmatch(_SUBDOMAIN, name):
            return ["must not contain dots"]
        if not re.fullmatch(_LABEL, name):
            return ["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                    f"regex used for validation is '{_LABEL}')"]
        return []
    if len(name) > 253:
        return ["must be no more than 253 characters"]
    if not re.fullmatch(_SUBDOMAIN, name):
        return ["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                f"validation is '{_SUBDOMAIN}')"]
    return []


def _label_key_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not re.fullmatch(_SUBDOMAIN, prefix)):
        errors.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not re.fullmatch(_QUALIFIED, name):
        errors.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                      "end with an alphanumeric character, and be no more than 63 characters")
    return errors


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid for the checks Kubernetes makes on every kind (names, labels, annotations)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    rule = rt.name_rule  # Service names are RFC 1123 labels (RelaxedServiceNameValidation, on in 1.36)
    if rule == "crd":
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
        if name != expected:
            causes.append(("metadata.name", "FieldValueInvalid",
                           f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    else:
        for message in _name_errors(name, rule):
            causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {message}'))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        raise ApiError(400, "metadata.labels must be a map of strings")
    for key, value in labels.items():
        for message in _label_key_errors(str(key)):
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {message}'))
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            causes.append(("metadata.labels", "FieldValueInvalid",
                           f'Invalid value: "{value}": ' + (
                               "must be no more than 63 characters" if isinstance(value, str) and len(value) > 63
                               else "a valid label must be an empty string or consist of alphanumeric characters, "
                               "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                               "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                               f"'{_LABEL_VALUE}')")))
    annotations = meta.get("annotations") or {}
    for key, value in (annotations.items() if isinstance(annotations, dict) else ()):
        for message in _label_key_errors(str(key)):
            causes.append(("metadata.annotations", "FieldValueInvalid", f'Invalid value: "{key}": {message}'))
        if not isinstance(value, str):
            raise ApiError(400, f"metadata.annotations[{key}] must be a string")
    if rt.kind == "Secret" and not rt.group:
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                raise ApiError(400, "Secret data values must be base64-encoded strings")
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise ApiError(400, f"Secret data[{key}]: illegal base64 data") from None
    if rt.kind == "CustomResourceDefinition":
        causes.extend(_crd_errors(obj))
    causes.extend(spec_causes(rt.group, rt.kind, obj))
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def _crd_errors(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    spec = obj.get("spec") or {}
    causes = []
    names = spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append((f"spec.names.{field}", "FieldValueRequired", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", "FieldValueNotSupported",
                       f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("spec.versions", "FieldValueRequired", "Required value: must have exactly one version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(("spec.versions", "FieldValueInvalid",
                       "Invalid value: must have exactly one version marked as storage version"))
    return causes


class Allocator:
    """Hands out Service cluster IPs and node ports, as the apiserver's allocators do."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ips = (str(ipaddress.IPv4Address("10.96.0.0") + i) for i in itertools.count(10))
        self._ports = itertools.cycle(range(30000, 32768))

    def cluster_ip(self) -> str:
        with self._lock:
            return next(self._ips)

    def node_port(self) -> int:
        with self._lock:
            return next(self._ports)


def _pod_spec_defaults(spec: dict[str, Any], restart: str = "Always") -> None:
    spec.setdefault("restartPolicy", restart)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        image = str(container.get("image", ""))
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = image.endswith(":latest") or not tagged
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _template(obj: dict[str, Any], restart: str = "Always") -> None:
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        if isinstance(template.get("spec"), dict):
            _pod_spec_defaults(template["spec"], restart)


def apply_defaults(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, alloc: Allocator) -> None:
    """Fill in the defaults Kubernetes sets for the common kinds (in place)."""
    kind = rt.kind if rt.group in ("", "apps", "batch") else ""
    spec = obj.get("spec")
    if kind == "Secret":
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        obj.setdefault("type", "Opaque")
    elif kind == "Namespace":
        name = obj["metadata"].get("name", "")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Service" and isinstance(spec, dict):
        _service_defaults(spec, (old or {}).get("spec") or {}, alloc)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") and isinstance(spec, dict):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if kind != "ReplicaSet":
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("maxSurge", "25%")
                strategy["rollingUpdate"].setdefault("maxUnavailable", "25%")
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        elif kind == "DaemonSet":
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", 1)
                strategy["rollingUpdate"].setdefault("maxSurge", 0)
        _template(obj)
    elif kind == "Job" and isinstance(spec, dict):
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", spec["parallelism"] if spec["parallelism"] else 1)
        uid = obj["metadata"].get("uid", "")
        name = obj["metadata"].get("name", "")
        if not spec.get("manualSelector") and uid:
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            for prefix in ("batch.kubernetes.io/", ""):
                labels.setdefault(f"{prefix}controller-uid", uid)
                labels.setdefault(f"{prefix}job-name", name)
        _template(obj)
    elif kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    elif kind == "Pod" and isinstance(spec, dict):
        _pod_spec_defaults(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "ServiceAccount" or kind == "ConfigMap":
        pass


def _service_defaults(spec: dict[str, Any], old_spec: dict[str, Any], alloc: Allocator) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or alloc.cluster_ip()
        if not spec.get("clusterIPs"):
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [spec["clusterIP"]]
        spec.setdefault("ipFamilies", old_spec.get("ipFamilies") or ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []
                 if isinstance(p, dict)}
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            previous = old_ports.get((port.get("port"), port["protocol"]), {}).get("nodePort")
            port["nodePort"] = previous or alloc.node_port()
