"""What the dashboard shows, read from the status WaveCD's workers publish in Redis and shaped for the pages.

The templates stay dumb: every decision (apply order, which wave is done, running or waiting, what the
wave gate waits on, who started an operation) is made here, in typed models, from the same documents
the REST API serves (`status`, the operation with its recorded progress, the masked diffs, and the
commits' metadata recorded by the `diff` step). Nothing here reads git or the cluster.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from shared.core.resources import ResourceKey
from shared.operation.model import ACTIVE_PHASES, FINAL_PHASES, STAGE_WAIT, SUCCEEDED
from shared.pipeline.revision_metadata import RevisionMetadata, announced_by_webhook, read_revisions
from shared.pipeline.services import Services
from shared.state import keys
from shared.state.app_store import AppStore
from shared.sync.kind_order import kind_order_index

_PHASE_ORDER = {"PreSync": 0, "Sync": 1, "PostSync": 2, "SyncFail": 3}
_SHORT = 7


class StepState(StrEnum):
    DONE = "done"
    RUNNING = "running"
    WAITING = "waiting"
    FAILED = "failed"


class LineKind(StrEnum):
    ADDED = "add"
    REMOVED = "del"
    HUNK = "hunk"
    FILE = "file"
    CONTEXT = "ctx"


class Revision(BaseModel):
    sha: str
    author: str = ""
    subject: str = ""
    date: str = ""

    @property
    def short(self) -> str:
        return self.sha[:_SHORT]


class OperationSummary(BaseModel):
    phase: str
    message: str = ""
    step_label: str = ""  # "PreSync wave 0, step 1 of 4" while running

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES


class AppRow(BaseModel):
    name: str
    project: str
    sync_status: str
    health: str
    health_message: str = ""
    repo_url: str = ""
    path: str = ""
    namespace: str = ""
    target_revision: str
    synced: Revision | None = None
    last_synced_at: str = ""
    operation: OperationSummary | None = None
    sync_requested: bool = False
    automated: bool = False


class Condition(BaseModel):
    type: str
    message: str
    last_transition_time: str = ""

    @property
    def is_error(self) -> bool:
        return self.type.endswith("Error")


class ResourceRow(BaseModel):
    phase: str
    wave: int
    group: str = ""
    kind: str
    namespace: str = ""
    name: str
    sync_status: str = ""
    health: str = ""
    message: str = ""
    hook: bool = False
    requires_pruning: bool = False

    @property
    def ident(self) -> str:
        """GROUP:KIND:NAMESPACE/NAME, as `--resource` names it; the sync form's value."""
        return f"{self.group}:{self.kind}:{self.namespace}/{self.name}"


class ResourceGroup(BaseModel):
    phase: str
    wave: int
    resources: list[ResourceRow]


class WaitingResource(BaseModel):
    kind: str
    namespace: str = ""
    name: str
    health: str
    message: str = ""


class TimelineStep(BaseModel):
    index: int
    phase: str
    wave: int
    state: StepState
    stage: str = ""
    resources: list[str]
    waiting_on: list[WaitingResource] = []


class Timeline(BaseModel):
    id: str
    phase: str
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    initiated_by: str = ""
    revision: Revision | None = None
    dry_run: bool = False
    steps: list[TimelineStep]


class HistoryRow(BaseModel):
    id: int
    revision: Revision
    deployed_at: str = ""
    started_at: str = ""
    initiated_by: str = ""
    result: str = SUCCEEDED


class DiffLine(BaseModel):
    kind: LineKind
    text: str


class ResourceDiff(BaseModel):
    resource: str
    lines: list[DiffLine]


class AppDetail(BaseModel):
    app: AppRow
    destination: str = ""
    conditions: list[Condition]
    groups: list[ResourceGroup]
    timeline: Timeline | None = None
    history: list[HistoryRow]
    diffs: list[ResourceDiff]

    @property
    def resources(self) -> list[ResourceRow]:
        return [r for g in self.groups for r in g.resources]


def initiated_by(doc: dict[str, Any] | None, *, via_webhook: bool = False) -> str:
    """Argo CD's `initiatedBy` in words: the automated sync policy (after a webhook or not), or who asked."""
    doc = doc or {}
    if doc.get("automated"):
        return "automated sync policy, after a webhook push" if via_webhook else "automated sync policy"
    user = str(doc.get("username") or "")
    return f"user {user}" if user else "unknown"


def _revision(sha: str | None, meta: dict[str, RevisionMetadata]) -> Revision | None:
    if not sha:
        return None
    found = meta.get(sha)
    if found is None:
        return Revision(sha=sha)
    return Revision(sha=sha, author=found.author, subject=found.subject, date=found.date)


def _step_label(op: dict[str, Any]) -> str:
    progress = op.get("progress") or {}
    steps = _steps(progress)
    if not steps or op.get("phase") not in ACTIVE_PHASES:
        return ""
    index = min(int(progress.get("step") or 0), len(steps) - 1)
    phase, wave = _phase_wave(steps[index])
    return f"{phase} wave {wave}, step {index + 1} of {len(steps)}"


