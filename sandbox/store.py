"""The object store: every write, read and delete, under one lock.

This is where kube-apiserver's storage semantics live: a global resourceVersion, optimistic concurrency,
generation, status/scale/finalize subresources, unknown-field handling (`fieldValidation`), decoding and
validation errors, managedFields, dry runs, deletion marks and finalizers, and CRD registration. What
controllers do after a write (garbage collection, namespace and CRD cleanup) is `sandbox.collector`'s,
through the primitives at the end of this class. The HTTP layer (`sandbox.server`) only parses requests
and renders answers.
"""

from __future__ import annotations

import copy
import enum
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from sandbox import apply as ssa
from sandbox import scale
from sandbox.crd_validation import custom_resource_causes
from sandbox.decoding import DecodeError, check_types
from sandbox.defaults import Allocator, apply_defaults, validate
from sandbox.errors import ApiError, already_exists, bad_request, conflict, invalid, not_found, qualified
from sandbox.patching import json_patch, merge_patch, strategic_merge_patch
from sandbox.resources import Registry, ResourceType, ScalePaths
from sandbox.schema import DecodedObject, Node, prune_undeclared, root_node, undeclared_fields
from sandbox.validation import immutable_causes

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_CRD_KEY: Key = ("apiextensions.k8s.io", "customresourcedefinitions")
_NS_KEY: Key = ("", "namespaces")


class FieldValidation(enum.Enum):
    """What a write does with fields the schema does not declare (the `fieldValidation` parameter)."""

    IGNORE = "Ignore"  # drop them
    WARN = "Warn"  # drop them and say so in Warning headers (the default)
    STRICT = "Strict"  # refuse the write


