"""What users ask of an app (sync, rollback, terminate, refresh), checked and recorded for the workers.

The API server and the CLI never touch git or the cluster: an action is validated against the app's
state in Redis and recorded there (a sync request, a terminate flag, a hard-refresh mark); the caller
then enqueues a refresh, and the `diff` step acts on what was recorded. The refusals and their words
are Argo CD's, so scripts written for `argocd app` read them the same way. A refusal is typed (not found,
conflict, invalid); the HTTP front door maps the type to its status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.models import Application
from shared.operation.model import ACTIVE_PHASES, SyncRequest
from shared.state.app_lock import AppLocks
from shared.state.app_store import AppStore

IN_PROGRESS = "another operation is already in progress"
NO_OPERATION = "No operation is in progress"


class ActionError(Exception):
    """A refused action, in words for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionNotFound(ActionError):
    """The app (or the history entry) the action names does not exist."""


class ActionConflict(ActionError):
    """The app's state refuses the action now (an operation in progress, none to terminate, auto-sync on)."""


class ActionInvalid(ActionError):
    """The request itself is malformed."""


@dataclass
class AppActions:
    store: AppStore
    locks: AppLocks

    def app(self, name: str) -> Application:
        doc = self.store.get_app(name)
        if doc is None:
            raise ActionNotFound(f"application '{name}' not found")
        return Application.model_validate(doc)

    def _operation_running(self, name: str) -> bool:
        op = self.store.operation(name)  # the phase only: a damaged document must not block a refusal
        return op is not None and op.get("phase") in ACTIVE_PHASES

    def sync(self, name: str, *, prune: bool = False, dry_run: bool = False, revision: str | None = None,
             resources: list[dict[str, str]] | None = None, sync_options: list[str] | None = None,
             username: str = "api") -> dict[str, Any]:
        self.app(name)
        if self._operation_running(name) or self.store.peek_sync_request(name) is not None:
            raise ActionConflict(IN_PROGRESS)
        for item in resources or []:
            if not item.get("kind") or not item.get("name"):
                raise ActionInvalid("each resource needs at least kind and name")
        request = SyncRequest(prune=prune, dry_run=dry_run, username=username, revision=revision or None,
                              resources=resources or None, sync_options=sync_options or None).dump()
        self.store.request_sync(name, request)
        return request

    def rollback(self, name: str, history_id: int, *, prune: bool = False, dry_run: bool = False) -> dict[str, Any]:
        app = self.app(name)
        if app.spec.automated:
            raise ActionConflict("rollback cannot be initiated when auto-sync is enabled")
        history = self.store.status(name).get("history") or []
        match = next((h for h in history if int(h.get("id", -1)) == history_id), None)
        if match is None:
            raise ActionNotFound(f"application '{name}' does not have deployment id '{history_id}' in history")
        return self.sync(name, prune=prune, dry_run=dry_run, revision=str(match["revision"]),
                         username="rollback")

    def terminate(self, name: str) -> None:
        self.app(name)
        if not self._operation_running(name):
            raise ActionConflict(NO_OPERATION)
        self.store.request_terminate(name)

    def refresh(self, name: str, *, hard: bool = False) -> None:
        self.app(name)
        if hard:
            self.store.request_hard_refresh(name)
