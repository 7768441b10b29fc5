"""Optional controller simulation: workloads roll out, Jobs complete, PVCs bind, Pods become Ready.

Without it the emulator is a pure API server (objects never get a status), which is what API semantics
tests want. Health assessment and wave gating need the status fields Kubernetes' controllers write, with
their exact names and reasons; this thread writes them over a configurable roll-out time.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sandbox.errors import ApiError
from sandbox.store import Store, WriteOptions

MANAGER = "kube-controller-manager"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(obj: dict[str, Any]) -> str:
    template = (obj.get("spec") or {}).get("template") or {}
    return hashlib.sha256(repr(sorted(template.items())).encode()).hexdigest()[:10]


def _condition(previous: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str,
               update_time: bool = False) -> dict[str, Any]:
    """A condition that keeps its timestamps while its status/reason stay the same."""
    old = next((c for c in previous if c.get("type") == ctype), None)
    stamp = _stamp()
    same = old is not None and old.get("status") == status and old.get("reason") == reason
    cond = {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": old.get("lastTransitionTime", stamp) if same and old else stamp}
    if update_time:
        cond["lastUpdateTime"] = old.get("lastUpdateTime", stamp) if same and old else stamp
    return cond


def _drop_zero(status: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes omits zero-valued int32 status fields."""
    return {k: v for k, v in status.items() if not (isinstance(v, int) and not isinstance(v, bool) and v == 0)
            or k in ("observedGeneration",)}


