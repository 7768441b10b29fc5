"""What the `diff` step produces, in a module of its own so that the step (`diff_step`) and the operation
start it hands over to (`reconcile`) both use it without importing each other both ways.

`Comparison`: desired x live for one app at one commit (per-resource status, health, diffs, prune
candidates). `DiffOutcome`: the step's answer to its task: a summary, the operation chain's first (or
resumed) call, and after how many seconds to diff the app again (a waiting or transient error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.resources import ResourceKey
from shared.health import HealthStatus

if TYPE_CHECKING:
    from shared.operation.machine import StepCall
    from shared.pipeline.desired_state import DesiredState


@dataclass
class Comparison:
    desired: DesiredState
    live: dict[ResourceKey, dict[str, Any]]
    resources: list[dict[str, Any]]
    sync_status: str
    health: HealthStatus
    diffs: dict[str, str]
    in_sync: set[ResourceKey]
    to_prune: list[dict[str, Any]]
    conditions: list[dict[str, Any]]


@dataclass
class DiffOutcome:
    summary: str
    next: StepCall | None = None
    requeue_in: float | None = None
