"""Where the `diff` step hands over to an operation: start one from a comparison, or resume one left running.

The `diff` step itself (its sub-steps, the error mapping, the status it publishes) is
`shared.pipeline.diff_step`; this module turns its answer into an operation and the chain's first call.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.core.models import Application
from shared.core.resources import ResourceKey
from shared.operation import machine
from shared.operation.machine import Chain
from shared.operation.model import (
    Operation,
    ResourceResult,
    ResultStatus,
    Step,
    SyncRequest,
    new_operation,
)
from shared.pipeline.diff_result import Comparison, DiffOutcome
from shared.state import keys
from shared.state.app_lock import LockToken
from shared.sync.options import SyncOptions
from shared.sync.plan import plan_sync

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

def diff_key(app: str) -> str:
    return keys.diff(app)


def _resume(svc: Services, token: LockToken, doc: dict[str, Any]) -> DiffOutcome:
    """An operation left Running by a chain whose lock expired: the new token claims it (a fenced write)
    and the chain goes on at the stage and step it recorded. A record that cannot be read ends as Error."""
    try:
        op = Operation.model_validate(doc)
    except ValidationError as exc:
        svc.store.write(token, "operation", machine.unreadable(doc, machine.unreadable_reason(exc), now=time.time()))
        svc.store.clear_running(token.app)
        return DiffOutcome("the running operation's record could not be read: ended as Error")
    svc.store.write_operation(token, op)
    return DiffOutcome(f"resumed operation {op.id} at step {op.progress.step}",
                       machine.resume(op, Chain(token.app, token.encode())))


def _start_operation(svc: Services, app: Application, cluster: Cluster, comparison: Comparison,
                     request: dict[str, Any], automated: bool) -> Operation:
    asked = SyncRequest.model_validate(request)
    options = SyncOptions.from_policy(app.spec.sync_policy)
    if asked.sync_options:
        options = options.merged_with(",".join(asked.sync_options))
    prune = asked.prune or bool(app.spec.sync_policy.automated and automated
                                and app.spec.sync_policy.automated.prune)
    only = None
    if asked.resources:
        only = {ResourceKey(r.get("group", ""), r["kind"], r.get("namespace") or
                            app.spec.destination.namespace, r["name"]) for r in asked.resources}
    destination_ns = app.spec.destination.namespace
    create_ns = None
    if options.create_namespace and destination_ns and not cluster.namespace_exists(destination_ns):
        create_ns = destination_ns
    now = time.time()
    plan = plan_sync(comparison.desired.objects, live_tracked=comparison.to_prune, prune=prune,
                     options=options, in_sync=comparison.in_sync, only=only,
                     default_namespace=destination_ns, create_namespace=create_ns,
                     revision=comparison.desired.commit, started_at=int(now))
    versions = dict(comparison.desired.api_versions)
    for obj in comparison.to_prune:
        versions[ResourceKey.from_object(obj)] = str(obj.get("apiVersion", ""))
    op = new_operation(app, revision=comparison.desired.commit, tree_id=comparison.desired.tree_id,
                       source_path=app.spec.primary_source.path,
                       steps=[Step.from_plan(s.to_dict(), versions) for s in plan.steps],
                       sync_fail_steps=[Step.from_plan(s.to_dict(), versions) for s in plan.sync_fail_steps],
                       request=asked.model_copy(update={"prune": prune}), automated=automated, now=now)
    op.progress.namespace_to_create = create_ns
    op.progress.managed_namespace_metadata = app.spec.sync_policy.managed_namespace_metadata
    op.progress.jitter = random.random()
    for skipped in plan.prune_skipped:
        op.record_result(ResourceResult(**skipped.key.to_dict(), status=ResultStatus.PRUNE_SKIPPED,
                                        message="ignored (requires pruning)", sync_phase="Sync"))
    return op
