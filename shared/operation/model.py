"""An operation (a sync) as Argo CD shows it, plus the progress WaveCD needs to resume it anywhere.

The document lives in Redis under the app's state and is mirrored into the Application's
`status.operationState`. Its `progress` part records which step ran and what it did, so any worker that
picks up the next task (or a redelivered one) knows exactly where the chain is: this is what makes
every step re-entrant.

These are pydantic models dumped with Argo CD's field names (camelCase aliases: `operation.sync.revision`,
`syncResult`, `startedAt`, `retryCount`...), so the stored JSON, the API and `status.operationState` keep
Argo CD's shape while the code reads typed attributes. Unknown keys are kept (`extra="allow"`), so a
document written by a newer WaveCD survives a round trip through an older one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.core.models import Application
from shared.core.resources import ResourceKey


class Phase(StrEnum):
    """Argo CD's OperationPhase."""

    RUNNING = "Running"
    TERMINATING = "Terminating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"


class Stage(StrEnum):
    """Where the chain is within one step: applying it, or waiting for its health."""

    APPLY = "apply"
    WAIT = "wait"


class StepAction(StrEnum):
    """What a step does with one planned object (shared.sync.plan's actions)."""

    APPLY = "apply"
    HOOK = "hook"
    PRUNE = "prune"
    PRUNE_SKIPPED = "prune-skipped"


class ResultStatus(StrEnum):
    """Argo CD's ResultCode of one resource in `syncResult.resources`."""

    SYNCED = "Synced"
    SYNC_FAILED = "SyncFailed"
    PRUNED = "Pruned"
    PRUNE_SKIPPED = "PruneSkipped"


class HookPhase(StrEnum):
    """The phase of a hook's run as Argo CD reports it (`hookPhase`)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


# The names other modules have used; the enum members compare equal to these strings.
RUNNING, TERMINATING, SUCCEEDED, FAILED, ERROR = (Phase.RUNNING, Phase.TERMINATING, Phase.SUCCEEDED,
                                                  Phase.FAILED, Phase.ERROR)
FINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR})
ACTIVE_PHASES = frozenset({Phase.RUNNING, Phase.TERMINATING})
STAGE_APPLY, STAGE_WAIT = Stage.APPLY, Stage.WAIT


def now_iso(now: float | None = None) -> str:
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Model(BaseModel):
    # Numbers where text is expected (a revision written unquoted in YAML) are read as text.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow",
                              coerce_numbers_to_str=True)

    def dump(self) -> dict[str, Any]:
        """The JSON document with Argo CD's field names (absent values left out, as Go's omitempty)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------------
# the plan, as the operation records it


class StepObject(_Model):
    """One planned object of a step: `PlannedObject.to_dict()` plus the apiVersion to use.

    Built from the planner's own serialisation (its snake_case names are accepted), stored in camelCase.
    `options` are the object's explicitly set sync options (`{"Prune": "false"}`); the steps read them
    through `shared.sync.options.SyncOptions`, never by string comparison.
    """

    group: str = ""
    kind: str
    namespace: str = ""
    name: str
    api_version: str = ""
    action: StepAction
    hook_types: list[str] = Field(default_factory=list)
    delete_policies: list[str] = Field(default_factory=list)
    options: dict[str, str] = Field(default_factory=dict)
    managed_namespace: bool | None = None
    reason: str | None = None

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.kind, self.namespace, self.name)

    def named(self, name: str) -> ResourceKey:
        """This object's key under another name (a hook's generated name)."""
        return ResourceKey(self.group, self.kind, self.namespace, name)


class Step(_Model):
    """One (phase, wave) of the sync and its objects in execution order."""

    phase: str
    wave: int
    objects: list[StepObject] = Field(default_factory=list)

    @classmethod
    def from_plan(cls, planned: dict[str, Any], versions: dict[ResourceKey, str]) -> Step:
        """The record of a planner step, from `PlanStep.to_dict()` (the plan's one serialisation)."""
        objects = []
        for item in planned["objects"]:
            key = ResourceKey.from_dict(item)
            default = "v1" if item.get("managed_namespace") else ""
            objects.append(StepObject.model_validate({**item, "api_version": versions.get(key, default)}))
        return cls(phase=planned["phase"], wave=int(planned["wave"]), objects=objects)


# --------------------------------------------------------------------------------------------------
# what was asked


class SyncRequest(_Model):
    """A sync a user (API, CLI, `operation` field of the Application) asked for, recorded for the workers."""

    prune: bool = False
    dry_run: bool = False
    revision: str | None = None
    resources: list[dict[str, str]] | None = None
    sync_options: list[str] | None = None
    username: str | None = None
    requested_at: float | None = None


class SyncSpec(_Model):
    """Argo CD's `operation.sync`."""

    revision: str = ""
    prune: bool = False
    dry_run: bool = False
    resources: list[dict[str, str]] | None = None
    sync_options: list[str] | None = None


class InitiatedBy(_Model):
    automated: bool | None = None
    username: str | None = None


class RetryLimit(_Model):
    limit: int = 0


class OperationSpec(_Model):
    """Argo CD's `operation`: what to sync, who asked, how often to retry."""

    sync: SyncSpec = Field(default_factory=SyncSpec)
    initiated_by: InitiatedBy = Field(default_factory=InitiatedBy)
    retry: RetryLimit = Field(default_factory=RetryLimit)


# --------------------------------------------------------------------------------------------------
# what happened