@dataclass(frozen=True)
class Event:
    """One change, kept in the bounded history that watches replay."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict[str, Any]
    prev: dict[str, Any] | None


@dataclass
class WriteOptions:
    dry_run: bool = False
    manager: str = ""
    force: bool = False
    subresource: str = ""
    field_validation: FieldValidation = FieldValidation.WARN
    patch: bool = False  # the body is the result of a (non-apply) patch
    warnings: list[str] = dataclass_field(default_factory=list)  # sent back as `Warning: 299 - "..."` headers


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def now() -> str:
    return ssa.now()


def _strip_times(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []]
    out["metadata"] = meta
    return out


class Store:
    """All objects of the emulated cluster, with Kubernetes' write semantics."""

    def __init__(self, registry: Registry | None = None, history: int = 5000) -> None:
        self.registry = registry or Registry()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Key, dict[ObjKey, dict[str, Any]]] = {}
        self._uids: dict[str, tuple[Key, ObjKey]] = {}
        self._rv = 0
        self.events: deque[Event] = deque(maxlen=history)
        self.compacted_rv = 0
        self.alloc = Allocator()
        # Work for the emulated controllers (sandbox.collector): uids of objects gone since they last ran,
        # objects marked for deletion, and an index of dependents by owner uid.
        self.gone_uids: list[str] = []
        self.deleting: set[tuple[Key, ObjKey]] = set()
        self._dependents: dict[str, set[tuple[Key, ObjKey]]] = {}
        self._bootstrap()

    # ----- helpers -------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        ns_type = self.registry.by_path("", "v1", "namespaces")
        assert ns_type is not None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(ns_type, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                        WriteOptions(manager="kube-apiserver"))

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def node(self, rt: ResourceType) -> Node:
        return root_node(rt.group, rt.version, rt.kind, rt.schema, rt.custom)

    def _bucket(self, rt: ResourceType) -> dict[ObjKey, dict[str, Any]]:
        return self._objects.setdefault(rt.storage_key, {})

    def _out(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def _commit(self, key: Key, okey: ObjKey, obj: dict[str, Any], event: str,
                prev: dict[str, Any] | None) -> dict[str, Any]:
        self._rv += 1
        _meta(obj)["resourceVersion"] = str(self._rv)
        bucket = self._objects.setdefault(key, {})
        for uid in _owner_uids(prev):
            self._dependents.get(uid, set()).discard((key, okey))
        if event == "DELETED":
            bucket.pop(okey, None)
            self._uids.pop(_meta(obj).get("uid", ""), None)
            self.gone_uids.append(_meta(obj).get("uid", ""))
            self.deleting.discard((key, okey))
        else:
            bucket[okey] = obj
            self._uids[_meta(obj)["uid"]] = (key, okey)
            for uid in _owner_uids(obj):
                self._dependents.setdefault(uid, set()).add((key, okey))
            if _meta(obj).get("deletionTimestamp"):
                self.deleting.add((key, okey))
        if len(self.events) == self.events.maxlen:
            self.compacted_rv = self.events[0].rv
        self.events.append(Event(self._rv, event, key, obj, prev))
        self.changed.notify_all()
        return obj

    def _type_for_key(self, key: Key, api_version: str = "") -> ResourceType | None:
        versions = self.registry.versions_of(*key)
        for t in versions:
            if t.api_version == api_version:
                return t
        return versions[0] if versions else None

    def _check_namespace(self, rt: ResourceType, namespace: str, creating: bool, name: str = "") -> None:
        if not rt.namespaced:
            return
        ns = self._objects.get(_NS_KEY, {}).get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if creating and _meta(ns).get("deletionTimestamp"):
            raise ApiError(403, f"{qualified(rt.plural, rt.group)} \"{name}\" is forbidden: unable to create new "
                                f"content in namespace {namespace} because it is being terminated", "Forbidden",
                           name=name, group=rt.group, kind=rt.plural,
                           causes=[{"reason": "NamespaceTerminating",
                                    "message": f"namespace {namespace} is being terminated",
                                    "field": "metadata.namespace"}])

    def _check_type(self, rt: ResourceType, body: Any, patch: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        if not rt.custom:
            try:
                check_types(body, rt.group, rt.version, rt.kind)
            except DecodeError as err:
                if patch:
                    raise _patch_invalid(str(err)) from None
                raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                  f"{err}") from None
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if rt.custom and (not api_version or not kind):
            raise bad_request("Object 'Kind' is missing in the request body" if not kind
                              else "Object 'apiVersion' is missing in the request body")
        if api_version and api_version != rt.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                  f"API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        body = copy.deepcopy(body)
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        _meta(body)
        return body

    def _set_namespace(self, rt: ResourceType, namespace: str, body: dict[str, Any]) -> None:
        meta = _meta(body)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    @staticmethod
    def _validate_custom(rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.custom:
            causes = custom_resource_causes(obj, rt.schema)
            if causes:
                raise invalid(rt.kind, rt.group, str(_meta(obj).get("name") or ""), causes)

    def _drop_unknown_fields(self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
        """Prune undeclared fields as kube-apiserver's decoder (or CRD structural pruning) does; returns the
        object as plain dicts (the decoder's record of repeated keys has served its purpose)."""
        body = DecodedObject((k, v) for k, v in obj.items() if k not in ("apiVersion", "kind"))
        body.duplicates = getattr(obj, "duplicates", ())
        found = prune_undeclared(body, self.node(rt))
        obj = _plain({k: v for k, v in obj.items() if k in ("apiVersion", "kind") or k in body})
        if not found:
            return obj
        if rt.custom:  # structural pruning reports sorted paths; the built-in decoder, document order
            found.sort(key=lambda problem: problem.split('"', 1)[1])
        problems = ", ".join(found)
        if opts.field_validation is FieldValidation.STRICT:
            if opts.patch:
                raise _patch_invalid(f"strict decoding error: {problems}")
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict '
                              f"decoding error: {problems}")
        if opts.field_validation is FieldValidation.WARN:
            opts.warnings += found
        return obj

    @staticmethod
    def _spec_view(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items()
                if k not in ("metadata", "apiVersion", "kind") and not (k == "status" and rt.status)}

    # ----- reads ---------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self._bucket(rt).get((namespace if rt.namespaced else "", name))
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            return self._out(rt, obj)

    def list(self, rt: ResourceType, namespace: str | None,
             predicate: Callable[[dict[str, Any]], bool]) -> tuple[list[dict[str, Any]], str]:
        with self.lock:
            items = [self._out(rt, o) for (ns, _), o in sorted(self._bucket(rt).items())
                     if (namespace is None or ns == namespace) and predicate(o)]
            return items, str(self._rv)

    # ----- writes --------------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions,
               managed_by_apply: bool = False) -> dict[str, Any]:
        with self.lock:
            obj = self._check_type(rt, body)
            if not managed_by_apply:
                obj = self._drop_unknown_fields(rt, obj, opts)
            self._set_namespace(rt, namespace, obj)
            meta = _meta(obj)
            self._check_namespace(rt, namespace, creating=True, name=str(meta.get("name") or ""))
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices(_GENERATE_CHARS, k=5))
            if not meta.get("name"):
                raise invalid(rt.kind, rt.group, "", [("metadata.name", "FieldValueRequired",
                                                        "Required value: name or generateName is required")])
            validate(rt, obj)
            self._validate_custom(rt, obj)
            okey = (namespace if rt.namespaced else "", meta["name"])
            if okey in self._bucket(rt):
                raise already_exists(rt.plural, rt.group, meta["name"])
            if rt.custom and self._crd_terminating(rt):
                raise ApiError(403, f'{qualified(rt.plural, rt.group)} "{meta["name"]}" is forbidden: create not '
                                    "allowed while custom resource definition is terminating", "Forbidden",
                               name=meta["name"], group=rt.group, kind=rt.plural)
            for field in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if rt.sets_generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if rt.status:
                obj.pop("status", None)
            protection = _PROTECTION_FINALIZERS.get(rt.storage_key)
            if protection and protection not in (meta.get("finalizers") or []):
                # the StorageObjectInUseProtection admission plugin, on in every cluster by default
                meta["finalizers"] = [*(meta.get("finalizers") or []), protection]
            apply_defaults(rt, obj, None, self.alloc)
            if rt.kind == "CustomResourceDefinition":
                self._crd_status(obj)
            if not managed_by_apply:
                meta.pop("managedFields", None)
                ssa.record_update(None, obj, self.node(rt), opts.manager, rt.api_version, "", rt.status)
            if opts.dry_run:
                return self._out(rt, obj)
            self._commit(rt.storage_key, okey, obj, "ADDED", None)
            if rt.kind == "CustomResourceDefinition":
                self._serve_crd(obj)
            return self._out(rt, obj)

    def update(self, rt: ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions,
               managed: bool = False) -> dict[str, Any]:
        """PUT (also the tail of every patch); `managed` means managedFields are already computed."""
        with self.lock:
            self._check_namespace(rt, namespace, creating=False)  # content left in a finalized namespace
            okey = (namespace if rt.namespaced else "", name)
            old = self._bucket(rt).get(okey)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            new = self._check_type(rt, body, patch=opts.patch)
            if not managed:
                new = self._drop_unknown_fields(rt, new, opts)
            self._set_namespace(rt, namespace, new)
            meta = _meta(new)
            if meta.get("name") and meta["name"] != name:
                raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                  f"({name})")
            meta["name"] = name
            rv = meta.get("resourceVersion")
            if rv and rv != _meta(old).get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name,
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again")
            new = self._prepare_update(rt, old, new, opts)
            self._validate_custom(rt, new)
            if not managed:
                ssa.record_update(old, new, self.node(rt), opts.manager, rt.api_version, opts.subresource,
                                  rt.status)
            if _strip_times(new) == _strip_times(old):
                return self._out(rt, old)
            if opts.dry_run:
                return self._out(rt, new)
            held = _meta(new).get("finalizers") or (_is_namespace(rt) and (new.get("spec") or {}).get("finalizers"))
            if _meta(new).get("deletionTimestamp") and not held:
                # the last finalizer of an object being deleted is gone: the API server deletes it at once
                # (a namespace finalized this way leaves whatever content it still had, as in Kubernetes)
                self._commit(rt.storage_key, okey, new, "DELETED", old)
                if rt.kind == "CustomResourceDefinition":
                    self.registry.replace_custom(_meta(new)["name"], [])
                return self._out(rt, new)
            self._commit(rt.storage_key, okey, new, "MODIFIED", old)
            if rt.kind == "CustomResourceDefinition":
                self._serve_crd(new)
            return self._out(rt, new)

    def _prepare_update(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any],
                        opts: WriteOptions) -> dict[str, Any]:
        old_meta, meta = _meta(old), _meta(new)
        if opts.subresource == "status":
            status = new.get("status")
            managed = meta.get("managedFields")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if managed is not None:
                _meta(new)["managedFields"] = managed
            return new
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if _is_namespace(rt) and opts.subresource != "finalize":
            # only the finalize subresource changes a namespace's spec.finalizers
            finalizers = (old.get("spec") or {}).get("finalizers")
            spec = new["spec"] = dict(new.get("spec") or {})
            if finalizers is None:
                spec.pop("finalizers", None)
            else:
                spec["finalizers"] = copy.deepcopy(finalizers)
        if rt.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(rt.kind, rt.group, meta.get("name", ""), [(
                    "metadata.finalizers", "FieldValueForbidden",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {sorted(added)}")])
        validate(rt, new)
        apply_defaults(rt, new, old, self.alloc)
        if causes := immutable_causes(rt.group, rt.kind, old, new):
            raise invalid(rt.kind, rt.group, meta.get("name", ""), causes)
        if rt.kind == "CustomResourceDefinition":
            self._crd_status(new)
        if rt.sets_generation and self._spec_view(rt, new) != self._spec_view(rt, old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        return new

    def patch(self, rt: ResourceType, namespace: str, name: str, content_type: str, raw: bytes,
              opts: WriteOptions) -> tuple[dict[str, Any], bool]:
        """Apply a PATCH body; returns (object, created). Apply patches create missing objects."""
        import json

        import yaml

        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is None or patch_type == "apply-cbor":
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: {', '.join(t for t in PATCH_TYPES if 'cbor' not in t)}")
        if patch_type == "strategic" and rt.custom:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types "
                                "include: application/json-patch+json, application/merge-patch+json, "
                                "application/apply-patch+yaml")
        try:
            if patch_type == "apply":
                body = yaml.load(raw or b"{}", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            else:
                body = json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding patch: {type(exc).__name__}") from None
        with self.lock:
            okey = (namespace if rt.namespaced else "", name)
            old = self._bucket(rt).get(okey)
            if patch_type == "apply":
                return self._apply(rt, namespace, name, old, body, opts)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            current = self._out(rt, old)
            if patch_type == "json":
                patched = json_patch(current, body)
            elif patch_type == "merge":
                if not isinstance(body, dict):
                    raise bad_request("merge patch must be a JSON object")
                patched = merge_patch(current, body)
            else:
                if not isinstance(body, dict):
                    raise bad_request("strategic merge patch must be a JSON object")
                patched = strategic_merge_patch(current, body, self.node(rt))
            if not isinstance(patched, dict):
                raise bad_request("the patched object must be a JSON object")
            opts.patch = True
            return self.update(rt, namespace, name, patched, opts), False

    def _apply(self, rt: ResourceType, namespace: str, name: str, old: dict[str, Any] | None, config: Any,
               opts: WriteOptions) -> tuple[dict[str, Any], bool]:
        if not opts.manager:
            raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                                "required for apply patch", "Invalid",
                           causes=[{"reason": "FieldValueRequired", "message": "Required value: is required "
                                    "for apply patch", "field": "fieldManager"}])
        if not isinstance(config, dict):
            raise bad_request("apply patch must be a YAML or JSON object")
        if not config.get("apiVersion") or not config.get("kind"):
            raise bad_request("invalid object type: apiVersion and kind must be set in an apply configuration")
        if config["apiVersion"] != rt.api_version or config["kind"] != rt.kind:
            raise bad_request(f"the apply configuration is for {config['apiVersion']}, Kind={config['kind']}, "
                              f"but the request is for {rt.api_version}, Kind={rt.kind}")
        meta = config.get("metadata") or {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                              f"({name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        # Server-side apply types the configuration against the schema and refuses undeclared fields with
        # this message; Kubernetes answers it with a bare 500 (kubernetes/kubernetes#122480), and so do we.
        undeclared = undeclared_fields({k: v for k, v in config.items() if k not in ("apiVersion", "kind")},
                                       self.node(rt))
        if undeclared:
            where = f"{namespace}/{name}" if rt.namespaced else name
            raise ApiError(500, f"failed to create typed patch object ({where}; {rt.api_version}, Kind={rt.kind}): "
                                f"{undeclared[0]}: field not declared in schema", "")
        live = self._out(rt, old) if old is not None else None
        merged = ssa.server_side_apply(live, config, self.node(rt), manager=opts.manager, force=opts.force,
                                       api_version=rt.api_version, subresource=opts.subresource,
                                       status_subresource=rt.status)
        merged.setdefault("metadata", {})["name"] = name
        if old is None:
            if opts.subresource:
                raise not_found(rt.plural, rt.group, name)
            return self.create(rt, namespace, merged, opts, managed_by_apply=True), True
        rv = meta.get("resourceVersion")
        if rv and rv != _meta(old).get("resourceVersion"):
            raise conflict(rt.plural, rt.group, name, "the object has been modified; please apply your changes to "
                                                      "the latest version and try again")
        _meta(merged)["resourceVersion"] = _meta(old).get("resourceVersion")
        return self.update(rt, namespace, name, merged, opts, managed=True), False

    # ----- the scale subresource ----------------------------------------------------------------

    def get_scale(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        return scale.to_scale(rt, self.get(rt, namespace, name))

    def update_scale(self, rt: ResourceType, namespace: str, name: str, body: Any,
                     opts: WriteOptions) -> dict[str, Any]:
        """PUT `<object>/scale`: set the desired replicas (a spec change, recorded as subresource scale)."""
        with self.lock:
            current = self.get(rt, namespace, name)
            replicas = scale.desired_replicas(rt, name, body)
            rv = ((body.get("metadata") or {}) if isinstance(body, dict) else {}).get("resourceVersion")
            if rv and rv != current["metadata"].get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name, "the object has been modified; please apply your changes "
                                                          "to the latest version and try again")
            scale.write_path(current, scale.paths(rt).spec_replicas, replicas)
            opts.subresource = "scale"
            return scale.to_scale(rt, self.update(rt, namespace, name, current, opts))

    def patch_scale(self, rt: ResourceType, namespace: str, name: str, content_type: str, raw: bytes,
                    opts: WriteOptions) -> dict[str, Any]:
        """PATCH `<object>/scale`: the patch applies to the Scale view, then as an update of it."""
        import json

        import yaml

        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is None or patch_type == "apply-cbor":
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: {', '.join(t for t in PATCH_TYPES if 'cbor' not in t)}")
        try:
            body = yaml.safe_load(raw or b"{}") if patch_type == "apply" else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding patch: {type(exc).__name__}") from None
        with self.lock:
            current = self.get_scale(rt, namespace, name)
            if patch_type == "json":
                patched = json_patch(current, body)
            elif not isinstance(body, dict):
                raise bad_request("the patch must be a JSON object")
            elif patch_type == "strategic":
                patched = strategic_merge_patch(current, body, Node(None, False))
            else:  # merge, and apply of a Scale configuration, change only what they name
                patched = merge_patch(current, body)
            return self.update_scale(rt, namespace, name, patched, opts)

    def set_status(self, rt: ResourceType, namespace: str, name: str, status: dict[str, Any],
                   manager: str = "sandbox") -> dict[str, Any]:
        """Replace an object's status as a controller would (a status-subresource write)."""
        with self.lock:
            current = self.get(rt, namespace, name)
            current["status"] = copy.deepcopy(status)
            return self.update(rt, namespace, name, current,
                               WriteOptions(manager=manager, subresource="status" if rt.status else ""))

    # ----- deletion ------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any],
               dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """Delete one object; returns (object, gone_now).

        As in kube-apiserver, only the object itself is handled here: it is removed at once when nothing
        holds it, or marked with deletionTimestamp while finalizers (including the propagation policy's
        `foregroundDeletion` / `orphan`) hold it. Dependents, namespace contents and custom resources are
        the emulated controllers' work (`sandbox.collector`), done after the answer, as in a cluster.
        """
        with self.lock:
            okey = (namespace if rt.namespaced else "", name)
            old = self._bucket(rt).get(okey)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            meta = _meta(old)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                                                          f"{pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name,
                               f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                               f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
            if policy not in (None, "Foreground", "Background", "Orphan"):
                raise invalid("DeleteOptions", "", "", [("propagationPolicy", "FieldValueNotSupported",
                              f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
                              '"Orphan"')])
            return self.delete_stored(rt.storage_key, okey, policy, dry_run=dry_run)

    def delete_stored(self, key: Key, okey: ObjKey, policy: str | None,
                      dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """Delete a stored object with a propagation policy (None: the kind's default); (object, gone_now)."""
        with self.lock:
            old = self._objects[key][okey]
            rt = self._type_for_key(key, str(old.get("apiVersion", ""))) or ResourceType(
                # a custom resource whose CRD no longer serves it: still deletable, as in etcd
                group=key[0], version=str(old.get("apiVersion", "")).rpartition("/")[2], plural=key[1],
                kind=str(old.get("kind", "")), namespaced=bool(okey[0]), custom=True)
            meta = _meta(old)
            if policy is None and not meta.get("deletionTimestamp"):
                policy = "Orphan" if key in _ORPHAN_BY_DEFAULT else "Background"
            finalizers = _policy_finalizers(list(meta.get("finalizers") or []), policy)
            if rt.kind == "CustomResourceDefinition" and CRD_CLEANUP not in finalizers:
                finalizers.append(CRD_CLEANUP)
            if not finalizers and not _is_namespace(rt):
                if dry_run:
                    return self._out(rt, old), True
                gone = self._commit(key, okey, copy.deepcopy(old), "DELETED", old)
                if rt.kind == "CustomResourceDefinition":
                    self.registry.replace_custom(meta["name"], [])
                return self._out(rt, gone), True
            if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
                return self._out(rt, old), False
            new = copy.deepcopy(old)
            nmeta = _meta(new)
            if not nmeta.get("deletionTimestamp"):
                nmeta["deletionTimestamp"] = now()
                if "generation" in nmeta:  # marking an object for deletion is a change of its desired state
                    nmeta["generation"] = int(nmeta["generation"]) + 1
                if _is_namespace(rt):
                    new.setdefault("status", {})["phase"] = "Terminating"
                elif rt.kind != "CustomResourceDefinition":
                    nmeta["deletionGracePeriodSeconds"] = 0
                if rt.kind == "CustomResourceDefinition":
                    set_condition(new, {"type": "Terminating", "status": "True", "reason": "InstanceDeletionPending",
                                         "message": "CustomResourceDefinition marked for deletion; CustomResource "
                                                    "deletion will begin soon"})
            if finalizers:
                nmeta["finalizers"] = finalizers
            else:
                nmeta.pop("finalizers", None)
            if dry_run:
                return self._out(rt, new), False
            marked = self._commit(key, okey, new, "MODIFIED", old)
            return self._out(rt, marked), False

    # ----- primitives for the emulated controllers (sandbox.collector) ---------------------------

    def stored(self, key: Key, okey: ObjKey) -> dict[str, Any] | None:
        """The stored object itself (not a copy; read it under `lock`, never change it in place)."""
        return self._objects.get(key, {}).get(okey)

    def alive(self, uid: str) -> bool:
        return uid in self._uids

    def dependents(self, uid: str) -> list[tuple[Key, ObjKey]]:
        """Objects whose ownerReferences name `uid`, in a stable order."""
        return sorted(self._dependents.get(uid, ()))

    def in_namespace(self, namespace: str) -> list[tuple[Key, ObjKey]]:
        return [(key, okey) for key, bucket in sorted(self._objects.items()) if key != _NS_KEY
                for okey in sorted(bucket) if okey[0] == namespace]

    def keys_of(self, key: Key) -> list[ObjKey]:
        return sorted(self._objects.get(key, {}))

    def replace_stored(self, key: Key, okey: ObjKey, change: Callable[[dict[str, Any]], None]) -> None:
        """Write a controller's change to a stored object; removes it if that drops its last finalizer."""
        obj = self._objects[key][okey]
        new = copy.deepcopy(obj)
        change(new)
        if new == obj:
            return
        held = _meta(new).get("finalizers") or (key == _NS_KEY and (new.get("spec") or {}).get("finalizers"))
        if _meta(new).get("deletionTimestamp") and not held:
            self.remove_stored(key, okey)
        else:
            self._commit(key, okey, new, "MODIFIED", obj)

    def remove_stored(self, key: Key, okey: ObjKey) -> None:
        """Remove an object for good (its watchers see DELETED with its last state)."""
        obj = self._objects.get(key, {}).get(okey)
        if obj is not None:
            self._commit(key, okey, copy.deepcopy(obj), "DELETED", obj)
            if key == _CRD_KEY:
                self.registry.replace_custom(_meta(obj)["name"], [])

    # ----- CRDs ----------------------------------------------------------------------------------

    @staticmethod
    def _crd_status(crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        stamp = now()
        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        previous = (crd.get("status") or {}).get("storedVersions") or []
        terminating = [c for c in (crd.get("status") or {}).get("conditions") or [] if c.get("type") == "Terminating"]
        crd["status"] = {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": stamp},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": stamp},
            ],
            "storedVersions": previous + [v for v in storage if v not in previous],
        }
        crd["status"]["conditions"] += terminating

    def _serve_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        types = []
        # a terminating CRD keeps serving its kind until its custom resources are gone
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or spec.get("subresources") or {}
            scale_spec = subresources.get("scale")
            schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
            types.append(ResourceType(
                group=spec.get("group", ""), version=version["name"], plural=names.get("plural", ""),
                kind=names.get("kind", ""), namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular") or str(names.get("kind", "")).lower(),
                short_names=tuple(names.get("shortNames") or ()), status="status" in subresources,
                custom=True, categories=tuple(names.get("categories") or ()), schema=schema,
                scale=ScalePaths(scale_spec.get("specReplicasPath", ".spec.replicas"),
                                 scale_spec.get("statusReplicasPath", ".status.replicas"),
                                 scale_spec.get("labelSelectorPath", "")) if isinstance(scale_spec, dict) else None))
        self.registry.replace_custom(_meta(crd)["name"], types)

    def _crd_terminating(self, rt: ResourceType) -> bool:
        crd = self._objects.get(_CRD_KEY, {}).get(("", f"{rt.plural}.{rt.group}"))
        return crd is not None and bool(_meta(crd).get("deletionTimestamp"))

    # ----- watch support -------------------------------------------------------------------------

    def events_after(self, rv: int) -> list[Event]:
        """Events with resourceVersion > rv; raises 410 when rv is older than the kept history."""
        with self.lock:
            if rv < self.compacted_rv:
                raise ApiError(410, f"too old resource version: {rv} ({self.compacted_rv})", "Expired")
            out = []
            for event in reversed(self.events):
                if event.rv <= rv:
                    break
                out.append(event)
            out.reverse()
            return out


def _patch_invalid(problem: str) -> ApiError:
    """How kube-apiserver refuses a patch whose result does not decode (it quotes the result; we do not)."""
    return ApiError(422, f' "" is invalid: patch: Invalid value: "...": {problem}', "Invalid",
                    causes=[{"reason": "FieldValueInvalid", "field": "patch",
                             "message": f'Invalid value: "...": {problem}'}])


CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
_PROTECTION_FINALIZERS: dict[Key, str] = {("", "persistentvolumeclaims"): PVC_PROTECTION,
                                          ("", "persistentvolumes"): PV_PROTECTION}
# Kinds whose default propagation policy is Orphan (kept by Kubernetes for backward compatibility).
_ORPHAN_BY_DEFAULT: frozenset[Key] = frozenset({("", "replicationcontrollers"), ("batch", "jobs")})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_namespace(rt: ResourceType) -> bool:
    return rt.kind == "Namespace" and not rt.group


def _owner_uids(obj: dict[str, Any] | None) -> set[str]:
    if not obj:
        return set()
    return {str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            if isinstance(r, dict) and r.get("uid")}


def _policy_finalizers(finalizers: list[str], policy: str | None) -> list[str]:
    """The finalizers after a delete with `policy`, as the API server's deletion strategy sets them."""
    if policy == "Foreground":
        finalizers = [f for f in finalizers if f != "orphan"]
        if "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
    elif policy == "Orphan":
        finalizers = [f for f in finalizers if f != "foregroundDeletion"]
        if "orphan" not in finalizers:
            finalizers.append("orphan")
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
    return finalizers


def set_condition(obj: dict[str, Any], condition: dict[str, str]) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    condition = {**condition, "lastTransitionTime": now()}
    for index, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            conditions[index] = condition
            return
    conditions.append(condition)


def drop_finalizer(obj: dict[str, Any], name: str) -> None:
    meta = _meta(obj)
    meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != name]
    if not meta["finalizers"]:
        meta.pop("finalizers")
