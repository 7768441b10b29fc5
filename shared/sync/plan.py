"""The sync planner: turns desired and live objects into ordered steps, exactly as Argo CD orders a sync.

A sync runs in steps; a step is one (phase, wave). The planner is pure (no cluster, no Redis), so the
`wave_apply` task, `wavecd admin plan` and the tests all get the same plan from the same input. The
rules, as Argo CD's gitops-engine applies them:

* Phases PreSync, Sync, PostSync run in that order; SyncFail hooks are planned apart
  (`SyncPlan.sync_fail_steps`) and run only when the sync fails. Ordinary resources are in Sync;
  hooks in the phases their annotation names (one task per phase); PreDelete/PostDelete hooks and
  skipped objects are not part of a sync.
* Order: phase, wave (`argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`, default 0), kind
  (see shared.sync.kind_order), name; then group, namespace and action, so the plan is fully deterministic.
* A Namespace goes before the objects in it and a CRD before its custom resources: when one of them
  sorts after an object that needs it (it sits in a later wave or phase), it is moved into the phase
  and wave of the first such object, right before it (gitops-engine's rule); a warning says so.
* Prune (objects the app tracks that git no longer holds) happens in the Sync phase, in the mirror
  wave: the prune waves are reversed, so what was created last is deleted first. `PruneLast=true`
  (app or object) moves a prune after the last Sync wave. Within a step, prunes come first.
  Without prune, or with `Prune=false` / `Delete=false` on the object, the object is listed in
  `SyncPlan.prune_skipped` instead. `Prune=confirm` is planned as a prune; the executor waits for the
  user's confirmation. Live hooks and `Skip` objects are never pruned.
* `ApplyOutOfSyncOnly=true`: objects whose keys are in `in_sync` are left out (hooks and prunes stay).
* A selective sync (`only`) plans only the listed objects and runs no hooks. An empty `only` is a
  full sync, as an empty `resources` list is in Argo CD.
* `create_namespace`: the caller passes the destination namespace when `CreateNamespace=true` and the
  namespace is missing (or its managed metadata changed); unless git holds that Namespace, it becomes
  the first object of the first step, `managed_namespace=True` (Argo CD puts it in PreSync; putting it
  first also covers PreSync hooks in negative waves).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.core.errors import StallingError
from shared.core.resources import SYNC_WAVE_ANNOTATION, ResourceKey, annotation, split_api_version
from shared.sync.hooks import (
    HELM_HOOK_WEIGHT_ANNOTATION,
    POST_SYNC,
    PRE_SYNC,
    SYNC,
    SYNC_FAIL,
    delete_policies,
    describe,
    hook_name,
    hook_types,
    is_hook,
    is_skipped,
    sync_phases,
    unsupported_helm_hooks,
)
from shared.sync.kind_order import kind_order_index
from shared.sync.options import SyncOptions

ACTION_APPLY = "apply"
ACTION_HOOK = "hook"
ACTION_PRUNE = "prune"
ACTION_PRUNE_SKIPPED = "prune-skipped"

PRUNE_SKIPPED_NOT_ENABLED = "ignored (requires pruning)"
PRUNE_SKIPPED_PRUNE_FALSE = "ignored (Prune=false)"
PRUNE_SKIPPED_DELETE_FALSE = "ignored (Delete=false)"
PRUNE_SKIPPED_BAD_OPTIONS = "ignored (invalid sync-options annotation)"

_PHASE_ORDER = {PRE_SYNC: 0, SYNC: 1, POST_SYNC: 2, SYNC_FAIL: 3}
_ACTION_ORDER = {ACTION_PRUNE: 0, ACTION_APPLY: 1, ACTION_HOOK: 2}
_INTEGER = re.compile(r"[+-]?\d+")

CLUSTER_SCOPED_KINDS: frozenset[tuple[str, str]] = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("", "ComponentStatus"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiregistration.k8s.io", "APIService"), ("networking.k8s.io", "IngressClass"),
    ("scheduling.k8s.io", "PriorityClass"), ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"), ("certificates.k8s.io", "CertificateSigningRequest"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
})
"""Built-in cluster-scoped kinds: they never receive the default namespace. Custom cluster-scoped kinds
should reach the planner with their scope already resolved by discovery (no namespace); when they do
not, keys with an empty namespace still match them (see `plan_sync`)."""


@dataclass(frozen=True)
class PlannedObject:
    """One object's task in a step. `options` are its effective, explicitly set sync options."""

    key: ResourceKey
    action: str  # "apply" | "hook" | "prune" | "prune-skipped"
    phase: str
    wave: int
    hook_types: tuple[str, ...] = ()
    delete_policies: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    managed_namespace: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.key.to_dict(), "action": self.action}
        if self.hook_types:
            data["hook_types"] = list(self.hook_types)
        if self.delete_policies:
            data["delete_policies"] = list(self.delete_policies)
        if self.options:
            data["options"] = dict(self.options)
        if self.managed_namespace:
            data["managed_namespace"] = True
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], phase: str, wave: int) -> PlannedObject:
        return cls(
            key=ResourceKey.from_dict(data), action=str(data["action"]), phase=phase, wave=wave,
            hook_types=tuple(data.get("hook_types", ())),
            delete_policies=tuple(data.get("delete_policies", ())),
            options=dict(data.get("options", {})),
            managed_namespace=bool(data.get("managed_namespace", False)),
            reason=str(data.get("reason", "")),
        )

    def __str__(self) -> str:
        return f"{self.action} {self.key}"


