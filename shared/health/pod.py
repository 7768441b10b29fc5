"""Pod health, with Argo CD's semantics and messages.

A long-running pod (restartPolicy Always) with a container waiting on an error (CrashLoopBackOff,
ImagePullBackOff, ErrImagePull, CreateContainerConfigError...) is Degraded. Pending is Progressing,
Succeeded Healthy, Failed Degraded (with the best failure message). A Running pod is Healthy once Ready;
a pod with restartPolicy OnFailure/Never has a finite life (usually a hook) and stays Progressing while it
runs, whatever its annotations (as in Argo CD's released health rules; the alpha annotation
`argocd.argoproj.io/ignore-restart-policy` of later Argo CD versions is not honoured).

One deliberate difference: an absent restartPolicy reads as Always, the API server's default (Argo CD
sees "" on objects that never went through the API server and answers Unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode


def _waiting_on_error(reason: str) -> bool:
    return reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")


def _failure_message(container: Mapping[str, Any], path: str) -> str:
    state = f.mapping(container, "state", f"{path}.state")
    terminated = state.get("terminated")
    if terminated is None:
        return ""
    terminated = f.mapping(state, "terminated", f"{path}.state.terminated")
    message = f.string(terminated, "message", f"{path}.state.terminated.message")
    if message:
        return message
    reason = f.string(terminated, "reason", f"{path}.state.terminated.reason")
    if reason == "OOMKilled":
        return reason
    exit_code = f.integer(terminated, "exitCode", f"{path}.state.terminated.exitCode")
    if exit_code != 0:
        name = f.string(container, "name", f"{path}.name")
        return f'container "{name}" failed with exit code {exit_code}'
    return ""


def _container_statuses(status: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = f.sequence(status, key, f"status.{key}")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise f.FieldTypeError(f"status.{key}[{index}] must be an object, got {type(item).__name__}")
    return items


def _is_ready(status: Mapping[str, Any]) -> bool:
    condition = f.find_condition(status, "Ready")
    return condition is not None and condition.get("status") == "True"


def _running_health(
    status: Mapping[str, Any], containers: list[Mapping[str, Any]], message: str
) -> HealthStatus:
    if _is_ready(status):
        return HealthStatus(HealthStatusCode.HEALTHY, message)
    for index, container in enumerate(containers):
        last = f.mapping(container, "lastState", f"status.containerStatuses[{index}].lastState")
        if last.get("terminated") is not None:
            return HealthStatus(HealthStatusCode.DEGRADED, message)
    return HealthStatus(HealthStatusCode.PROGRESSING, message)


def pod_health(obj: Mapping[str, Any]) -> HealthStatus:
    spec, status = f.spec(obj), f.status(obj)
    restart_policy = f.string(spec, "restartPolicy", "spec.restartPolicy") or "Always"
    containers = _container_statuses(status, "containerStatuses")
    message = f.string(status, "message", "status.message")

    if restart_policy == "Always":
        errors: list[str] = []
        for index, container in enumerate(containers):
            state = f.mapping(container, "state", f"status.containerStatuses[{index}].state")
            waiting = state.get("waiting")
            if waiting is None:
                continue
            waiting = f.mapping(state, "waiting", f"status.containerStatuses[{index}].state.waiting")
            reason = f.string(waiting, "reason", f"status.containerStatuses[{index}].state.waiting.reason")
            if _waiting_on_error(reason):
                errors.append(f.string(waiting, "message", "waiting.message"))
        if errors:
            return HealthStatus(HealthStatusCode.DEGRADED, ", ".join(errors))

    phase = f.string(status, "phase", "status.phase")
    if phase == "Pending":
        return HealthStatus(HealthStatusCode.PROGRESSING, message)
    if phase == "Succeeded":
        return HealthStatus(HealthStatusCode.HEALTHY, message)
    if phase == "Failed":
        if message:
            return HealthStatus(HealthStatusCode.DEGRADED, message)
        init = _container_statuses(status, "initContainerStatuses")
        for path, group in (("status.initContainerStatuses", init), ("status.containerStatuses", containers)):
            for index, container in enumerate(group):
                failure = _failure_message(container, f"{path}[{index}]")
                if failure:
                    return HealthStatus(HealthStatusCode.DEGRADED, failure)
        return HealthStatus(HealthStatusCode.DEGRADED, "")
    if phase == "Running":
        if restart_policy == "Always":
            return _running_health(status, containers, message)
        if restart_policy in ("OnFailure", "Never"):
            # Pods with a finite life are usually hooks: Progressing while they run, not Healthy.
            return HealthStatus(HealthStatusCode.PROGRESSING, message)
    return HealthStatus(HealthStatusCode.UNKNOWN, message)
