"""Typed errors: the type of a failure decides what happens next, as in Flux's reconcilers.

* `StallingError`: the input is wrong (broken manifests, invalid spec). Retrying cannot help; record
  the condition and wait for a new commit or a spec change.
* `WaitingError`: not a failure, the world is still converging (a wave is progressing). Check again
  after a countdown.
* `TransientError`: the network, a 5xx, a 409 conflict. Retry with backoff and jitter, bounded.
* `ConfigurationError`: credentials, a missing revision, an unknown cluster. Like stalling, but the fix
  is in configuration rather than in git; retried on the slow reconcile cadence.

Every message is meant for a user's eyes on the app's status: precise, and free of secrets.
"""

from __future__ import annotations


class WaveCDError(Exception):
    """Base of every error WaveCD reports on an app's status."""

    kind: str = "Error"
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

    kind = "Stalling"


class ConfigurationError(WaveCDError):
    """Bad configuration: credentials, revision, destination. Fix the settings, not the code."""

    kind = "Configuration"


class TransientError(WaveCDError):
    """Network or server trouble that may pass: retry with backoff."""

    kind = "Transient"
    retryable = True


class WaitingError(WaveCDError):
    """The world is still converging: look again later."""

    kind = "Waiting"
    retryable = True