class ResourceResult(_Model):
    """Argo CD's ResourceResult: one object's outcome in `syncResult.resources`."""

    group: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    version: str | None = None
    status: str = ""
    message: str = ""
    sync_phase: str = ""
    hook_type: str | None = None
    hook_phase: str | None = None

    def ident(self) -> tuple[str, str, str, str, str]:
        return self.group, self.kind, self.namespace, self.name, self.sync_phase


class SyncResult(_Model):
    revision: str = ""
    resources: list[ResourceResult] = Field(default_factory=list)
    source: dict[str, Any] | None = None


class WaitingOn(_Model):
    """What the wave gate of one step waits for, with health messages (the dashboard shows it)."""

    step: int
    resources: list[dict[str, str]] = Field(default_factory=list)


class Progress(_Model):
    """WaveCD's own record of where the chain is (never shown in `operationState`)."""

    seq: int = 0
    step: int = 0
    stage: Stage = Stage.APPLY
    step_started_at: float = 0.0
    stage_step: int | None = None
    steps: list[Step] = Field(default_factory=list)
    sync_fail_steps: list[Step] = Field(default_factory=list)
    tree_id: str = ""
    source_path: str = ""
    started_at_unix: int = 0
    namespace_to_create: str | None = None
    managed_namespace_metadata: dict[str, Any] | None = None
    jitter: float | None = None
    hook_names: dict[str, str] = Field(default_factory=dict)
    hooks_created: list[str] = Field(default_factory=list)
    apply_waiting_since: float | None = None
    waiting_on: WaitingOn | None = None
    applied: list[dict[str, str]] = Field(default_factory=list)
    pruned: list[dict[str, str]] = Field(default_factory=list)

    def hook_name(self, step: Step, obj: StepObject) -> str | None:
        """The name this operation gave a hook object of `step`, once it ran."""
        return self.hook_names.get(f"{step.phase}:{obj.key}")


class Operation(_Model):
    """One sync operation: Argo CD's OperationState plus WaveCD's `progress`."""

    id: str
    phase: Phase = Phase.RUNNING
    message: str = ""
    started_at: str = ""
    finished_at: str | None = None
    operation: OperationSpec = Field(default_factory=OperationSpec)
    sync_result: SyncResult = Field(default_factory=SyncResult)
    retry_count: int = 0
    progress: Progress = Field(default_factory=Progress)

    @classmethod
    def load(cls, doc: dict[str, Any] | None) -> Operation | None:
        return None if doc is None else cls.model_validate(doc)

    @property
    def revision(self) -> str:
        return self.sync_result.revision

    @property
    def dry_run(self) -> bool:
        return self.operation.sync.dry_run

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def ended(self) -> bool:
        return self.phase in FINAL_PHASES

    def record_result(self, result: ResourceResult) -> None:
        """Add or replace the per-resource result for one object (keyed by group/kind/namespace/name/phase)."""
        results = self.sync_result.resources
        for i, existing in enumerate(results):
            if existing.ident() == result.ident():
                results[i] = result
                return
        results.append(result)

    def result_for(self, name: str, sync_phase: str) -> ResourceResult | None:
        return next((r for r in self.sync_result.resources if r.name == name and r.sync_phase == sync_phase),
                    None)

    def public_view(self) -> dict[str, Any]:
        """Argo CD's `operationState`: the operation without WaveCD's internal progress record, plus the
        step the chain is at while it runs."""
        return _view(self.dump())


def new_operation(app: Application, *, revision: str, tree_id: str, source_path: str, steps: list[Step],
                  sync_fail_steps: list[Step], request: SyncRequest, automated: bool, now: float,
                  op_id: str | None = None) -> Operation:
    """A fresh Running operation for `app` at `revision`, with its planned steps."""
    retry = app.spec.sync_policy.retry
    limit = retry.limit if retry is not None else (5 if automated else 0)
    initiated = InitiatedBy(automated=True) if automated else InitiatedBy(username=request.username or "wavecd")
    return Operation(
        id=op_id or secrets.token_hex(6),
        started_at=now_iso(now),
        operation=OperationSpec(
            sync=SyncSpec(revision=revision, prune=request.prune, dry_run=request.dry_run,
                          resources=request.resources or None, sync_options=request.sync_options or None),
            initiated_by=initiated, retry=RetryLimit(limit=limit)),
        sync_result=SyncResult(revision=revision, source=app.spec.primary_source.dump()),
        progress=Progress(step_started_at=now, steps=steps, sync_fail_steps=sync_fail_steps, tree_id=tree_id,
                          source_path=source_path, started_at_unix=int(now)),
    )


def public_view(op: Operation | dict[str, Any] | None) -> dict[str, Any] | None:
    """Argo CD's `operationState` of a stored operation (a model, or its JSON as stored), or None."""
    if op is None:
        return None
    return op.public_view() if isinstance(op, Operation) else _view(op)


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored JSON without `progress`, plus `currentStep` while the operation runs. On the JSON (not the
    model) so a partial document (a test's seed, one restored from the cluster) is shown as it is."""
    view = {k: v for k, v in doc.items() if k != "progress"}
    progress = doc.get("progress") if isinstance(doc.get("progress"), dict) else {}
    steps = progress.get("steps") if isinstance(progress.get("steps"), list) else []
    at = progress.get("step", 0)
    if steps and doc.get("phase") in ACTIVE_PHASES and isinstance(at, int):
        index = max(0, min(at, len(steps) - 1))
        step = steps[index] if isinstance(steps[index], dict) else {}
        view["currentStep"] = {"index": index, "total": len(steps), "phase": step.get("phase"),
                               "wave": step.get("wave"), "stage": progress.get("stage")}
    return view
