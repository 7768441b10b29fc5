"""How the API (and the dashboard's actions) hand work to the workers: WaveCD's tasks, sent through the task
catalogue (`workers.catalogue`), with the refresh coalesced as the workers coalesce it."""

from __future__ import annotations

from celery import Celery

from shared.state.coalesce import Coalescer
from workers import catalogue
from workers.catalogue import AppAction, AppAdmin, Diff, Fetch, TaskCall


class TaskSender:
    """Sends WaveCD's tasks through the task catalogue (`workers.catalogue`: named arguments, the task's
    queue) with the workers' serializer.

    A Celery app of its own (not the workers' configured one), bound to this server's Redis, so the
    API process starts nothing and reads no worker configuration to send a message.
    """

    def __init__(self, broker_url: str, coalescer: Coalescer) -> None:
        self.celery = Celery("wavecd-api", broker=broker_url, set_as_current=False)
        self.celery.conf.update(task_routes=catalogue.TASK_ROUTES, task_serializer="json",
                                accept_content=["json"], task_default_queue=catalogue.QUEUES[0],
                                broker_connection_retry_on_startup=False)
        self.coalescer = coalescer

    def send(self, call: TaskCall) -> None:
        catalogue.send(self.celery, call,
                       retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2})

    def refresh(self, name: str) -> bool:
        """Coalesced like `workers.tasks.request_refresh`: one queued `diff` per app at most."""
        if not self.coalescer.claim_enqueue(name):
            return False
        self.send(Diff(app=name))
        return True

    def fetch(self, repo_url: str, due: list[str], urgent: list[str] | None = None) -> None:
        """Fetch the repository, then refresh `urgent` at once, then `due` and any app whose source changed."""
        self.send(Fetch(repo=repo_url, due=list(due), urgent=list(urgent or [])))

    def delete_app(self, name: str, cascade: bool) -> None:
        self.send(AppAdmin(action=AppAction.DELETE, app=name, cascade=cascade))

    def close(self) -> None:
        self.celery.close()
