"""The beat tick's work: mirror Applications from the cluster into Redis and find what is due.

One LIST of Applications per tick keeps the index current, so new or changed Applications are picked
up within one tick. Due times live in a Redis sorted set (period plus jitter), so finding the due apps
costs one range query however many apps exist. The tick also repairs what a crash can leave behind:
an operation whose lock expired, or a refresh marked pending with nobody left to run it. A queued
mark older than `refresh_queued_stale` does not hold the repair back: its message may be lost (issue
#17), and the refresh the repair asks for claims past it (shared.state.coalesce). Nor does the lock of
a chain whose next step the broker lost: the tick asks the broker (through `broker_holds`, which the
workers give it: the broker's layout is theirs) about every step overdue by `step_overdue_check`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.core.models import Application
from shared.core.repo_url import normalize_repo_url
from shared.core.resources import RESOURCES_FINALIZER
from shared.operation.model import OperationSpec, SyncRequest
from shared.pipeline.project_declarative import refresh_declarative
from shared.state import keys
from shared.state.app_lock import lock_key
from shared.state.coalesce import pending_key, queued_key

if TYPE_CHECKING:
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

# When the last tick finished (Unix seconds): fresh means beat sends ticks and a worker runs them.
TICK_HEARTBEAT_KEY = keys.TICK_HEARTBEAT


@dataclass
class TickResult:
    fetch: dict[str, list[str]] = field(default_factory=dict)   # repo URL -> due apps
    refresh: list[str] = field(default_factory=list)             # apps to refresh directly
    finalize: list[str] = field(default_factory=list)            # apps being deleted with the finalizer
    removed: list[str] = field(default_factory=list)
    listed: bool = True


def next_due(svc: Services, now: float) -> float:
    return now + svc.settings.reconcile_period + random.random() * svc.settings.reconcile_jitter


def spec_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(doc.get("spec", {}), sort_keys=True).encode()).hexdigest()[:16]


def has_resources_finalizer(obj: dict[str, Any]) -> bool:
    return any(f == RESOURCES_FINALIZER or f.startswith(RESOURCES_FINALIZER + "/")
               for f in (obj.get("metadata") or {}).get("finalizers") or [])


def _seed_status(svc: Services, name: str, obj: dict[str, Any]) -> None:
    """After Redis lost its data, status and history come back from the Application's status."""
    status = dict(obj.get("status") or {})
    if not status:
        return
    inventory = []
    for res in status.get("resources") or []:
        group, version = res.get("group", ""), res.get("version", "v1")
        inventory.append({"apiVersion": f"{group}/{version}" if group else version, "group": group,
                          "kind": res.get("kind", ""), "namespace": res.get("namespace", ""),
                          "name": res.get("name", "")})
    status["inventory"] = inventory
    svc.store.write_unfenced(name, "status", status)


