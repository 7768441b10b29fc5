"""Desired x live: which live object each desired object is compared with, and what git no longer holds.

The `diff` step and `wavecd admin diff|plan` must agree on this, object for object: which live object
stands for a desired one, which live objects are prune candidates, and whether each candidate
`requiresPruning`. This is gitops-engine's `sync.Reconcile(target, live)` for WaveCD: pure (no cluster,
no Redis), given objects already placed in their namespaces, it answers

* one `Pair` per desired object, in desired order, with the live object found under its key (or, for a
  kind the caller could only guess was namespaced, under the same group/kind/name without a namespace:
  the live object knows the kind's scope better than a guess);
* one `Pair` per prune candidate: a live object no desired object claims, in the order of `inventory`
  (the keys the app applied, as the pipeline records them) or else of `live`, skipped when its tracking
  id names another app (an app never prunes what another app tracks). `requires_pruning` is false when
  the object says `argocd.argoproj.io/sync-options: Prune=false`;
* `foreign`: for a desired object whose live object another app tracks, that app's name (Argo CD's
  SharedResourceWarning).

A desired object given twice is an error of the manifests (StallingError), as Argo CD refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import StallingError
from shared.core.resources import ResourceKey, tracking_app_of
from shared.diff.compare import requires_pruning


@dataclass(frozen=True)
class Pair:
    """One object of the comparison: `desired` None for a prune candidate, `live` None when missing live."""

    key: ResourceKey
    desired: dict[str, Any] | None
    live: dict[str, Any] | None
    requires_pruning: bool = False
    foreign_owner: str | None = None  # another app's name when its tracking id is on `live`


@dataclass
class Pairing:
    pairs: list[Pair] = field(default_factory=list)      # one per desired object, in desired order
    prune: list[Pair] = field(default_factory=list)      # live objects git no longer holds, this app's

    @property
    def shared(self) -> list[Pair]:
        """Desired objects whose live counterpart another app tracks."""
        return [p for p in self.pairs if p.foreign_owner is not None]

    def all(self) -> list[Pair]:
        return [*self.pairs, *self.prune]


def _cluster_scoped_twin(key: ResourceKey) -> ResourceKey:
    return ResourceKey(key.group, key.kind, "", key.name)


def owned_elsewhere(live: Mapping[str, Any], app: str | None) -> str | None:
    """The other app whose tracking id `live` carries; None when untracked, this app's, or `app` is None."""
    owner = tracking_app_of(dict(live))
    if app is None or owner in (None, app):
        return None
    return owner


def pair_objects(desired: Sequence[dict[str, Any]], live: Mapping[ResourceKey, dict[str, Any]], *,
                 app: str | None, inventory: Iterable[ResourceKey] | None = None) -> Pairing:
    """Pair `desired` with `live` (see the module docstring). `app` None: no ownership filter (admin without
    --app). `inventory` None: every live object is a prune candidate unless a desired object claims it."""
    result = Pairing()
    seen: set[ResourceKey] = set()
    claimed: set[ResourceKey] = set()
    for obj in desired:
        key = ResourceKey.from_object(obj)
        if key in seen:
            raise StallingError(f"{key} appears more than once in the desired objects")
        seen.add(key)
        live_key = key
        if key not in live and key.namespace and _cluster_scoped_twin(key) in live:
            live_key = _cluster_scoped_twin(key)
        live_obj = live.get(live_key)
        if live_obj is not None:
            claimed.add(live_key)
        owner = owned_elsewhere(live_obj, app) if live_obj is not None else None
        result.pairs.append(Pair(key, obj, live_obj, foreign_owner=owner))
    candidates = list(live) if inventory is None else list(dict.fromkeys(inventory))
    for key in candidates:
        if key in seen or key in claimed:
            continue
        live_obj = live.get(key)
        if live_obj is None or owned_elsewhere(live_obj, app) is not None:
            continue
        result.prune.append(Pair(key, None, live_obj, requires_pruning=requires_pruning(live_obj)))
    return result
