"""Typed errors: the type of a failure decides what happens next, as in Flux's reconcilers.

* `StallingError`: the input is wrong (broken manifests, invalid spec). Retrying cannot help; record
  the condition and wait for a new commit or a spec change.
* `WaitingError`: not a failure, the world is still converging (a wave is progressing). Check again
  after a countdown.
* `TransientError`: the network, a 5xx, a 409 conflict. Retry with backoff and jitter, bounded.
* `ConfigurationError`: credentials, a missing revision, an unknown cluster. Like stalling, but the fix
  is in configuration rather than in git; retried on the slow reconcile cadence.

Every message is meant for a user's eyes on the app's status: precise, and free of secrets.

`kind` and `retryable` are what decides: `next_action(exc)` reads them and answers stop, wait or retry, and
every step of the pipeline asks it instead of deciding by `except` clauses (see `shared.pipeline.diff_step`
for the `diff` step's use: the condition it records and the countdown it comes back after).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    ERROR = "Error"                  # no more specific kind: like stalling
    STALLING = "Stalling"
    CONFIGURATION = "Configuration"
    TRANSIENT = "Transient"
    WAITING = "Waiting"


class NextAction(StrEnum):
    """What follows a failure: the three answers of Flux's reconcilers."""

    STOP = "stop"    # record the condition; nothing changes until the input does (a commit, the spec, settings)
    WAIT = "wait"    # not a failure: look again after a countdown, no attempt counted
    RETRY = "retry"  # retry after a backoff with jitter, a bounded number of times


class WaveCDError(Exception):
    """Base of every error WaveCD reports on an app's status."""

    kind: ErrorKind = ErrorKind.ERROR
    retryable: bool = False

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class StallingError(WaveCDError):
    """Bad content or spec: nothing will change until the input changes."""

    kind = ErrorKind.STALLING


class ConfigurationError(WaveCDError):
    """Bad configuration: credentials, revision, destination. Fix the settings, not the code."""

    kind = ErrorKind.CONFIGURATION


class TransientError(WaveCDError):
    """Network or server trouble that may pass: retry with backoff."""

    kind = ErrorKind.TRANSIENT
    retryable = True


class WaitingError(WaveCDError):
    """The world is still converging: look again later (after `after` seconds, when the raiser knows)."""

    kind = ErrorKind.WAITING
    retryable = True

    def __init__(self, message: str, *, after: float | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        self.after = after
        super().__init__(message, path=path, line=line)


def next_action(exc: WaveCDError) -> NextAction:
    """Stop, wait or retry, from the error's `retryable` and `kind` alone (never from its class name)."""
    if not exc.retryable:
        return NextAction.STOP
    return NextAction.WAIT if exc.kind == ErrorKind.WAITING else NextAction.RETRY