def _take_operation_field(svc: Services, cluster: Any, name: str, obj: dict[str, Any]) -> None:  # noqa: ANN401
    """Argo CD's way to ask for a sync by editing the Application: `operation: {sync: {...}}`.

    The request moves into WaveCD's own sync request and the field is cleared, as Argo CD's controller
    clears it once it has taken the operation.
    """
    try:
        asked = OperationSpec.model_validate(obj.get("operation") or {})
    except ValidationError as exc:  # a hand-written field WaveCD cannot read: dropped, as a bad request
        log.warning("app %s: ignoring an unreadable operation field: %s", name,
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        asked = None
    op = svc.store.current_operation(name)
    if asked is not None and (op is None or not op.active):
        sync = asked.sync
        svc.store.request_sync(name, SyncRequest(
            prune=sync.prune, dry_run=sync.dry_run, revision=sync.revision or None, resources=sync.resources or None,
            sync_options=sync.sync_options or None, username=asked.initiated_by.username or "kubectl").dump())
    settings = svc.settings
    try:
        cluster.patch_application(settings.app_api_group, settings.app_api_version, settings.app_namespace, name,
                                  {"operation": None})
    except Exception as exc:  # noqa: BLE001 - the next tick retries; the request is recorded already
        log.warning("app %s: could not clear the operation field: %s", name, exc)


BrokerHolds = Callable[[Iterable[str]], set[str]]  # task ids -> those the broker still holds


def _break_lost_handovers(svc: Services, now: float, broker_holds: BrokerHolds) -> None:
    """The apps whose chain handed over to a step the broker no longer holds: their lock goes now (the
    repair below then sees them running and unlocked)."""
    overdue = svc.locks.overdue_handovers(now - svc.settings.step_overdue_check)
    if not overdue:
        return
    held = broker_holds([h.task_id for h in overdue])
    for handover in overdue:
        if handover.task_id not in held and svc.locks.break_handover(handover):
            log.warning("app %s: the step its operation handed over (task %s, due %.0f s ago) is in no queue "
                        "and with no worker: lost; resuming the operation", handover.token.app,
                        handover.task_id, now - handover.due)


def tick(svc: Services, now: float, broker_holds: BrokerHolds | None = None) -> TickResult:
    settings = svc.settings
    refresh_declarative(svc)  # AppProjects, cluster and repository Secrets: this process and the catalog
    store = svc.store
    result = TickResult()
    cluster = svc.clusters.default()
    objects = cluster.list_applications(settings.app_api_group, settings.app_api_version,
                                        settings.app_namespace)
    seen: set[str] = set()
    for obj in objects:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if not name:
            continue
        seen.add(name)
        changed = store.put_app(name, obj)
        if not store.has_state(name):
            _seed_status(svc, name, obj)
        if obj.get("operation"):
            _take_operation_field(svc, cluster, name, obj)
            result.refresh.append(name)
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            if has_resources_finalizer(obj):
                result.finalize.append(name)
            continue
        if changed:
            store.schedule(name, now)
        else:
            store.schedule_if_absent(name, next_due(svc, now))
    for name in set(store.app_names()) - seen:
        store.remove_app(name)
        result.removed.append(name)

    names = store.app_names()
    due = store.pop_due(now, {n: next_due(svc, now) for n in names})
    if due:
        by_name = {entry.name: entry for entry in indexed_apps(svc)}
        for name in due:
            entry = by_name.get(name)
            if entry is None:  # an invalid spec: its own refresh reports it
                if name in seen:
                    result.refresh.append(name)
                continue
            result.fetch.setdefault(entry.app.spec.primary_source.repo_url, []).append(name)

    # Repairs: an operation whose chain died or lost its next step, or a pending refresh nobody will run.
    if broker_holds is not None:
        _break_lost_handovers(svc, now, broker_holds)
    if names:
        pipe = svc.redis.pipeline()
        for name in names:
            pipe.exists(lock_key(name))
            pipe.exists(pending_key(name))
            pipe.pttl(queued_key(name))
        flags = pipe.execute()
        running = set(store.running())
        stale_ms = min(settings.refresh_queued_stale, settings.refresh_queued_ttl) * 1000
        for i, name in enumerate(names):
            locked, pending, queued_left = flags[3 * i:3 * i + 3]
            queued = queued_left >= 0 and int(settings.refresh_queued_ttl) * 1000 - queued_left <= stale_ms
            if locked or queued:
                continue
            if name in running or pending:
                result.refresh.append(name)
    return result


@dataclass
class IndexedApp:
    name: str
    doc: dict[str, Any]
    app: Application
    repo_key: str
    spec_hash: str


_parsed: dict[str, tuple[bytes, IndexedApp | None]] = {}


def indexed_apps(svc: Services) -> list[IndexedApp]:
    """Every valid app in the index, parsed once per change of its stored document (per process)."""
    raws = svc.store.all_apps_raw()
    for name in list(_parsed):
        if name not in raws:
            del _parsed[name]
    result = []
    for name, raw in raws.items():
        memo = _parsed.get(name)
        if memo is None or memo[0] != raw:
            doc = json.loads(raw)
            try:
                app = Application.parse(doc)
                entry: IndexedApp | None = IndexedApp(name, doc, app,
                                                      normalize_repo_url(app.spec.primary_source.repo_url),
                                                      spec_hash(doc))
            except Exception:  # noqa: BLE001 - an invalid spec is reported by its own refresh
                entry = None
            memo = (raw, entry)
            _parsed[name] = memo
        if memo[1] is not None:
            result.append(memo[1])
    return result


def apps_for_repo(svc: Services, repo_url: str) -> list[IndexedApp]:
    key = normalize_repo_url(repo_url)
    return [entry for entry in indexed_apps(svc) if entry.repo_key == key]
