"""`wavecd check tick`: a health probe for beat, which has no port to probe.

Beat's only job is to send a tick every few seconds; a worker runs it and records when it finished. A
recent record proves the whole loop (beat, the broker, a worker) is alive, so compose and Kubernetes use
this command as beat's health check.
"""

from __future__ import annotations

import time

import redis
import typer

from shared.state import keys
from shared.state.redis_conn import make_redis

cli = typer.Typer(no_args_is_help=True)


@cli.callback()
def _root() -> None:
    """Health probes for the processes that have no HTTP port."""


@cli.command()
def tick(max_age: float = typer.Option(60.0, help="Seconds since the last tick beyond which it fails.")) -> None:
    """Exit 0 when a tick finished within --max-age seconds, 1 otherwise (one line on stderr)."""
    try:
        raw = make_redis().get(keys.TICK_HEARTBEAT)
    except redis.RedisError as exc:
        typer.echo(f"cannot read the tick heartbeat: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    if raw is None:
        typer.echo("no tick has run yet", err=True)
        raise typer.Exit(1)
    age = time.time() - float(raw)
    if age > max_age:
        typer.echo(f"the last tick finished {age:.0f}s ago (more than {max_age:.0f}s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"last tick {age:.1f}s ago")
