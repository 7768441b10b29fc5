"""Per-resource comparison of desired (git, or a server-side dry run) with live: Synced or OutOfSync.

The rule, as Argo CD applies it: desired must be a subset of live. Fields only live has are defaults
the API server or controllers filled in, not drift, unless WaveCD itself applied them earlier and git
no longer sets them (server-side apply records that in live's `managedFields` under our manager;
`kubectl.kubernetes.io/last-applied-configuration` serves when that is missing, which makes the comparison
Argo CD's three-way diff for objects kubectl or Argo CD's client-side apply put there before WaveCD: a field
in the last-applied configuration that git dropped is drift, a field neither ever held is not, and the
lists of built-in kinds merge by key as kubectl's strategic merge does, so an injected sidecar is no
drift; see `shared.diff.managed_fields.applied_fields_v1`). Around that rule:
server bookkeeping and `status` are dropped (`shared.diff.normalize`), quantities compare by value where
Kubernetes expects a quantity (`shared.diff.quantity`), `{}`/`[]`/null in desired equal an absent live
field, `ignoreDifferences` removes fields from both sides (`shared.diff.ignore_differences`), and Secret
values are masked before any text is made (`shared.diff.masking`).

The comparison is one walk over desired that yields both sides reduced to what was compared, so the
status and the readable diff never disagree. The diff text itself is made lazily, only when asked.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from shared.core.models import ResourceIgnoreDifferences
from shared.core.resources import SYNC_OPTIONS_ANNOTATION, ResourceKey, annotation, parse_options
from shared.diff.ignore_differences import apply_ignore_differences, matching_rules
from shared.diff.managed_fields import ManagedFieldsError, applied_fields_v1, parse_item_key
from shared.diff.masking import mask_object, mask_secret_pair
from shared.diff.normalize import normalize, strip_empty
from shared.diff.quantity import quantity_equal

SYNCED = "Synced"
OUT_OF_SYNC = "OutOfSync"
DEFAULT_MANAGER = "wavecd"

# Scalars directly under a map with one of these keys are Kubernetes quantities: container
# resources.requests/limits, ResourceQuota hard, LimitRange max/min/default/defaultRequest/
# maxLimitRequestRatio, PV capacity, pod overhead. Plus the fields named in QUANTITY_FIELDS.
QUANTITY_PARENTS = frozenset({
    "requests", "limits", "hard", "capacity", "allocatable", "overhead", "max", "min", "default",
    "defaultRequest", "maxLimitRequestRatio",
})
QUANTITY_FIELDS = frozenset({"sizeLimit"})


try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # PyYAML without libyaml
    _Dumper = yaml.SafeDumper


def to_yaml(obj: dict[str, Any] | None) -> str:
    """The YAML the diff is made of: sorted keys, block style; "" for no object."""
    if obj is None:
        return ""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


def unified_diff(live: dict[str, Any] | None, desired: dict[str, Any] | None) -> str:
    """A unified diff from live to desired (`--- live` / `+++ desired`). Mask Secrets first."""
    lines = difflib.unified_diff(to_yaml(live).splitlines(keepends=True),
                                 to_yaml(desired).splitlines(keepends=True), "live", "desired")
    return "".join(lines)


@dataclass(eq=False)
class ResourceDiff:
    """The comparison of one resource. `normalized_*` are what was compared, Secret values masked."""

    key: ResourceKey
    status: str
    requires_pruning: bool = False
    normalized_desired: dict[str, Any] | None = None
    normalized_live: dict[str, Any] | None = None
    _text: str | None = field(default=None, init=False, repr=False)

    @property
    def synced(self) -> bool:
        return self.status == SYNCED

    def diff_text(self) -> str:
        """Masked unified diff of the normalized YAML, made on first call; "" when Synced."""
        if self.status == SYNCED:
            return ""
        if self._text is None:
            self._text = unified_diff(self.normalized_live, self.normalized_desired)
        return self._text

    def summary(self) -> dict[str, Any]:
        """Key and status only: safe for task results and logs (no manifest bodies)."""
        return {**self.key.to_dict(), "status": self.status, "requiresPruning": self.requires_pruning}


def requires_pruning(live: dict[str, Any]) -> bool:
    """Whether a tracked live object that git no longer holds should be deleted by a pruning sync:
    True unless annotated `argocd.argoproj.io/sync-options: Prune=false`."""
    options = parse_options(annotation(live, SYNC_OPTIONS_ANNOTATION))
    return options.get("Prune", "").lower() != "false"


def prune_diff(live: dict[str, Any]) -> ResourceDiff:
    """A live object tracked by the app but gone from git: OutOfSync, everything shown as removed."""
    shown = mask_object(strip_empty(normalize(live)))
    return ResourceDiff(ResourceKey.from_object(live), OUT_OF_SYNC, requires_pruning=requires_pruning(live),
                        normalized_live=shown)


def our_fields(live: dict[str, Any], manager: str = DEFAULT_MANAGER) -> dict[str, Any] | None:
    """What `manager` applied to `live`, as raw fieldsV1: its server-side Apply entry, else the
    last-applied annotation (client-side apply). None when neither says anything or it is unreadable."""
    try:
        return applied_fields_v1(live, manager)
    except ManagedFieldsError:
        return None  # unreadable bookkeeping: fall back to the plain subset rule


def compare(desired: dict[str, Any] | None, live: dict[str, Any] | None, *,
            ignore: Sequence[ResourceIgnoreDifferences] = (), manager: str = DEFAULT_MANAGER) -> ResourceDiff:
    """Compare one resource. `desired` None: a tracked object no longer in git (see `prune_diff`);
    `live` None: missing from the cluster. `ignore`: app-level and global rules together; those not
    matching the resource are skipped. The caller fills desired's `metadata.namespace` beforehand."""
    if desired is None:
        if live is None:
            raise ValueError("compare() needs a desired or a live object, got neither")
        return prune_diff(live)
    norm_desired = normalize(desired)
    key = ResourceKey.from_object(norm_desired)
    rules = matching_rules(key, ignore) if ignore else []
    if live is None:
        norm_desired, _ = apply_ignore_differences(norm_desired, None, rules)
        shown, _ = mask_secret_pair(strip_empty(norm_desired), None)
        return ResourceDiff(key, OUT_OF_SYNC, normalized_desired=shown)
    norm_live = normalize(live)
    norm_desired = _default_namespace(norm_desired, norm_live)
    if rules:
        norm_desired, norm_live = apply_ignore_differences(norm_desired, norm_live, rules, raw_live=live)
        assert norm_desired is not None and norm_live is not None
    try:
        out_desired, out_live, equal = _compare_map(norm_desired, norm_live, our_fields(live, manager), "")
    except ManagedFieldsError:  # unreadable bookkeeping (parsed lazily): the plain subset rule
        out_desired, out_live, equal = _compare_map(norm_desired, norm_live, None, "")
    out_desired, out_live = mask_secret_pair(out_desired, out_live)
    return ResourceDiff(key, SYNCED if equal else OUT_OF_SYNC, normalized_desired=out_desired,
                        normalized_live=out_live)


