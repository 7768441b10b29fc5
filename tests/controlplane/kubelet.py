"""A stand-in kubelet (and volume provisioner) for the test control plane: it runs no container, but it does
what the real controllers wait for, so Deployments, StatefulSets, ReplicaSets and Jobs get real status.

- Registers one Ready node and binds every unscheduled Pod to it (there is no kube-scheduler).
- Reports a bound Pod Running and Ready. A Pod that runs to completion (restartPolicy Never or OnFailure) runs
  its command as the emulator reads it: `false` or `sh -c "exit N"` (N != 0) fails, `sleep N` runs N seconds,
  anything else succeeds at once. A failing OnFailure Pod restarts in place with back-off, as a node would.
- Finishes graceful deletions (a Pod with deletionTimestamp is deleted with grace 0, as a kubelet does once its
  containers stopped), so namespaces and Deployments terminate.
- Provisions a PersistentVolume for each pending claim (pre-bound by claimRef; the real binder completes the
  binding) and deletes the volumes it made once they are Released.

Run it as `python -m tests.controlplane.kubelet --kubeconfig PATH`; the launcher does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import json
import logging
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config, watch

log = logging.getLogger("stand-in-kubelet")
PROVISIONER = "wavecd.test/stand-in-provisioner"
RUN_SECONDS = 0.3  # how long a finite Pod with an ordinary command "runs" before it succeeds


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_script(pod: dict[str, Any]) -> tuple[int, float]:
    """(exit code, seconds it runs) of a Pod's first container, read from its command as a node would run it."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return 0, RUN_SECONDS
    argv = [str(a) for a in (containers[0].get("command") or []) + (containers[0].get("args") or [])]
    if argv[:1] == ["false"]:
        return 1, RUN_SECONDS
    if len(argv) == 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
        words = shlex.split(argv[2])
        if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
            return int(words[1]), RUN_SECONDS
        if len(words) == 2 and words[0] == "sleep":
            argv = words
    if len(argv) == 2 and argv[0] == "sleep":
        try:
            return 0, max(float(argv[1]), RUN_SECONDS)
        except ValueError:
            return 0, RUN_SECONDS
    return 0, RUN_SECONDS


