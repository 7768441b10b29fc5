"""Argo CD's sync options, parsed once into typed values: app-level, per resource, and merged.

Users set them in `spec.syncPolicy.syncOptions` (a list of `Name=value`) and per object in the
`argocd.argoproj.io/sync-options` annotation (comma separated); the object's value wins. Every layer
that acts on an option (planner, apply, prune, diff) asks this module, so a value is validated in one
place and a typo is reported precisely instead of being silently ignored.

* An unknown option name is ignored with a warning (newer Argo CD options must not break a sync).
* A known option with a value outside its allowed set is a StallingError naming where it was found.
* Options that only make sense for the whole app (CreateNamespace, ApplyOutOfSyncOnly,
  PrunePropagationPolicy, FailOnSharedResource, RespectIgnoreDifferences) are ignored with a warning
  when found on an object.
* `helm.sh/resource-policy: keep` on an object means `Delete=false`, as in Argo CD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.core.errors import StallingError
from shared.core.models import SyncPolicy
from shared.core.resources import SYNC_OPTIONS_ANNOTATION, ResourceKey, annotation

HELM_RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy"

_BOOL = ("true", "false")


@dataclass(frozen=True, slots=True)
class _OptionSpec:
    allowed: tuple[str, ...]
    default: str
    app_only: bool = False


OPTION_SPECS: Mapping[str, _OptionSpec] = MappingProxyType({
    "CreateNamespace": _OptionSpec(_BOOL, "false", app_only=True),
    "ApplyOutOfSyncOnly": _OptionSpec(_BOOL, "false", app_only=True),
    "PruneLast": _OptionSpec(_BOOL, "false"),
    "Replace": _OptionSpec(_BOOL, "false"),
    "Force": _OptionSpec(_BOOL, "false"),
    "ServerSideApply": _OptionSpec(_BOOL, "true"),
    "Validate": _OptionSpec(_BOOL, "true"),
    "PrunePropagationPolicy": _OptionSpec(
        ("foreground", "background", "orphan"), "foreground", app_only=True
    ),
    "FailOnSharedResource": _OptionSpec(_BOOL, "false", app_only=True),
    "Prune": _OptionSpec(("true", "false", "confirm"), "true"),
    "Delete": _OptionSpec(("true", "false", "confirm"), "true"),
    "SkipDryRunOnMissingResource": _OptionSpec(_BOOL, "false"),
    "RespectIgnoreDifferences": _OptionSpec(_BOOL, "false", app_only=True),
})
"""Every option WaveCD understands, its allowed values (lower case) and its default."""


def _canonical(name: str, value: str, where: str) -> str:
    spec = OPTION_SPECS[name]
    normalized = value.strip().lower()
    if normalized not in spec.allowed:
        shown = f"{name}={value}" if value else name
        raise StallingError(
            f"{where}: invalid sync option {shown!r}: {name} must be one of {', '.join(spec.allowed)}"
        )
    return normalized


def _split_items(items: Iterable[str]) -> list[tuple[str, str, bool]]:
    """(name, value, had_equals) for each non-empty `Name=value` item."""
    result = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        name, equals, value = text.partition("=")
        result.append((name.strip(), value.strip(), bool(equals)))
    return result


@dataclass(frozen=True)
class SyncOptions:
    """Explicitly set sync options (canonical lower-case values) plus the warnings met while parsing.

    Accessors return the effective value: the explicit one, else Argo CD's default (WaveCD's default for
    ServerSideApply is true).
    """

    values: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @classmethod
    def parse(cls, items: Iterable[str] | None, *, where: str = "spec.syncPolicy.syncOptions") -> SyncOptions:
        """App-level options from a list of `Name=value` strings."""
        values: dict[str, str] = {}
        warnings: list[str] = []
        for name, value, had_equals in _split_items(items or ()):
            if name not in OPTION_SPECS:
                warnings.append(f"{where}: unknown sync option {name!r} ignored")
                continue
            if not had_equals:
                raise StallingError(f"{where}: sync option {name!r} needs a value ({name}=...)")
            values[name] = _canonical(name, value, where)
        return cls(values, tuple(warnings))

    @classmethod
    def from_policy(cls, policy: SyncPolicy | None) -> SyncOptions:
        return cls.parse(policy.sync_options if policy is not None else ())

    def merged_with(self, annotation_text: str | None, *, where: str = "") -> SyncOptions:
        """These options overridden by an object's `sync-options` annotation text (the object wins).

        `where` names the object in messages (e.g. `Deployment default/web`). The result's warnings are
        only the annotation's own, so app-level warnings are not repeated for every object.
        """
        label = f"{where}: annotation {SYNC_OPTIONS_ANNOTATION}" if where else SYNC_OPTIONS_ANNOTATION
        values = dict(self.values)
        warnings: list[str] = []
        for name, value, had_equals in _split_items((annotation_text or "").split(",")):
            if name not in OPTION_SPECS:
                warnings.append(f"{label}: unknown sync option {name!r} ignored")
                continue
            if not had_equals:
                raise StallingError(f"{label}: sync option {name!r} needs a value ({name}=...)")
            canonical = _canonical(name, value, label)
            if OPTION_SPECS[name].app_only:
                warnings.append(
                    f"{label}: sync option {name!r} applies to the whole Application only; ignored"
                )
                continue
            values[name] = canonical
        return SyncOptions(values, tuple(warnings))

    def for_object(self, obj: dict[str, Any], default_namespace: str = "") -> SyncOptions:
        """Effective options of one object: its annotation over these, and Helm's `resource-policy: keep`."""
        where = str(ResourceKey.from_object(obj, default_namespace))
        own = SyncOptions().merged_with(annotation(obj, SYNC_OPTIONS_ANNOTATION), where=where)
        values = dict(self.values)
        if (annotation(obj, HELM_RESOURCE_POLICY_ANNOTATION) or "").strip().lower() == "keep":
            values["Delete"] = "false"
        values.update(own.values)
        return SyncOptions(values, own.warnings)

    def get(self, name: str) -> str:
        """The effective value of a known option; KeyError for an unknown name (a programming error)."""
        return self.values.get(name, OPTION_SPECS[name].default)

    def _flag(self, name: str) -> bool:
        return self.get(name) == "true"

    def as_dict(self) -> dict[str, str]:
        """Only the explicitly set options, `{"PruneLast": "true"}`: short enough for task results."""
        return dict(sorted(self.values.items()))

    def resource_dict(self) -> dict[str, str]:
        """The explicitly set options that act on a single object (app-wide ones left out)."""
        return {name: value for name, value in self.as_dict().items() if not OPTION_SPECS[name].app_only}

    @property
    def create_namespace(self) -> bool:
        return self._flag("CreateNamespace")

    @property
    def apply_out_of_sync_only(self) -> bool:
        return self._flag("ApplyOutOfSyncOnly")

    @property
    def prune_last(self) -> bool:
        return self._flag("PruneLast")

    @property
    def replace(self) -> bool:
        return self._flag("Replace")

    @property
    def force(self) -> bool:
        return self._flag("Force")

    @property
    def server_side_apply(self) -> bool:
        return self._flag("ServerSideApply")

    @property
    def validate(self) -> bool:
        return self._flag("Validate")

    @property
    def prune_propagation_policy(self) -> str:
        """`foreground` (default), `background` or `orphan`: the DeleteOptions propagationPolicy."""
        return self.get("PrunePropagationPolicy")

    @property
    def fail_on_shared_resource(self) -> bool:
        return self._flag("FailOnSharedResource")

    @property
    def prune_disabled(self) -> bool:
        """`Prune=false`: never prune this object (it is reported as PruneSkipped)."""
        return self.get("Prune") == "false"

    @property
    def prune_requires_confirmation(self) -> bool:
        """`Prune=confirm`: prune only after the user confirms."""
        return self.get("Prune") == "confirm"

    @property
    def delete_disabled(self) -> bool:
        """`Delete=false` (or Helm's `resource-policy: keep`): keep the object."""
        return self.get("Delete") == "false"

    @property
    def delete_requires_confirmation(self) -> bool:
        return self.get("Delete") == "confirm"

    @property
    def skip_dry_run_on_missing_resource(self) -> bool:
        return self._flag("SkipDryRunOnMissingResource")

    @property
    def respect_ignore_differences(self) -> bool:
        return self._flag("RespectIgnoreDifferences")
