"""Thread pools that live as long as their process, one per purpose and process.

Starting and joining a pool's threads for every use cost a fifth of a sync step's time (applies of one
kind go to the server in parallel, each step). A pool made before a fork is no use after it (its threads
stay in the parent), so a pool is kept per process id: a forked worker child makes its own on first use.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[tuple[int, str], ThreadPoolExecutor] = {}
_guard = threading.Lock()


def thread_pool(name: str, max_workers: int) -> ThreadPoolExecutor:
    """This process's pool named `name` (its threads are named after it), made on first use."""
    key = (os.getpid(), name)
    with _guard:
        pool = _pools.get(key)
        if pool is None:
            for stale in [k for k in _pools if k[0] != key[0]]:  # a parent's, inherited over a fork
                del _pools[stale]
            pool = _pools[key] = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"wavecd-{name}")
        return pool