@dataclass(frozen=True)
class PlanStep:
    """One (phase, wave) of the sync: its objects in execution order (prunes first, then applies/hooks)."""

    phase: str
    wave: int
    objects: tuple[PlannedObject, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "wave": self.wave, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanStep:
        phase, wave = str(data["phase"]), int(data["wave"])
        return cls(phase, wave, tuple(PlannedObject.from_dict(o, phase, wave) for o in data["objects"]))


@dataclass(frozen=True)
class SyncPlan:
    """The ordered steps of a sync, the SyncFail steps (run only on failure) and what prune skipped."""

    steps: tuple[PlanStep, ...]
    prune_skipped: tuple[PlannedObject, ...] = ()
    warnings: tuple[str, ...] = ()
    sync_fail_steps: tuple[PlanStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "sync_fail_steps": [s.to_dict() for s in self.sync_fail_steps],
            "prune_skipped": [o.to_dict() for o in self.prune_skipped],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncPlan:
        return cls(
            steps=tuple(PlanStep.from_dict(s) for s in data.get("steps", ())),
            prune_skipped=tuple(
                PlannedObject.from_dict(o, SYNC, 0) for o in data.get("prune_skipped", ())
            ),
            warnings=tuple(data.get("warnings", ())),
            sync_fail_steps=tuple(PlanStep.from_dict(s) for s in data.get("sync_fail_steps", ())),
        )

    def objects(self) -> Iterable[PlannedObject]:
        """Every planned object of the normal steps, in execution order."""
        for step in self.steps:
            yield from step.objects


def sync_wave(obj: dict[str, Any]) -> int:
    """The object's wave: `argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`, else 0.

    A value that is not an integer is a StallingError naming the object and the annotation.
    """
    for name in (SYNC_WAVE_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION):
        text = annotation(obj, name)
        if text is None:
            continue
        if not _INTEGER.fullmatch(text.strip()):
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise StallingError(f"{describe(obj)}: annotation {name} must be an integer, got {shown!r}")
        return int(text.strip())
    return 0


@dataclass(eq=False)
class _Task:
    key: ResourceKey
    action: str
    phase: str
    wave: int
    obj: dict[str, Any] | None  # the desired object; None for prunes
    options: SyncOptions
    hook_types: tuple[str, ...] = ()
    delete_policies: tuple[str, ...] = ()

    def sort_key(self) -> tuple[Any, ...]:
        return (_PHASE_ORDER[self.phase], self.wave, kind_order_index(self.key.kind), self.key.name,
                self.key.group, self.key.kind, self.key.namespace, _ACTION_ORDER[self.action])

    def planned(self) -> PlannedObject:
        return PlannedObject(self.key, self.action, self.phase, self.wave, self.hook_types,
                             self.delete_policies, self.options.resource_dict())


class _KeyMatcher:
    """Key membership where a key without namespace in the set matches that object in any namespace,
    as in Argo CD's selective sync (and so cluster-scoped keys match objects that got a default one)."""

    def __init__(self, keys: Iterable[ResourceKey]) -> None:
        self.exact = set(keys)
        self.any_namespace = {(k.group, k.kind, k.name) for k in self.exact if not k.namespace}

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, ResourceKey):
            return False
        return key in self.exact or (key.group, key.kind, key.name) in self.any_namespace


def _object_key(obj: dict[str, Any], default_namespace: str, name: str | None = None) -> ResourceKey:
    """The object's key; objects without a namespace get the default unless their kind is cluster-scoped."""
    meta = obj.get("metadata") or {}
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    kind = str(obj.get("kind", ""))
    key_name = name if name is not None else str(meta.get("name") or "")
    if (group, kind) in CLUSTER_SCOPED_KINDS:
        return ResourceKey(group, kind, "", key_name)
    return ResourceKey(group, kind, str(meta.get("namespace") or default_namespace), key_name)


def _check_object(obj: Any, index: int, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise StallingError(f"{what} #{index} is not a mapping (got {type(obj).__name__})")
    meta = obj.get("metadata")
    if not obj.get("kind") or not obj.get("apiVersion"):
        raise StallingError(f"{what} #{index} has no kind or apiVersion")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise StallingError(f"{what} #{index} ({obj.get('kind')}) has no metadata.name")
    return obj


@dataclass
class _Desired:
    """What the desired objects hold: their tasks, and every key (hooks and skipped objects included)."""

    tasks: list[_Task] = field(default_factory=list)
    resource_keys: set[ResourceKey] = field(default_factory=set)
    hook_slots: set[tuple[ResourceKey, str]] = field(default_factory=set)
    hook_keys: set[ResourceKey] = field(default_factory=set)
    names: set[tuple[str, str, str]] = field(default_factory=set)

    def add_resource(self, key: ResourceKey) -> None:
        if key in self.resource_keys or key in self.hook_keys:
            raise StallingError(f"{key}: appears more than once in the desired manifests")
        self.resource_keys.add(key)
        self.names.add((key.group, key.kind, key.name))

    def add_hook(self, key: ResourceKey, phase: str) -> None:
        if (key, phase) in self.hook_slots or key in self.resource_keys:
            raise StallingError(f"{key}: appears more than once in the desired manifests ({phase} hook)")
        self.hook_slots.add((key, phase))
        self.hook_keys.add(key)
        self.names.add((key.group, key.kind, key.name))

    def holds(self, live_key: ResourceKey) -> bool:
        """Whether git holds the live object; a cluster-scoped live key matches whatever namespace."""
        if live_key in self.resource_keys or live_key in self.hook_keys:
            return True
        return not live_key.namespace and (live_key.group, live_key.kind, live_key.name) in self.names


def _desired_tasks(
    desired: Sequence[dict[str, Any]], app_options: SyncOptions, default_namespace: str,
    selective: _KeyMatcher | None, revision: str, started_at: int, warnings: list[str],
) -> _Desired:
    result = _Desired()
    for index, raw in enumerate(desired):
        obj = _check_object(raw, index, "desired object")
        for hook in unsupported_helm_hooks(obj):
            warnings.append(f"{describe(obj)}: Helm hook {hook!r} is not supported; object skipped")
        if is_skipped(obj):
            key = _object_key(obj, default_namespace)
            if key.name:
                result.add_resource(key)
            continue
        wave = sync_wave(obj)
        types = hook_types(obj)
        if types:
            policies = delete_policies(obj)
            for phase in sync_phases(obj):
                key = _object_key(obj, default_namespace, hook_name(obj, phase, revision=revision,
                                                                    started_at=started_at))
                result.add_hook(key, phase)
                if selective is not None:
                    continue  # a selective sync runs no hooks
                options = app_options.for_object(obj, default_namespace)
                warnings.extend(options.warnings)
                result.tasks.append(_Task(key, ACTION_HOOK, phase, wave, obj, options, types, policies))
            continue
        key = _object_key(obj, default_namespace)
        result.add_resource(key)
        if selective is not None and key not in selective:
            continue
        options = app_options.for_object(obj, default_namespace)
        warnings.extend(options.warnings)
        result.tasks.append(_Task(key, ACTION_APPLY, SYNC, wave, obj, options))
    return result


def _prune_tasks(
    live_tracked: Sequence[dict[str, Any]], desired: _Desired, app_options: SyncOptions, prune: bool,
    selective: _KeyMatcher | None, warnings: list[str],
) -> tuple[list[_Task], list[PlannedObject]]:
    tasks: list[_Task] = []
    skipped: list[PlannedObject] = []
    seen: set[ResourceKey] = set()
    for index, raw in enumerate(live_tracked):
        obj = _check_object(raw, index, "live object")
        key = _object_key(obj, "")
        if key in seen or desired.holds(key):
            continue
        seen.add(key)
        if selective is not None and key not in selective:
            continue
        try:
            if is_hook(obj) or is_skipped(obj):
                continue
        except StallingError as err:  # a live object with a bad hook annotation: treat it as a hook
            warnings.append(f"{err}; not pruned")
            continue
        try:
            wave = sync_wave(obj)
        except StallingError as err:
            warnings.append(f"{err}; pruned as wave 0")
            wave = 0
        try:
            options = app_options.for_object(obj)
        except StallingError as err:  # never prune an object whose own options cannot be read
            warnings.append(str(err))
            skipped.append(PlannedObject(key, ACTION_PRUNE_SKIPPED, SYNC, wave,
                                         reason=PRUNE_SKIPPED_BAD_OPTIONS))
            continue
        warnings.extend(options.warnings)
        reason = ""
        if not prune:
            reason = PRUNE_SKIPPED_NOT_ENABLED
        elif options.prune_disabled:
            reason = PRUNE_SKIPPED_PRUNE_FALSE
        elif options.delete_disabled:
            reason = PRUNE_SKIPPED_DELETE_FALSE
        if reason:
            skipped.append(PlannedObject(key, ACTION_PRUNE_SKIPPED, SYNC, wave,
                                         options=options.resource_dict(), reason=reason))
            continue
        tasks.append(_Task(key, ACTION_PRUNE, SYNC, wave, None, options))
    return tasks, sorted(skipped, key=lambda o: (o.key.group, o.key.kind, o.key.namespace, o.key.name))


def _reorder_prune_waves(tasks: list[_Task]) -> None:
    """Mirror the prune waves (lowest <-> highest), then move PruneLast prunes after the last Sync wave."""
    prunes = [t for t in tasks if t.action == ACTION_PRUNE]
    waves = sorted({t.wave for t in prunes})
    mirror = dict(zip(waves, reversed(waves), strict=True))
    for task in prunes:
        task.wave = mirror[task.wave]
    last_wave = max([0, *(t.wave for t in tasks if t.phase == SYNC)]) + 1
    for task in prunes:
        if task.options.prune_last:
            task.wave = last_wave


def _crd_target(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(group, kind) that a CRD object defines, or None if the object is not a well-formed CRD."""
    if obj.get("kind") != "CustomResourceDefinition":
        return None
    if split_api_version(str(obj.get("apiVersion", "")))[0] != "apiextensions.k8s.io":
        return None
    spec = obj.get("spec") or {}
    names = spec.get("names") if isinstance(spec, dict) else None
    if not isinstance(names, dict) or not spec.get("group") or not names.get("kind"):
        return None
    return str(spec["group"]), str(names["kind"])


def _bubble_dependencies(tasks: list[_Task], warnings: list[str]) -> list[_Task]:
    """Move each Namespace/CRD before the first task that needs it, into that task's phase and wave."""
    rules = (
        (lambda t: t.key.name if t.key.group == "" and t.key.kind == "Namespace" else None,
         lambda t: t.key.namespace or None, "objects in it"),
        (lambda t: _crd_target(t.obj) if t.obj is not None else None,
         lambda t: (t.key.group, t.key.kind), "its custom resources"),
    )
    for is_dependency, needs, what in rules:
        ordered: list[_Task] = []
        first_user: dict[Any, _Task] = {}
        for task in tasks:
            if task.action == ACTION_PRUNE:
                ordered.append(task)
                continue
            dep = is_dependency(task)
            if dep is not None and dep in first_user:
                user = first_user[dep]
                if (task.phase, task.wave) != (user.phase, user.wave):
                    warnings.append(f"{task.key} moved from {task.phase} wave {task.wave} to {user.phase} "
                                    f"wave {user.wave}, before {user.key}: it must exist before {what}")
                task.phase, task.wave = user.phase, user.wave
                ordered.insert(next(i for i, t in enumerate(ordered) if t is user), task)
                continue
            ref = needs(task)
            if ref is not None and dep is None:
                first_user.setdefault(ref, task)
            ordered.append(task)
        tasks = ordered
    return tasks


def _group_steps(tasks: Iterable[_Task]) -> list[PlanStep]:
    steps: list[PlanStep] = []
    current: list[_Task] = []

    def flush() -> None:
        if current:
            prunes = [t.planned() for t in current if t.action == ACTION_PRUNE]
            others = [t.planned() for t in current if t.action != ACTION_PRUNE]
            steps.append(PlanStep(current[0].phase, current[0].wave, tuple(prunes + others)))
            current.clear()

    for task in tasks:
        if current and (current[0].phase, current[0].wave) != (task.phase, task.wave):
            flush()
        current.append(task)
    flush()
    return steps


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def plan_sync(
    desired: Sequence[dict[str, Any]],
    *,
    live_tracked: Sequence[dict[str, Any]] = (),
    prune: bool = False,
    options: SyncOptions | None = None,
    in_sync: Collection[ResourceKey] = (),
    only: Collection[ResourceKey] | None = None,
    default_namespace: str = "",
    create_namespace: str | None = None,
    revision: str = "",
    started_at: int = 0,
) -> SyncPlan:
    """Plan a sync of `desired` (rendered objects, hooks included) against the app's `live_tracked`.

    `prune` is the operation's prune flag; `options` the app-level sync options; `in_sync` the keys the
    diff found in sync (used with ApplyOutOfSyncOnly); `only` the keys of a selective sync (an empty
    namespace matches any); `default_namespace` the destination namespace for objects without one;
    `create_namespace` the destination namespace to create (see the module docstring); `revision` and
    `started_at` (Unix seconds) name hooks that have only generateName. Bad input raises StallingError.
    """
    app_options = options or SyncOptions()
    warnings: list[str] = list(app_options.warnings)
    selective = _KeyMatcher(only) if only else None

    wanted = _desired_tasks(desired, app_options, default_namespace, selective, revision, started_at,
                            warnings)
    prune_tasks, prune_skipped = _prune_tasks(live_tracked, wanted, app_options, prune, selective, warnings)
    tasks = wanted.tasks + prune_tasks
    _reorder_prune_waves(tasks)
    tasks.sort(key=_Task.sort_key)
    tasks = _bubble_dependencies(tasks, warnings)

    if app_options.apply_out_of_sync_only and in_sync:
        synced = _KeyMatcher(in_sync)
        tasks = [t for t in tasks if t.action != ACTION_APPLY or t.key not in synced]

    steps = _group_steps(t for t in tasks if t.phase != SYNC_FAIL)
    fail_steps = _group_steps(t for t in tasks if t.phase == SYNC_FAIL)

    if create_namespace:
        steps = _with_managed_namespace(steps, create_namespace, wanted, app_options, warnings)

    return SyncPlan(tuple(steps), tuple(prune_skipped), _dedupe(warnings), tuple(fail_steps))


def _with_managed_namespace(steps: list[PlanStep], namespace: str, desired: _Desired,
                            app_options: SyncOptions, warnings: list[str]) -> list[PlanStep]:
    if not app_options.create_namespace:
        warnings.append(f"namespace {namespace!r} not created: sync option CreateNamespace=true is not set")
        return steps
    key = ResourceKey("", "Namespace", "", namespace)
    if key in desired.resource_keys:
        return steps
    if not steps:
        managed = PlannedObject(key, ACTION_APPLY, PRE_SYNC, 0, managed_namespace=True)
        return [PlanStep(PRE_SYNC, 0, (managed,))]
    first = steps[0]
    managed = PlannedObject(key, ACTION_APPLY, first.phase, first.wave, managed_namespace=True)
    return [replace(first, objects=(managed, *first.objects)), *steps[1:]]


def managed_namespace_object(name: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Namespace body for CreateNamespace, with `managedNamespaceMetadata` labels and annotations."""
    meta: dict[str, Any] = {"name": name}
    for field_name in ("labels", "annotations"):
        values = (metadata or {}).get(field_name)
        if values:
            meta[field_name] = {str(k): str(v) for k, v in dict(values).items()}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