def _last_synced(status: dict[str, Any], op: dict[str, Any] | None) -> str:
    if op is not None and op.get("finishedAt"):
        return str(op["finishedAt"])
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    return str(history[-1].get("deployedAt") or "") if history else ""


class DashboardReader:
    """Reads one or all apps for the pages; one per server, bound to its Services."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.store: AppStore = svc.store

    # -- the list ---------------------------------------------------------------------------------
    def rows(self) -> list[AppRow]:
        docs = self.store.all_apps()
        states = {name: (self.store.status(name), self.store.operation(name)) for name in docs}
        shas = [str((s.get("sync") or {}).get("revision") or "") for s, _ in states.values()]
        meta = read_revisions(self.svc.redis, shas)
        return [self._row(name, docs[name], *states[name], meta) for name in sorted(docs)]

    def _row(self, name: str, doc: dict[str, Any], status: dict[str, Any], op: dict[str, Any] | None,
             meta: dict[str, RevisionMetadata]) -> AppRow:
        spec = doc.get("spec") or {}
        source = spec.get("source") or (spec.get("sources") or [{}])[0] or {}
        sync = status.get("sync") or {}
        health = status.get("health") or {}
        operation = None
        if op is not None:
            operation = OperationSummary(phase=str(op.get("phase") or ""), message=str(op.get("message") or ""),
                                         step_label=_step_label(op))
        return AppRow(name=name, project=str(spec.get("project") or "default"),
                      sync_status=str(sync.get("status") or "Unknown"),
                      health=str(health.get("status") or "Unknown"), health_message=str(health.get("message") or ""),
                      repo_url=str(source.get("repoURL") or ""), path=str(source.get("path") or ""),
                      namespace=str((spec.get("destination") or {}).get("namespace") or ""),
                      target_revision=str(source.get("targetRevision") or "HEAD"),
                      synced=_revision(sync.get("revision"), meta), last_synced_at=_last_synced(status, op),
                      operation=operation, sync_requested=self.store.peek_sync_request(name) is not None,
                      automated=bool((spec.get("syncPolicy") or {}).get("automated") is not None))

    # -- one app ----------------------------------------------------------------------------------
    def detail(self, name: str) -> AppDetail | None:
        doc = self.store.get_app(name)
        if doc is None:
            return None
        status = self.store.status(name)
        op = self.store.operation(name)
        history = [h for h in status.get("history") or [] if isinstance(h, dict)]
        shas = [str((status.get("sync") or {}).get("revision") or "")] + [str(h.get("revision") or "")
                                                                          for h in history]
        if op is not None:
            shas.append(str((op.get("syncResult") or {}).get("revision") or ""))
        meta = read_revisions(self.svc.redis, shas)
        pushed = announced_by_webhook(self.svc.redis, shas)
        dest = (doc.get("spec") or {}).get("destination") or {}
        return AppDetail(
            app=self._row(name, doc, status, op, meta),
            destination=f"{dest.get('server') or dest.get('name') or ''} / {dest.get('namespace') or ''}",
            conditions=[Condition(type=str(c.get("type") or ""), message=str(c.get("message") or ""),
                                  last_transition_time=str(c.get("lastTransitionTime") or ""))
                        for c in status.get("conditions") or [] if isinstance(c, dict)],
            groups=_groups(status, op),
            timeline=_timeline(op, meta, pushed) if op is not None else None,
            history=[HistoryRow(id=int(h.get("id", 0)), revision=_revision(str(h.get("revision") or ""), meta)
                                or Revision(sha=""), deployed_at=str(h.get("deployedAt") or ""),
                                started_at=str(h.get("deployStartedAt") or ""),
                                initiated_by=initiated_by(h.get("initiatedBy"),
                                                          via_webhook=str(h.get("revision") or "") in pushed))
                     for h in reversed(history)],
            diffs=self.diffs(name),
        )

    def diffs(self, name: str) -> list[ResourceDiff]:
        raw = self.svc.redis.get(keys.diff(name))
        texts: dict[str, str] = json.loads(raw) if raw else {}
        return [ResourceDiff(resource=key, lines=[_diff_line(line) for line in text.splitlines()])
                for key, text in sorted(texts.items())]


def _diff_line(line: str) -> DiffLine:
    if line.startswith(("+++", "---")):
        return DiffLine(kind=LineKind.FILE, text=line)
    if line.startswith("@@"):
        return DiffLine(kind=LineKind.HUNK, text=line)
    if line.startswith("+"):
        return DiffLine(kind=LineKind.ADDED, text=line)
    if line.startswith("-"):
        return DiffLine(kind=LineKind.REMOVED, text=line)
    return DiffLine(kind=LineKind.CONTEXT, text=line)


def _key(item: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(item.get("group") or ""), str(item["kind"]), str(item.get("namespace") or ""), str(item["name"]))


def _phase_wave(step: dict[str, Any]) -> tuple[str, int]:
    try:
        return str(step.get("phase") or "Sync"), int(step.get("wave") or 0)
    except (TypeError, ValueError):
        return str(step.get("phase") or "Sync"), 0


def _steps(progress: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in progress.get("steps") or [] if isinstance(s, dict)]


def _named(items: Any) -> list[dict[str, Any]]:  # noqa: ANN401 - any JSON value
    """The entries of a status list that name a resource (a damaged document shows less, never fails)."""
    return [i for i in items or [] if isinstance(i, dict) and i.get("kind") and i.get("name")]


def _groups(status: dict[str, Any], op: dict[str, Any] | None) -> list[ResourceGroup]:
    """Every resource in apply order (phase, wave, kind, name), grouped by phase and wave.

    Managed resources come from the last comparison (their wave is `syncWave`, else the wave the
    operation planned for them); hooks come from the current or last operation's plan and results.
    """
    planned: dict[tuple[str, str, str, str], tuple[str, int]] = {}
    results: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    hooks: list[ResourceRow] = []
    if op is not None:
        for result in _named((op.get("syncResult") or {}).get("resources")):
            results[_key(result)] = result
        hook_names = (op.get("progress") or {}).get("hookNames") or {}
        for step in _steps(op.get("progress") or {}):
            phase, wave = _phase_wave(step)
            for item in _named(step.get("objects")):
                if item.get("action") == "hook":
                    key = _key(item)
                    shown = hook_names.get(f"{phase}:{ResourceKey.from_dict(item)}", item["name"])
                    result = next((r for r in results.values() if r.get("name") == shown
                                   and r.get("syncPhase") == phase), {})
                    hooks.append(ResourceRow(phase=phase, wave=wave, group=key[0], kind=key[1],
                                             namespace=key[2], name=shown, hook=True,
                                             sync_status=str(result.get("hookPhase") or "Pending"),
                                             message=str(result.get("message") or "")))
                else:
                    planned[_key(item)] = (phase, wave)
    rows: list[ResourceRow] = []
    for res in _named(status.get("resources")):
        key = _key(res)
        phase, wave = planned.get(key, ("Sync", 0))
        if isinstance(res.get("syncWave"), int):
            wave = int(res["syncWave"])
        health = res.get("health") or {}
        message = str(health.get("message") or "") or str((results.get(key) or {}).get("message") or "")
        rows.append(ResourceRow(phase=phase, wave=wave, group=key[0], kind=key[1], namespace=key[2], name=key[3],
                                sync_status=str(res.get("status") or ""), health=str(health.get("status") or ""),
                                message=message, requires_pruning=bool(res.get("requiresPruning"))))
    ordered = sorted(rows + hooks, key=lambda r: (_PHASE_ORDER.get(r.phase, 9), r.wave,
                                                  kind_order_index(r.kind), r.namespace, r.name))
    groups: list[ResourceGroup] = []
    for row in ordered:
        if not groups or (groups[-1].phase, groups[-1].wave) != (row.phase, row.wave):
            groups.append(ResourceGroup(phase=row.phase, wave=row.wave, resources=[]))
        groups[-1].resources.append(row)
    return groups


def _timeline(op: dict[str, Any], meta: dict[str, RevisionMetadata], pushed: set[str]) -> Timeline:
    """The operation's steps as done, running, waiting or failed, with the wave gate's waiting list."""
    progress = op.get("progress") or {}
    steps = _steps(progress)
    current = int(progress.get("step") or 0)
    phase = str(op.get("phase") or "")
    stage = str(progress.get("stage") or "")
    gate = progress.get("waitingOn") or {}
    out: list[TimelineStep] = []
    for index, step in enumerate(steps):
        if phase == SUCCEEDED or index < current:
            state = StepState.DONE
        elif index > current:
            state = StepState.WAITING
        elif phase in FINAL_PHASES:
            state = StepState.FAILED
        else:
            state = StepState.RUNNING
        waiting_on: list[WaitingResource] = []
        if state == StepState.RUNNING and stage == STAGE_WAIT and int(gate.get("step", -1)) == index:
            waiting_on = [WaitingResource(kind=str(w["kind"]), namespace=str(w.get("namespace") or ""),
                                          name=str(w["name"]), health=str(w.get("health") or ""),
                                          message=str(w.get("message") or ""))
                          for w in _named(gate.get("resources"))]
        phase_name, wave = _phase_wave(step)
        out.append(TimelineStep(index=index, phase=phase_name, wave=wave, state=state,
                                stage=stage if state == StepState.RUNNING else "",
                                resources=[f"{o['kind']}/{o['name']}" for o in _named(step.get("objects"))],
                                waiting_on=waiting_on))
    sync = (op.get("operation") or {}).get("sync") or {}
    revision = str((op.get("syncResult") or {}).get("revision") or "")
    return Timeline(id=str(op.get("id") or ""), phase=phase, message=str(op.get("message") or ""),
                    started_at=str(op.get("startedAt") or ""), finished_at=str(op.get("finishedAt") or ""),
                    initiated_by=initiated_by((op.get("operation") or {}).get("initiatedBy"),
                                              via_webhook=revision in pushed),
                    revision=_revision(revision, meta),
                    dry_run=bool(sync.get("dryRun")), steps=out)
