"""The worker process's clients, made after the fork and never at import.

Celery's prefork pool forks children from a parent that must hold no sockets; each child builds its
own Redis client, git cache and Kubernetes clients on `worker_process_init`, and tasks reach them here.
"""

from __future__ import annotations

from celery.signals import worker_process_init

from shared.core.settings import get_settings
from shared.pipeline.services import Services

_services: Services | None = None


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


@worker_process_init.connect
def _init_process(**_: object) -> None:
    """A fresh set of clients for this child process (nothing inherited from the parent)."""
    global _services
    get_settings.cache_clear()
    _services = Services(get_settings())
