"""WaveCD's tasks: thin shells that take ids, call shared/, and enqueue what comes next.

Arguments and results are names, ids, revision shas and short summaries only: Flower shows them.
No task waits: a lock not free means "mark pending and return"; a wave still progressing means "come
back after a countdown".
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from functools import partial
from typing import Any

from redis.exceptions import LockError

from shared.apps.app_lifecycle import create_app, delete_app, delete_resource, finalize_app, update_app
from shared.apps.app_manifests import produce_manifests
from shared.operation.machine import StepCall, Task
from shared.operation.model import ACTIVE_PHASES
from shared.pipeline import diff_step
from shared.pipeline.app_index import tick as run_tick
from shared.pipeline.source_watch import claim_fetch, fetch_and_detect, release_fetch
from shared.pipeline.sync_steps import StepOutcome
from shared.pipeline.sync_steps import health_check as check_step
from shared.pipeline.sync_steps import wave_apply as apply_step
from shared.state import keys
from shared.state.app_lock import LockToken
from workers import catalogue
from workers.base import WaveTask
from workers.catalogue import LOW_PRIORITY, AppAction, AppAdmin, Diff, Fetch, HealthCheck, TaskCall, WaveApply
from workers.celery_app import app
from workers.context import services
from workers.logging_context import bind
from workers.redis_transport import tasks_in_broker

log = logging.getLogger(__name__)


def request_refresh(name: str, *, countdown: float = 0.0, routine: bool = False,
                    producer: Any = None) -> bool:  # noqa: ANN401 - a kombu Producer, to publish in bulk
    """Coalesced: enqueue a `diff` only when none is queued for the app already.

    `routine` refreshes (an app merely due) queue behind those a change asked for.
    """
    svc = services()
    if not svc.coalescer.claim_enqueue(name, routine=routine):
        return False
    send(Diff(app=name), countdown=countdown, priority=LOW_PRIORITY if routine else 0, producer=producer)
    return True


def request_fetch(repo_url: str, due: list[str] | None = None) -> None:
    send(Fetch(repo=repo_url, due=list(due or [])))


def send(call: TaskCall, *, countdown: float | None = None, **options: Any) -> None:  # noqa: ANN401
    """Enqueue the next task through the catalogue (named arguments, its queue), on the workers' app."""
    catalogue.send(app, call, countdown=countdown, **options)


STEP_TASKS: dict[Task, type[WaveApply] | type[HealthCheck]] = {Task.WAVE_APPLY: WaveApply,
                                                               Task.HEALTH_CHECK: HealthCheck}


def _enqueue(call: StepCall) -> None:
    """Send the operation machine's next call as its catalogue task (the machine names it, typed).

    The lock's lease is stretched over the countdown and the queue first, so a step that waits does not
    lose its app; the hand-over names the message's task id, so the tick can tell a step still queued from
    one the broker lost (shared.state.app_lock)."""
    svc = services()
    task_id = str(uuid.uuid4())
    svc.locks.hand_over(LockToken.decode(call.app, call.token), call.countdown + svc.settings.lock_queue_grace,
                        task_id=task_id, countdown=call.countdown)
    send(STEP_TASKS[call.task](**call.kwargs()), countdown=call.countdown, task_id=task_id)


def _after(name: str, outcome: StepOutcome) -> str:
    if outcome.next is not None:
        _enqueue(outcome.next)
    if outcome.finished and services().coalescer.take_pending(name):
        request_refresh(name)
    return outcome.summary


@app.task(base=WaveTask, name="wavecd.tick", bind=True)
def tick(self: WaveTask) -> dict[str, Any]:
    """Beat's heartbeat: mirror Applications, fetch the due repos, repair what crashes left."""
    svc = services()
    # One tick at a time however many beats: redis-py's Lock (a token only its owner may release, so a tick
    # that outlived the timeout never frees the lock of the tick that came after it).
    lock = svc.redis.lock(keys.TICK_LOCK, timeout=max(5, int(svc.settings.beat_tick * 4)))
    if not lock.acquire(blocking=False):
        return {"skipped": "another tick is running"}
    try:
        result = run_tick(svc, time.time(), broker_holds=partial(tasks_in_broker, svc.redis))
        svc.redis.set(keys.TICK_HEARTBEAT, str(time.time()), ex=86400)
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: another tick may hold it now
            lock.release()
    for repo, due in result.fetch.items():
        request_fetch(repo, due)
    for name in result.refresh:
        request_refresh(name)
    for name in result.finalize:
        send(AppAdmin(action=AppAction.FINALIZE, app=name))
    return {"fetch": len(result.fetch), "refresh": len(result.refresh), "finalize": len(result.finalize),
            "removed": len(result.removed)}


@app.task(base=WaveTask, name="wavecd.fetch", bind=True)
def fetch(self: WaveTask, *, repo: str, due: list[str] | None = None,
          urgent: list[str] | None = None) -> dict[str, Any]:
    """One fetch per repository (deduplicated), then a refresh of each app it changed or that is due.

    `urgent` apps (a webhook's matches) are refreshed right after the fetch, before the detection; apps a
    commit changed are enqueued next, and the repo's fetch lock is released before the routine (merely
    due) refreshes are enqueued, so a push arriving meanwhile never waits behind hundreds of them.
    """
    svc = services()
    due = list(due or [])
    urgent = list(urgent or [])
    if not claim_fetch(svc, repo, due + urgent):
        return {"coalesced": True}  # the running fetch goes round again for these apps
    changed: list[str] = []
    routine: list[str] = []
    unchanged = 0

    def refresh_now(names: list[str]) -> None:
        for name in names:
            request_refresh(name)

    while True:
        try:
            outcome = fetch_and_detect(svc, repo, due, urgent, on_fetched=refresh_now)
        except Exception:
            release_fetch(svc, repo)
            raise
        touched = [n for n in outcome.refresh if n not in outcome.routine]
        for name in touched:
            request_refresh(name)
        changed.extend(outcome.early + touched)
        urgent = []
        routine.extend(n for n in outcome.refresh if n in outcome.routine)
        unchanged += len(outcome.unchanged)
        again = release_fetch(svc, repo)
        if again is None or not claim_fetch(svc, repo, []):
            break
        due = again
    with app.producer_or_acquire() as producer:
        for name in sorted(set(routine) - set(changed)):
            request_refresh(name, routine=True, producer=producer)
    # A short result (Flower shows it): a push to a monorepo may change hundreds of apps.
    return {"changed": catalogue.few(sorted(set(changed))), "routine": len(set(routine)), "unchanged": unchanged}


