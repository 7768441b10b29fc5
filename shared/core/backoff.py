"""The one exponential backoff of WaveCD, so every retry (a transient error in the `diff` step, self-heal,
an operation's retry strategy) waits by the same formula instead of each writing its own.

`backoff_delay(attempt)` is `base * factor^attempt` capped at `cap` (attempt counts from 0), as Argo CD's
retry backoff and Kubernetes' workqueue rate limiter compute it; `jittered` spreads equal delays (many apps
failing at once against one API server) over [delay/2, delay], the "equal jitter" of the AWS architecture
blog, so they do not come back in step. Pure: the caller passes its own random source to test it.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, factor: float, cap: float) -> float:
    """`base * factor^attempt`, capped at `cap`; attempt counts from 0 (a negative one counts as 0)."""
    return float(min(cap, base * factor ** max(0, attempt)))


def jittered(delay: float, rng: random.Random | None = None) -> float:
    """`delay` spread over [delay/2, delay]."""
    draw = (rng or random).random()
    return delay / 2 + delay / 2 * draw
