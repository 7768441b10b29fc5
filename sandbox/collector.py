"""The controllers that finish deletions: garbage collector, namespace controller, CRD finalizer, storage protection.

kube-apiserver only marks or removes the object a DELETE names; kube-controller-manager's garbage
collector, namespace controller and pvc/pv-protection controllers, and apiextensions' CRD finalizer, do
the rest later, each step a separate write that watchers see. This thread does the same after every
change of the store, so a client sees a Terminating namespace, a `foregroundDeletion` owner waiting for
its blocking dependents, an `orphan` finalizer being honoured or a claim kept while a pod uses it,
exactly as on a cluster, only sooner.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

from sandbox.store import (
    CRD_CLEANUP,
    PV_PROTECTION,
    PVC_PROTECTION,
    Key,
    ObjKey,
    Store,
    drop_finalizer,
    now,
    set_condition,
)

_NS_KEY: Key = ("", "namespaces")
_CRD_KEY: Key = ("apiextensions.k8s.io", "customresourcedefinitions")
_PVC_KEY: Key = ("", "persistentvolumeclaims")
_PV_KEY: Key = ("", "persistentvolumes")
_POD_KEY: Key = ("", "pods")
_NAMESPACE_FINALIZER = "kubernetes"
_PASSES_PER_WAKE = 100


class Collector:
    """Runs the deletion controllers on a thread, woken by every commit to the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = -1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.store.changed:
            self.store.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        store = self.store
        while not self._stop.is_set():
            with store.changed:
                if store.resource_version == self._seen:
                    store.changed.wait(timeout=1.0)
                if self._stop.is_set():
                    return
                try:
                    for _ in range(_PASSES_PER_WAKE):  # then let requests in; the next wake goes on
                        if not self.run_once():
                            break
                except Exception as exc:  # noqa: BLE001 - an emulator bug must not stop every later deletion
                    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
                self._seen = store.resource_version

    # ----- one pass ------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """One pass of every controller over the pending work; True if it changed anything."""
        store = self.store
        changed = False
        with store.lock:
            while store.gone_uids:
                uid = store.gone_uids.pop(0)
                for dep in store.dependents(uid):
                    changed |= self._owner_gone(dep)
            for key, okey in sorted(store.deleting):
                obj = store.stored(key, okey)
                if obj is None:
                    store.deleting.discard((key, okey))
                    continue
                finalizers = obj["metadata"].get("finalizers") or []
                if "orphan" in finalizers:
                    changed |= self._orphan(key, okey, obj)
                elif "foregroundDeletion" in finalizers:
                    changed |= self._foreground(key, okey, obj)
                elif key == _NS_KEY:
                    changed |= self._namespace(okey[1], obj)
                elif key == _CRD_KEY and CRD_CLEANUP in finalizers:
                    changed |= self._crd(okey, obj)
                elif key == _PVC_KEY and PVC_PROTECTION in finalizers:
                    changed |= self._pvc_protection(okey, obj)
                elif key == _PV_KEY and PV_PROTECTION in finalizers:
                    if (obj.get("status") or {}).get("phase") != "Bound":
                        store.replace_stored(key, okey, lambda o: drop_finalizer(o, PV_PROTECTION))
                        changed = True
        return changed

    # ----- garbage collector -----------------------------------------------------------------------

    def _owner_gone(self, dep: tuple[Key, ObjKey]) -> bool:
        """A dependent lost an owner: drop the dangling references, or delete it if no owner is left."""
        store = self.store
        obj = store.stored(*dep)
        if obj is None:
            return False
        refs = obj["metadata"].get("ownerReferences") or []
        live = [r for r in refs if store.alive(str(r.get("uid")))]
        if live:
            if len(live) == len(refs):
                return False
            store.replace_stored(*dep, lambda o: o["metadata"].__setitem__("ownerReferences", live))
            return True
        if obj["metadata"].get("deletionTimestamp"):
            return False
        store.delete_stored(*dep, "Background")
        return True

    def _orphan(self, key: Key, okey: ObjKey, obj: dict[str, Any]) -> bool:
        store, uid = self.store, obj["metadata"]["uid"]
        for dep in store.dependents(uid):
            store.replace_stored(*dep, lambda o: _drop_owner(o, uid))
        store.replace_stored(key, okey, lambda o: drop_finalizer(o, "orphan"))
        return True

    def _foreground(self, key: Key, okey: ObjKey, obj: dict[str, Any]) -> bool:
        """Delete every dependent; drop `foregroundDeletion` once no blocking dependent is left."""
        store, uid = self.store, obj["metadata"]["uid"]
        changed = False
        for dep in store.dependents(uid):
            child = store.stored(*dep)
            if child is None or child["metadata"].get("deletionTimestamp"):
                continue
            policy = "Foreground" if store.dependents(child["metadata"]["uid"]) else "Background"
            store.delete_stored(*dep, policy)
            changed = True
        blocking = [dep for dep in store.dependents(uid) if _blocks(store.stored(*dep), uid)]
        if not blocking:
            store.replace_stored(key, okey, lambda o: drop_finalizer(o, "foregroundDeletion"))
            changed = True
        return changed

    # ----- namespace controller ------------------------------------------------------------------

    def _namespace(self, name: str, ns: dict[str, Any]) -> bool:
        store = self.store
        if _NAMESPACE_FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return False
        changed = False
        for member in store.in_namespace(name):
            obj = store.stored(*member)
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                store.delete_stored(*member, "Background")
                changed = True
        remaining = [store.stored(*m) for m in store.in_namespace(name)]
        conditions = _namespace_conditions([(m[0], o) for m, o in zip(store.in_namespace(name), remaining,
                                                                       strict=True) if o is not None])
        current = {c["type"]: (c["status"], c.get("message")) for c in (ns.get("status") or {}).get("conditions") or []}
        wanted = {c["type"]: (c["status"], c.get("message")) for c in conditions}
        if current != wanted:
            store.replace_stored(_NS_KEY, ("", name), lambda o: _set_conditions(o, conditions))
            changed = True
        if not remaining:
            store.replace_stored(_NS_KEY, ("", name), _drop_namespace_finalizer)
            changed = True
        return changed

    # ----- storage protection ---------------------------------------------------------------------

    def _pvc_protection(self, okey: ObjKey, pvc: dict[str, Any]) -> bool:
        """Let a claim go once no scheduled pod uses it (the pvc-protection controller: a pod that is not on a
        node yet does not hold the claim, since a kubelet will not start it with a claim being deleted)."""
        store = self.store
        namespace, claim = okey
        for pod_key in store.keys_of(_POD_KEY):
            if pod_key[0] != namespace:
                continue
            pod = store.stored(_POD_KEY, pod_key) or {}
            if not (pod.get("spec") or {}).get("nodeName"):
                continue
            volumes = (pod.get("spec") or {}).get("volumes") or []
            if any(isinstance(v, dict) and (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
                   for v in volumes):
                return False
        store.replace_stored(_PVC_KEY, okey, lambda o: drop_finalizer(o, PVC_PROTECTION))
        return True

    # ----- CRD finalizer -------------------------------------------------------------------------

    def _crd(self, okey: ObjKey, crd: dict[str, Any]) -> bool:
        """Delete the CRD's custom resources; drop the cleanup finalizer once none is left."""
        store = self.store
        spec = crd.get("spec") or {}
        key = (str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))
        changed = False
        if _reason(crd, "Terminating") != "InstanceDeletionInProgress":
            store.replace_stored(_CRD_KEY, okey, lambda o: set_condition(o, {
                "type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                "message": "CustomResource deletion is in progress"}))
            changed = True
        for instance in store.keys_of(key):
            obj = store.stored(key, instance)
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                store.delete_stored(key, instance, "Background")
                changed = True
        if not store.keys_of(key):
            store.replace_stored(_CRD_KEY, okey, lambda o: drop_finalizer(o, CRD_CLEANUP))
            changed = True
        return changed


def _reason(obj: dict[str, Any], ctype: str) -> str | None:
    return next((c.get("reason") for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == ctype), None)


def _drop_owner(obj: dict[str, Any], uid: str) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _blocks(obj: dict[str, Any] | None, uid: str) -> bool:
    return obj is not None and any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                                   for r in obj["metadata"].get("ownerReferences") or [])


def _namespace_conditions(remaining: list[tuple[Key, dict[str, Any]]]) -> list[dict[str, str]]:
    """The conditions the namespace controller reports while it empties a namespace."""
    by_resource: dict[str, int] = {}
    by_finalizer: dict[str, int] = {}
    for (group, plural), obj in remaining:
        resource = f"{plural}.{group}"
        by_resource[resource] = by_resource.get(resource, 0) + 1
        for finalizer in obj["metadata"].get("finalizers") or []:
            by_finalizer[finalizer] = by_finalizer.get(finalizer, 0) + 1
    conditions = [
        {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "reason": "ResourcesDiscovered",
         "message": "All resources successfully discovered"},
        {"type": "NamespaceDeletionGroupVersionParsingFailure", "status": "False", "reason": "ParsedGroupVersions",
         "message": "All legacy kube types successfully parsed"},
        {"type": "NamespaceDeletionContentFailure", "status": "False", "reason": "ContentDeleted",
         "message": "All content successfully deleted, may be waiting on finalization"},
    ]
    if by_resource:
        conditions.append({"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                           "message": "Some resources are remaining: " + ", ".join(
                               f"{r} has {n} resource instances" for r, n in sorted(by_resource.items()))})
    else:
        conditions.append({"type": "NamespaceContentRemaining", "status": "False", "reason": "ContentRemoved",
                           "message": "All content successfully removed"})
    if by_finalizer:
        conditions.append({"type": "NamespaceFinalizersRemaining", "status": "True",
                           "reason": "SomeFinalizersRemain",
                           "message": "Some content in the namespace has finalizers remaining: " + ", ".join(
                               f"{f} in {n} resource instances" for f, n in sorted(by_finalizer.items()))})
    else:
        conditions.append({"type": "NamespaceFinalizersRemaining", "status": "False",
                           "reason": "ContentHasNoFinalizers",
                           "message": "All content-preserving finalizers finished"})
    return conditions


def _set_conditions(ns: dict[str, Any], conditions: list[dict[str, str]]) -> None:
    status = ns.setdefault("status", {})
    previous = {c.get("type"): c for c in status.get("conditions") or []}
    stamped = []
    for condition in conditions:
        old = previous.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        stamped.append({**condition, "lastTransitionTime": old.get("lastTransitionTime", now()) if same and old
                        else now()})
    status["conditions"] = stamped


def _drop_namespace_finalizer(ns: dict[str, Any]) -> None:
    spec = ns.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != _NAMESPACE_FINALIZER]
    if not spec["finalizers"]:
        spec.pop("finalizers")
