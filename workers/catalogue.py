"""WaveCD's task catalogue: every task's name, queue and keyword arguments, in one place.

Each task is a pydantic model of its arguments; the model's class names the task and its queue. Every
sender (the workers' chaining, the API and its webhook receiver, beat, `wavecd up`, bench scripts, test
harnesses) builds a model and hands it to `send`, so a message always carries named, checked arguments:
Flower and Celery's own log lines show `app='demo', operation='…', step=3` rather than a positional list.
`workers.base.WaveTask` validates what it receives against the same model, and the routing table the
workers and the API configure is derived from here.

This module imports neither Celery nor shared/: a process that only sends (the API, a bench script) reads
no worker configuration. Arguments are names, ids and revision shas only (never manifest bodies,
credentials or Secret data), and `shown` shortens long lists so a message stays readable in Flower.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Queue(StrEnum):
    GIT = "git"
    APPLY = "apply"
    HEALTH = "health"


QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)

# kombu's Redis transport serves priority 0 first; routine due refreshes use this lower one.
LOW_PRIORITY = 6


class TaskCall(BaseModel):
    """The keyword arguments of one task; the class names the task (`task`) and its queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: ClassVar[str]
    queue: ClassVar[Queue]

    def kwargs(self) -> dict[str, Any]:
        """The message's keyword arguments (JSON types only)."""
        return self.model_dump(mode="json")

    def shown(self) -> str:
        """How Flower and the task log lines show the arguments: a dict repr, a long list cut after a few
        names (`['a', 'b', 'c', 'd', 'e', ... +495]`)."""
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in self.kwargs().items()) + "}"


SHOWN_ITEMS = 5


def _short(value: object) -> str:
    if isinstance(value, list) and len(value) > SHOWN_ITEMS:
        return repr(value[:SHOWN_ITEMS])[:-1] + f", ... +{len(value) - SHOWN_ITEMS}]"
    return repr(value)


def few(names: list[str]) -> list[str]:
    """A list of names as a task's result shows it: the first few, then how many more."""
    if len(names) <= SHOWN_ITEMS:
        return list(names)
    return [*names[:SHOWN_ITEMS], f"... +{len(names) - SHOWN_ITEMS}"]


class Tick(TaskCall):
    """Beat's heartbeat: mirror Applications, fetch the due repositories, repair what crashes left."""

    task: ClassVar[str] = "wavecd.tick"
    queue: ClassVar[Queue] = Queue.HEALTH


class Fetch(TaskCall):
    """Fetch one repository, then refresh `urgent` apps at once, `due` ones and those a commit changed."""

    task: ClassVar[str] = "wavecd.fetch"
    queue: ClassVar[Queue] = Queue.GIT

    repo: str
    due: list[str] = Field(default_factory=list)
    urgent: list[str] = Field(default_factory=list)


class Diff(TaskCall):
    """Compare an app's desired with its live state; start an operation when one is needed."""

    task: ClassVar[str] = "wavecd.diff"
    queue: ClassVar[Queue] = Queue.GIT

    app: str


class _Step(TaskCall):
    app: str
    operation: str
    step: int
    token: str  # the app lock's owner token (an owner id and a fencing number; no secret)
    seq: int


class WaveApply(_Step):
    """Apply one step (phase + wave) of an operation."""

    task: ClassVar[str] = "wavecd.wave_apply"
    queue: ClassVar[Queue] = Queue.APPLY


class HealthCheck(_Step):
    """Gate a step on its resources' health."""

    task: ClassVar[str] = "wavecd.health_check"
    queue: ClassVar[Queue] = Queue.HEALTH


class AppAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    FINALIZE = "finalize"
    MANIFESTS = "manifests"
    DELETE_RESOURCE = "delete-resource"


class AppAdmin(TaskCall):
    """A change to an Application itself. `app` names the app (delete, finalize); `stash` is the Redis key
    of a stashed request (create, update, delete-resource); `request` a manifests request's id."""

    task: ClassVar[str] = "wavecd.app_admin"
    queue: ClassVar[Queue] = Queue.APPLY

    action: AppAction
    app: str | None = None
    stash: str | None = None
    request: str | None = None
    cascade: bool = False


class ProjectAdmin(TaskCall):
    """Apply one stashed AppProject change (its argument is the stash key only)."""

    task: ClassVar[str] = "wavecd.project_admin"
    queue: ClassVar[Queue] = Queue.APPLY

    stash: str


CATALOGUE: dict[str, type[TaskCall]] = {
    call.task: call for call in (Tick, Fetch, Diff, WaveApply, HealthCheck, AppAdmin, ProjectAdmin)}

TASK_ROUTES: dict[str, dict[str, str]] = {name: {"queue": call.queue.value} for name, call in CATALOGUE.items()}


class Sender(Protocol):
    """What `send` needs of a Celery app (the workers' own, or a sending-only one)."""

    def send_task(self, name: str, *args: Any, **options: Any) -> Any: ...  # noqa: ANN401 - Celery's


def send(celery: Sender, call: TaskCall, *, countdown: float | None = None, priority: int | None = None,
         **options: Any) -> None:  # noqa: ANN401 - Celery's message options (producer, retry_policy, ...)
    """Send `call` by its task's name to its queue, with named arguments only."""
    celery.send_task(call.task, args=(), kwargs=call.kwargs(), queue=call.queue.value,
                     countdown=countdown or None, priority=priority, argsrepr="()", kwargsrepr=call.shown(),
                     **options)


def parse(task: str, kwargs: dict[str, Any]) -> TaskCall | None:
    """The arguments a worker received, checked against the catalogue; None for a task not in it."""
    call = CATALOGUE.get(task)
    return None if call is None else call.model_validate(kwargs)