class ControllerSimulator:
    """Background thread writing controller-made status onto objects of the store."""

    def __init__(self, store: Store, rollout_seconds: float = 2.0, tick_seconds: float | None = None) -> None:
        self.store = store
        self.rollout_seconds = max(rollout_seconds, 0.0)
        self.tick = tick_seconds or min(0.1, max(self.rollout_seconds / 10, 0.01))
        self._started: dict[tuple[str, int], float] = {}
        self._rolled_out: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.reconcile_once()
            except ApiError:
                continue

    def _progress(self, obj: dict[str, Any]) -> float:
        meta = obj["metadata"]
        key = (meta["uid"], int(meta.get("generation", 0)))
        started = self._started.setdefault(key, time.monotonic())
        if self.rollout_seconds <= 0:
            return 1.0
        return min((time.monotonic() - started) / self.rollout_seconds, 1.0)

    def reconcile_once(self) -> None:
        """One pass over every simulated kind."""
        handlers = {
            ("apps", "Deployment"): self._deployment,
            ("apps", "StatefulSet"): self._statefulset,
            ("apps", "DaemonSet"): self._daemonset,
            ("apps", "ReplicaSet"): self._replicaset,
            ("batch", "Job"): self._job,
            ("", "PersistentVolumeClaim"): self._pvc,
            ("", "Service"): self._service,
            ("", "Pod"): self._pod,
        }
        for rt in self.store.registry.all():
            handler = handlers.get((rt.group, rt.kind))
            if handler is None or rt.version != "v1":
                continue
            items, _ = self.store.list(rt, None, lambda o: not o["metadata"].get("deletionTimestamp"))
            for obj in items:
                status = handler(obj, self._progress(obj))
                if status is not None and status != obj.get("status"):
                    updated = copy.deepcopy(obj)
                    updated["status"] = status
                    meta = obj["metadata"]
                    try:
                        self.store.update(rt, meta.get("namespace", ""), meta["name"], updated,
                                          WriteOptions(manager=MANAGER, subresource="status"))
                    except ApiError:
                        continue  # changed or deleted meanwhile; the next pass retries

    # ----- kinds ---------------------------------------------------------------------------------

    def _deployment(self, obj: dict[str, Any], progress: float) -> dict[str, Any]:
        spec, old = obj.get("spec") or {}, obj.get("status") or {}
        desired = int(spec.get("replicas", 1))
        done = progress >= 1.0
        updated = desired if done else int(desired * progress)
        uid = obj["metadata"]["uid"]
        was_available = uid in self._rolled_out
        if done:
            self._rolled_out.add(uid)
        available = desired if done else (max(desired - updated, 0) if was_available else updated)
        name = obj["metadata"]["name"]
        rs_name = f"{name}-{_hash(obj)}"
        previous = old.get("conditions") or []
        ok = done or was_available or desired == 0
        conditions = [
            _condition(previous, "Available", "True" if ok else "False",
                       "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if ok
                       else "Deployment does not have minimum availability.", update_time=True),
            _condition(previous, "Progressing", "True",
                       "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                       f'ReplicaSet "{rs_name}" has successfully progressed.' if done
                       else f'ReplicaSet "{rs_name}" is progressing.', update_time=True),
        ]
        status = _drop_zero({"observedGeneration": obj["metadata"].get("generation", 1), "replicas": desired,
                             "updatedReplicas": updated, "readyReplicas": available,
                             "availableReplicas": available, "unavailableReplicas": desired - available})
        status["conditions"] = conditions
        return status

    def _statefulset(self, obj: dict[str, Any], progress: float) -> dict[str, Any]:
        spec, old = obj.get("spec") or {}, obj.get("status") or {}
        desired = int(spec.get("replicas", 1))
        done = progress >= 1.0
        revision = f"{obj['metadata']['name']}-{_hash(obj)}"
        updated = desired if done else int(desired * progress)
        current_revision = revision if done else old.get("currentRevision", revision)
        return _drop_zero({
            "observedGeneration": obj["metadata"].get("generation", 1), "replicas": desired,
            "readyReplicas": desired if done else updated, "currentReplicas": desired if done else desired - updated,
            "updatedReplicas": updated, "availableReplicas": desired if done else updated,
            "currentRevision": current_revision, "updateRevision": revision, "collisionCount": 0,
        })

    def _daemonset(self, obj: dict[str, Any], progress: float) -> dict[str, Any]:
        done = progress >= 1.0
        ready = 1 if done else 0
        status = {"observedGeneration": obj["metadata"].get("generation", 1), "desiredNumberScheduled": 1,
                  "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": ready,
                  "updatedNumberScheduled": ready, "numberAvailable": ready}
        if not done:
            status["numberUnavailable"] = 1
        return status

    def _replicaset(self, obj: dict[str, Any], progress: float) -> dict[str, Any]:
        desired = int((obj.get("spec") or {}).get("replicas", 1))
        ready = desired if progress >= 1.0 else int(desired * progress)
        return _drop_zero({"observedGeneration": obj["metadata"].get("generation", 1), "replicas": desired,
                           "fullyLabeledReplicas": desired, "readyReplicas": ready, "availableReplicas": ready})

    @staticmethod
    def _job_script(obj: dict[str, Any]) -> tuple[bool, float | None]:
        """What the Job's container would do, read from its command the way a real node would run it.

        `false` (or `sh -c "exit N"` with N != 0) fails, as it fails on any cluster; `sleep N` runs for
        N seconds. Anything else succeeds after the roll-out time.
        """
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        if not containers:
            return True, None
        argv = [str(a) for a in (containers[0].get("command") or []) + (containers[0].get("args") or [])]
        if argv[:1] == ["false"]:
            return False, None
        if len(argv) == 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c" \
                and argv[2].strip().startswith("exit "):
            return argv[2].strip() == "exit 0", None
        if len(argv) == 2 and argv[0] == "sleep":
            try:
                return True, float(argv[1])
            except ValueError:
                return True, None
        return True, None

    def _job(self, obj: dict[str, Any], progress: float) -> dict[str, Any] | None:
        spec, old = obj.get("spec") or {}, obj.get("status") or {}
        if spec.get("suspend") or old.get("completionTime") or old.get("failed"):
            return None
        start = old.get("startTime") or _stamp()
        succeeds, duration = self._job_script(obj)
        if duration is not None:
            started = self._started.get((obj["metadata"]["uid"], int(obj["metadata"].get("generation", 0))))
            progress = 1.0 if started is None else min((time.monotonic() - started) / max(duration, 1e-3), 1.0)
        if progress < 1.0:
            return {"startTime": start, "active": int(spec.get("parallelism", 1)), "ready": 0,
                    "uncountedTerminatedPods": {}}
        stamp = _stamp()
        previous = old.get("conditions") or []
        if not succeeds:
            message = "Job has reached the specified backoff limit"
            return {
                "startTime": start, "failed": int(spec.get("backoffLimit", 6)) + 1, "ready": 0, "terminating": 0,
                "uncountedTerminatedPods": {},
                "conditions": [
                    {**_condition(previous, "FailureTarget", "True", "BackoffLimitExceeded", message),
                     "lastProbeTime": stamp},
                    {**_condition(previous, "Failed", "True", "BackoffLimitExceeded", message),
                     "lastProbeTime": stamp},
                ],
            }
        return {
            "startTime": start, "completionTime": stamp, "succeeded": int(spec.get("completions", 1)),
            "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [
                {**_condition(previous, "SuccessCriteriaMet", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods"), "lastProbeTime": stamp},
                {**_condition(previous, "Complete", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods"), "lastProbeTime": stamp},
            ],
        }

    def _pvc(self, obj: dict[str, Any], progress: float) -> dict[str, Any] | None:
        if progress < 1.0:
            return None
        spec = obj.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        return {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {"storage": storage}}

    def _service(self, obj: dict[str, Any], progress: float) -> dict[str, Any] | None:
        if (obj.get("spec") or {}).get("type") != "LoadBalancer" or progress < 1.0:
            return None
        octet = int(hashlib.sha256(obj["metadata"]["uid"].encode()).hexdigest(), 16) % 250 + 2
        return {"loadBalancer": {"ingress": [{"ip": f"172.18.255.{octet}", "ipMode": "VIP"}]}}

    def _pod(self, obj: dict[str, Any], progress: float) -> dict[str, Any] | None:
        if progress < 1.0:
            return None
        old = obj.get("status") or {}
        if old.get("phase") in ("Running", "Succeeded", "Failed"):
            return None
        stamp = _stamp()
        containers = (obj.get("spec") or {}).get("containers") or []
        return {
            "phase": "Running", "hostIP": "172.18.0.2", "podIP": "10.244.0.10", "startTime": stamp,
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": stamp, "lastProbeTime": None}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "containerStatuses": [
                {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": True,
                 "started": True, "restartCount": 0, "state": {"running": {"startedAt": stamp}}}
                for c in containers if isinstance(c, dict)
            ],
        }