def _default_namespace(desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A namespace in desired that live lacks (a cluster-scoped kind) is not compared."""
    meta, live_meta = desired.get("metadata"), live.get("metadata")
    if isinstance(meta, dict) and meta.get("namespace") and isinstance(live_meta, dict) \
            and not live_meta.get("namespace"):
        return {**desired, "metadata": {k: v for k, v in meta.items() if k != "namespace"}}
    return desired


def _scalar_equal(desired: Any, live: Any, quantity: bool) -> bool:
    if desired == live:
        # 1 == 1.0 is equal JSON; True == 1 is not.
        return type(desired) is type(live) or (type(desired) is not bool and type(live) is not bool)
    if quantity and not isinstance(desired, bool) and not isinstance(live, bool):
        return quantity_equal(desired, live)
    return False


def _owned_child(owned: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not owned:
        return None
    child = owned.get("f:" + name)
    return child if type(child) is dict else None


def _compare_value(dv: Any, lv: Any, owned: dict[str, Any] | None, name: str, quantity: bool
                   ) -> tuple[Any, Any, bool]:
    tdv = type(dv)
    if tdv is dict:
        if type(lv) is dict:
            return _compare_map(dv, lv, owned, name)
        return strip_empty(dv), lv, False
    if tdv is list:
        if type(lv) is list:
            return _compare_list(dv, lv, owned)
        return strip_empty(dv), lv, False
    if _scalar_equal(dv, lv, quantity or name in QUANTITY_FIELDS):
        return dv, dv, True  # live shown in desired's spelling: `1` vs `1000m` is no diff line
    return dv, lv, False


def _compare_map(desired: dict[str, Any], live: dict[str, Any], owned: dict[str, Any] | None, name: str
                 ) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """`owned`: raw fieldsV1 of this map as our manager applied it (`f:<field>` keys), or None."""
    out_d: dict[str, Any] = {}
    out_l: dict[str, Any] = {}
    equal = True
    quantity = name in QUANTITY_PARENTS
    for k, dv in desired.items():
        if dv is None:
            continue  # null in desired: not declared
        lv = live.get(k)
        if lv is None:
            if (type(dv) is dict or type(dv) is list) and not dv:
                continue  # `{}` / `[]` in desired equals an absent field
            out_d[k] = strip_empty(dv)
            equal = False
            continue
        sd, sl, eq = _compare_value(dv, lv, _owned_child(owned, k), k, quantity)
        out_d[k] = sd
        out_l[k] = sl
        if not eq:
            equal = False
    if owned:
        for fk in owned:
            if fk[:2] != "f:":
                continue
            k = fk[2:]
            if k not in out_d and live.get(k) is not None and desired.get(k) is None:
                out_l[k] = live[k]  # we applied it earlier, git no longer sets it: drift
                equal = False
    return out_d, out_l, equal


def _compare_list(desired: list[Any], live: list[Any], owned: dict[str, Any] | None
                  ) -> tuple[list[Any], list[Any], bool]:
    if owned:
        keyed = [(key, sub) for raw, sub in owned.items() if raw[:2] == "k:"
                 and type(key := parse_item_key(raw)) is dict and type(sub) is dict]
        if keyed and all(type(i) is dict for i in desired) and all(type(i) is dict for i in live):
            return _compare_keyed_list(desired, live, keyed)
        values = [parse_item_key(raw) for raw in owned if raw[:2] == "v:"]
        if values:
            return _compare_set_list(desired, live, values)
    # Atomic or unknown list: item by item; extra live items are differences (as in Argo CD).
    out_d: list[Any] = []
    out_l: list[Any] = []
    equal = len(desired) == len(live)
    for dv, lv in zip(desired, live, strict=False):
        if dv is None or lv is None:
            sd, sl, eq = dv, lv, dv is lv
        else:
            sd, sl, eq = _compare_value(dv, lv, None, "", False)
        out_d.append(sd)
        out_l.append(sl)
        if not eq:
            equal = False
    n = len(out_d)
    out_d.extend(strip_empty(desired[n:]))
    out_l.extend(live[n:])
    return out_d, out_l, equal


def _json_equal(a: Any, b: Any) -> bool:
    return a == b and (type(a) is type(b) or (type(a) is not bool and type(b) is not bool))


def _item_matches(key_fields: set[str], desired_item: dict[str, Any], live_item: dict[str, Any]) -> bool:
    seen = False
    for name in key_fields:
        dv = desired_item.get(name)
        if dv is None:
            continue  # a key field the server defaults (e.g. protocol): not required
        if not _json_equal(dv, live_item.get(name)):
            return False
        seen = True
    return seen


def _owned_item(keyed: list[tuple[dict[str, Any], dict[str, Any]]], item: dict[str, Any]
                ) -> dict[str, Any] | None:
    """The fieldsV1 of the `k:` entry naming this live item (all its key fields equal), or None."""
    for key, sub in keyed:
        if all(_json_equal(item.get(name), value) for name, value in key.items()):
            return sub
    return None


def _compare_keyed_list(desired: list[dict[str, Any]], live: list[dict[str, Any]],
                        keyed: list[tuple[dict[str, Any], dict[str, Any]]]
                        ) -> tuple[list[Any], list[Any], bool]:
    """A list merged by key (containers by name, ports by containerPort/protocol): items pair up by
    key, whatever their order; a live item nobody in git declares is drift only if we own it."""
    key_fields = {name for key, _ in keyed for name in key}
    used = [False] * len(live)
    out_d: list[Any] = []
    out_l: list[Any] = []
    equal = True
    for di in desired:
        for j, li in enumerate(live):
            if not used[j] and _item_matches(key_fields, di, li):
                used[j] = True
                sd, sl, eq = _compare_map(di, li, _owned_item(keyed, li), "")
                out_d.append(sd)
                out_l.append(sl)
                if not eq:
                    equal = False
                break
        else:
            out_d.append(strip_empty(di))
            equal = False
    for j, li in enumerate(live):
        if not used[j] and _owned_item(keyed, li) is not None:
            out_l.append(li)
            equal = False
    return out_d, out_l, equal


def _compare_set_list(desired: list[Any], live: list[Any], owned_values: list[Any]
                      ) -> tuple[list[Any], list[Any], bool]:
    """A list of unique values (finalizers): each desired value must be in live; an extra live value
    is drift only if we own it (`v:<json>` in our fields)."""
    used = [False] * len(live)
    out_l: list[Any] = []
    equal = True
    for dv in desired:
        for j, lv in enumerate(live):
            if not used[j] and _json_equal(dv, lv):
                used[j] = True
                out_l.append(dv)
                break
        else:
            equal = False
    for j, lv in enumerate(live):
        if not used[j] and any(_json_equal(lv, v) for v in owned_values):
            out_l.append(lv)
            equal = False
    return list(desired), out_l, equal