class Timers:
    """Runs callbacks at a monotonic time, on one thread (the kubelet's only waiting)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        threading.Thread(target=self._run, name="timers", daemon=True).start()

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), fn))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # noqa: BLE001 - one failed status write must not stop the node
                log.exception("timer callback failed")


class StandInKubelet:
    def __init__(self, api: client.ApiClient, node: str) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.node = node
        self.timers = Timers()
        self._ips = itertools.count(2)
        self._handled: set[tuple[str, str]] = set()  # (uid, what) already done for a pod
        self._lock = threading.Lock()

    # -- node ---------------------------------------------------------------------------------------------------
    def register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                           "kubernetes.io/os": "linux",
                                                           "node-role.kubernetes.io/worker": ""}}}
        try:
            self.core.create_node(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        self._heartbeat()

    def _heartbeat(self) -> None:
        stamp = _now()
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "1000", "ephemeral-storage": "100Gi"}
        status = {
            "capacity": capacity, "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "stand-in kubelet is ready",
                 "lastHeartbeatTime": stamp, "lastTransitionTime": stamp},
            ],
            "nodeInfo": {"kubeletVersion": "v1.36.3", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "stand-in://1", "kernelVersion": "", "osImage": "stand-in",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        }
        self.core.patch_node_status(self.node, {"status": status})
        self.timers.after(30, self._heartbeat)

    # -- pods ---------------------------------------------------------------------------------------------------
    def on_pod(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        status = pod.get("status") or {}
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            if self._once(uid, "delete"):
                self._delete_now(meta["namespace"], meta["name"], uid)
            return
        if not spec.get("nodeName"):
            if not spec.get("schedulingGates") and self._once(uid, "bind"):
                self._bind(meta["namespace"], meta["name"])
            return
        if spec["nodeName"] != self.node or status.get("phase") in ("Succeeded", "Failed"):
            return
        if self._once(uid, "start"):
            self._start(pod)

    def _once(self, uid: str, what: str) -> bool:
        with self._lock:
            if (uid, what) in self._handled:
                return False
            self._handled.add((uid, what))
            return True

    def _bind(self, namespace: str, name: str) -> None:
        body = client.V1Binding(metadata=client.V1ObjectMeta(name=name),
                                target=client.V1ObjectReference(api_version="v1", kind="Node", name=self.node))
        try:
            self.core.create_namespaced_binding(namespace, body, _preload_content=False)
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _delete_now(self, namespace: str, name: str, uid: str) -> None:
        try:
            self.core.delete_namespaced_pod(name, namespace, body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)))
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _start(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        stamp = _now()
        n = next(self._ips)
        ip = f"10.244.{n // 250 % 250}.{n % 250 + 2}"
        finite = spec.get("restartPolicy") in ("Never", "OnFailure")
        init = [{"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": True,
                 "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": stamp,
                                          "finishedAt": stamp}}}
                for c in spec.get("initContainers") or []]
        self._write_status(meta, {
            "phase": "Running", "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": stamp, "qosClass": "BestEffort",
            "conditions": [self._condition(t, "True", stamp) for t in
                           ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "initContainerStatuses": init,
            "containerStatuses": [self._container(c, stamp, running=True) for c in spec.get("containers") or []],
        })
        if finite:
            code, seconds = pod_script(pod)
            self.timers.after(seconds, lambda: self._finish(pod, code, 0))

    def _finish(self, pod: dict[str, Any], code: int, restarts: int) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        try:
            live = self.core.read_namespaced_pod(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        if live.metadata.uid != meta["uid"] or live.metadata.deletion_timestamp:
            return
        stamp = _now()
        containers = spec.get("containers") or []
        if code != 0 and spec.get("restartPolicy") == "OnFailure":
            # The container restarts in place with the kubelet's back-off (10 s doubling, at most 300 s).
            statuses = [{**self._container(c, stamp, running=False), "restartCount": restarts + 1,
                         "state": {"waiting": {"reason": "CrashLoopBackOff",
                                               "message": "back-off restarting failed container"}},
                         "lastState": {"terminated": {"exitCode": code, "reason": "Error", "startedAt": stamp,
                                                      "finishedAt": stamp}}}
                        for c in containers]
            self._write_status(meta, {"containerStatuses": statuses, "conditions": [
                self._condition("Ready", "False", stamp, "ContainersNotReady"),
                self._condition("ContainersReady", "False", stamp, "ContainersNotReady")]})
            self.timers.after(min(10 * 2 ** restarts, 300), lambda: self._finish(pod, code, restarts + 1))
            return
        phase = "Succeeded" if code == 0 else "Failed"
        reason = "Completed" if code == 0 else "Error"
        statuses = [{**self._container(c, stamp, running=False), "restartCount": restarts,
                     "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": stamp,
                                              "finishedAt": stamp}}}
                    for c in containers]
        self._write_status(meta, {"phase": phase, "containerStatuses": statuses, "conditions": [
            self._condition("Ready", "False", stamp, "PodCompleted"),
            self._condition("ContainersReady", "False", stamp, "PodCompleted"),
            self._condition("PodReadyToStartContainers", "False", stamp)]})

    @staticmethod
    def _condition(ctype: str, status: str, stamp: str, reason: str | None = None) -> dict[str, Any]:
        cond: dict[str, Any] = {"type": ctype, "status": status, "lastTransitionTime": stamp, "lastProbeTime": None}
        if reason:
            cond["reason"] = reason
        return cond

    @staticmethod
    def _container(c: dict[str, Any], stamp: str, running: bool) -> dict[str, Any]:
        status: dict[str, Any] = {"name": c.get("name", ""), "image": c.get("image", ""),
                                  "imageID": f"stand-in://{c.get('image', '')}", "containerID": "stand-in://1",
                                  "ready": running, "started": running, "restartCount": 0}
        if running:
            status["state"] = {"running": {"startedAt": stamp}}
        return status

    def _write_status(self, meta: dict[str, Any], status: dict[str, Any]) -> None:
        body = {"metadata": {"uid": meta["uid"]}, "status": status}
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], body)
        except client.ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise

    # -- volumes ------------------------------------------------------------------------------------------------
    def on_claim(self, pvc: dict[str, Any]) -> None:
        meta, spec = pvc["metadata"], pvc.get("spec") or {}
        if meta.get("deletionTimestamp") or spec.get("volumeName") or \
                (pvc.get("status") or {}).get("phase") != "Pending" or not self._once(meta["uid"], "provision"):
            return
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        body = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{meta['uid']}", "labels": {"wavecd.test/provisioned": "true"},
                         "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {"capacity": {"storage": storage},
                     "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain",
                     "storageClassName": spec.get("storageClassName") or "",
                     "volumeMode": spec.get("volumeMode") or "Filesystem",
                     "hostPath": {"path": f"/tmp/wavecd-stand-in-pv/{meta['uid']}"},
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}},
        }
        try:
            self.core.create_persistent_volume(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def on_volume(self, pv: dict[str, Any]) -> None:
        meta = pv["metadata"]
        if (meta.get("labels") or {}).get("wavecd.test/provisioned") != "true":
            return
        if (pv.get("status") or {}).get("phase") == "Released" and self._once(meta["uid"], "reclaim"):
            try:
                self.core.delete_persistent_volume(meta["name"])
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

    # -- watch loops --------------------------------------------------------------------------------------------
    def follow(self, lister: Callable[..., Any], handler: Callable[[dict[str, Any]], None]) -> None:
        """List then watch `lister` forever, handing each object to `handler`; relists after any break."""
        while True:
            try:
                listing = lister(_preload_content=False)
                data = json.loads(listing.data)
                for item in data.get("items") or []:
                    self._safe(handler, item)
                rv = data["metadata"]["resourceVersion"]
                for event in watch.Watch().stream(lister, resource_version=rv, timeout_seconds=240,
                                                  allow_watch_bookmarks=False):
                    obj = event["raw_object"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._safe(handler, obj)
            except Exception:  # noqa: BLE001 - an expired watch or a dropped connection: list again
                log.debug("watch restarted", exc_info=True)
                time.sleep(0.2)

    @staticmethod
    def _safe(handler: Callable[[dict[str, Any]], None], obj: dict[str, Any]) -> None:
        try:
            handler(obj)
        except Exception:  # noqa: BLE001 - one object must not stop the loop
            log.exception("handling %s failed", (obj.get("metadata") or {}).get("name"))

    def run(self) -> None:
        self.register()
        loops = [(self.core.list_pod_for_all_namespaces, self.on_pod),
                 (self.core.list_persistent_volume_claim_for_all_namespaces, self.on_claim),
                 (self.core.list_persistent_volume, self.on_volume)]
        threads = [threading.Thread(target=self.follow, args=loop, daemon=True) for loop in loops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", default="wavecd-node")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 8
    StandInKubelet(client.ApiClient(configuration), args.node).run()


if __name__ == "__main__":
    main()