@app.task(base=WaveTask, name="wavecd.diff", bind=True)
def diff(self: WaveTask, *, app: str) -> str:
    """Compare desired with live under the app's lock; start an operation when one is needed."""
    svc = services()
    svc.coalescer.started(app)
    token = svc.locks.acquire(app)
    if token is None:
        return "coalesced: the app is busy; a refresh follows when it is free"
    svc.coalescer.got_lock(app)
    try:
        outcome = diff_step.diff(svc, token)  # typed errors are the step's to decide (diff_step.decide)
    except Exception:
        svc.locks.release(token)
        raise
    if outcome.next is not None:
        bind(operation=outcome.next.operation)
        _enqueue(outcome.next)  # the lock travels with the operation chain
        return outcome.summary
    svc.locks.release(token)
    if svc.coalescer.take_pending(app):
        request_refresh(app)
    if outcome.requeue_in is not None:  # waiting or a transient error: diff again after the countdown
        request_refresh(app, countdown=outcome.requeue_in, routine=True)
    return outcome.summary


def _step_done(name: str, token: LockToken, operation: str, seq: int, outcome: StepOutcome) -> str:
    if outcome.next is None and not outcome.finished:
        _reclaim_orphan(name, token, operation, seq)
    return _after(name, outcome)


def _reclaim_orphan(name: str, token: LockToken, operation: str, seq: int) -> None:
    """A copy of a step that its operation has moved past, while its token still holds the app (issue #17).

    Only a fault makes such a copy: a step recorded its move, then Redis went away before the message for
    the next step was sent (or before the step was acknowledged, so it came back). Its successor may be
    lost: the chain would sit until the lease lapses. So the lock is freed and a refresh asked for: the
    diff resumes the operation from its recorded progress under a new token, and a successor that does
    exist finds the lock gone and stops (fenced)."""
    svc = services()
    op = svc.store.current_operation(name)
    if op is None or op.id != operation or op.phase not in ACTIVE_PHASES or op.progress.seq <= seq:
        return
    if svc.locks.release(token):  # only while this token still owns the app
        log.warning("app %s: step %d of %s came again after its operation moved on; resuming it from its "
                    "recorded progress", name, seq, operation)
        request_refresh(name)


@app.task(base=WaveTask, name="wavecd.wave_apply", bind=True)
def wave_apply(self: WaveTask, *, app: str, operation: str, step: int, token: str, seq: int) -> str:
    """Apply one step (phase + wave) of an operation."""
    svc = services()
    lock = LockToken.decode(app, token)
    return _step_done(app, lock, operation, seq, apply_step(svc, lock, operation, step, seq))


@app.task(base=WaveTask, name="wavecd.health_check", bind=True)
def health_check(self: WaveTask, *, app: str, operation: str, step: int, token: str, seq: int) -> str:
    """Gate a step on its resources' health; come back later while they progress."""
    svc = services()
    lock = LockToken.decode(app, token)
    return _step_done(app, lock, operation, seq, check_step(svc, lock, operation, step, seq))


@app.task(base=WaveTask, name="wavecd.app_admin", bind=True)
def app_admin(self: WaveTask, *, action: str, app: str | None = None, stash: str | None = None,
              request: str | None = None, cascade: bool = False) -> str:
    """Changes to Applications themselves: create, update or delete a resource (from a stash key), produce
    a manifests request, delete, finalize."""
    svc = services()
    if action == AppAction.CREATE:
        created = create_app(svc, _given(stash, "stash"))
        request_refresh(created)
        return f"created {created}"
    if action == AppAction.UPDATE:
        updated = update_app(svc, _given(stash, "stash"))
        request_refresh(updated)
        return f"updated {updated}"
    if action == AppAction.MANIFESTS:
        return produce_manifests(svc, _given(request, "request"))
    if action == AppAction.DELETE_RESOURCE:
        owner, done = delete_resource(svc, _given(stash, "stash"))
        request_refresh(owner)
        return done
    name = _given(app, "app")
    if action == AppAction.DELETE:
        return f"deleted {delete_app(svc, name, cascade)}"
    if action == AppAction.FINALIZE:
        token = svc.locks.acquire(name)
        if token is None:
            svc.store.request_terminate(name)
            send(AppAdmin(action=AppAction.FINALIZE, app=name), countdown=2)
            return "app busy: terminating its operation first"
        try:
            outcome = finalize_app(svc, token)
        finally:
            svc.locks.release(token)
        if not outcome.done:
            send(AppAdmin(action=AppAction.FINALIZE, app=name), countdown=outcome.retry_in)
        return outcome.summary
    raise ValueError(f"unknown action {action!r}")


def _given(value: str | None, name: str) -> str:
    if not value:
        raise ValueError(f"this app_admin action needs `{name}`")
    return value
