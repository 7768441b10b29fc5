"""Plumbing shared by `wavecd proj`, `wavecd cluster` and `wavecd repo`: options, the client context,
output formats and tables, in the style of `wavecd app` (one line on stderr and exit 1 on error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from scheduler.cli.client import ClientError, Connection
from scheduler.cli.declarative_client import DeclarativeClient

Server = Annotated[str | None, typer.Option("--server", help="API server URL (env WAVECD_SERVER).")]
Token = Annotated[str | None, typer.Option("--auth-token", help="API token (env WAVECD_AUTH_TOKEN).")]
Output = Annotated[str | None, typer.Option("--output", "-o", help="Output format: json|yaml|name.")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def api(server: str | None, token: str | None) -> Iterator[DeclarativeClient]:
    try:
        connection = Connection.resolve(server, token)
    except ClientError as exc:
        fail(exc.message)
    client = DeclarativeClient(connection)
    try:
        yield client
    except ClientError as exc:
        fail(exc.message)
    finally:
        client.close()


def check_output(output: str | None, allowed: tuple[str, ...]) -> None:
    if output is not None and output not in allowed:
        fail(f"unknown output format {output!r}: use one of {', '.join(allowed)}")


def print_structured(data: Any, output: str) -> None:  # noqa: ANN401 - JSON
    if output == "json":
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def table(columns: list[str], rows: list[list[str]]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=250, color_system=None)
    out = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        out.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        out.add_row(*row)
    console.print(out)
