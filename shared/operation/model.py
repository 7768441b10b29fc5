"""An operation (a sync) as Argo CD shows it, plus the progress WaveCD needs to resume it anywhere.

The document lives in Redis under the app's state and is mirrored into the Application's
`status.operationState`. Its `progress` part records which step ran and what it did, so any worker that
picks up the next task (or a redelivered one) knows exactly where the chain is: this is what makes
every step re-entrant.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from shared.core.models import Application, parse_duration

RUNNING, TERMINATING, SUCCEEDED, FAILED, ERROR = "Running", "Terminating", "Succeeded", "Failed", "Error"
FINAL_PHASES = {SUCCEEDED, FAILED, ERROR}

STAGE_APPLY, STAGE_WAIT = "apply", "wait"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_operation(app: Application, *, revision: str, tree_id: str, source_path: str, steps: list[dict],
                  sync_fail_steps: list[dict], request: dict[str, Any], automated: bool) -> dict[str, Any]:
    """A fresh Running operation for `app` at `revision`, with its planned steps."""
    retry = app.spec.sync_policy.retry
    limit = retry.limit if retry is not None else (5 if automated else 0)
    return {
        "id": secrets.token_hex(6),
        "phase": RUNNING,
        "message": "",
        "startedAt": now_iso(),
        "operation": {
            "sync": {
                "revision": revision,
                "prune": bool(request.get("prune")),
                "dryRun": bool(request.get("dryRun")),
                "resources": request.get("resources") or None,
                "syncOptions": request.get("syncOptions") or None,
            },
            "initiatedBy": {"automated": True} if automated
            else {"username": str(request.get("username") or "wavecd")},
            "retry": {"limit": limit},
        },
        "syncResult": {"revision": revision, "resources": [],
                       "source": app.spec.primary_source.dump()},
        "retryCount": 0,
        "progress": {
            "seq": 0,
            "step": 0,
            "stage": STAGE_APPLY,
            "stepStartedAt": time.time(),
            "steps": steps,
            "syncFailSteps": sync_fail_steps,
            "treeId": tree_id,
            "sourcePath": source_path,
            "hookNames": {},
        },
    }


def record_result(op: dict[str, Any], result: dict[str, Any]) -> None:
    """Add or replace the per-resource result for one object (keyed by group/kind/namespace/name/hook)."""
    ident = (result.get("group", ""), result["kind"], result.get("namespace", ""), result["name"],
             result.get("syncPhase", ""))
    results = op["syncResult"]["resources"]
    for i, existing in enumerate(results):
        if (existing.get("group", ""), existing["kind"], existing.get("namespace", ""), existing["name"],
                existing.get("syncPhase", "")) == ident:
            results[i] = result
            return
    results.append(result)


def retry_delay(app: Application, attempt: int) -> float:
    """Argo CD's backoff: duration * factor^(attempt-1), capped at maxDuration (defaults 5s, 2, 3m)."""
    retry = app.spec.sync_policy.retry
    base, factor, cap = 5.0, 2.0, 180.0
    if retry is not None:
        base = parse_duration(retry.backoff.duration)
        factor = float(retry.backoff.factor)
        cap = parse_duration(retry.backoff.max_duration)
    return float(min(cap, base * factor ** max(0, attempt - 1)))


def may_retry(op: dict[str, Any]) -> bool:
    limit = int(op["operation"].get("retry", {}).get("limit", 0))
    return limit < 0 or int(op.get("retryCount", 0)) < limit


def public_view(op: dict[str, Any] | None) -> dict[str, Any] | None:
    """Argo CD's `operationState`: the operation without WaveCD's internal progress record."""
    if op is None:
        return None
    view = {k: v for k, v in op.items() if k != "progress"}
    progress = op.get("progress") or {}
    steps = progress.get("steps") or []
    if steps and op.get("phase") in (RUNNING, TERMINATING):
        index = min(int(progress.get("step", 0)), len(steps) - 1)
        view["currentStep"] = {"index": index, "total": len(steps), "phase": steps[index]["phase"],
                               "wave": steps[index]["wave"], "stage": progress.get("stage")}
    return view
