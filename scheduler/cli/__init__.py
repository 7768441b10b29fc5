"""The `wavecd` command: one entry point whose verbs live in a module each.

* `wavecd app ...`    talks to the API server, as `argocd app ...` does (scheduler/cli/app_cmds.py);
* `wavecd admin ...`  checks health rules, plans, diffs and webhooks offline (scheduler/cli/admin.py);
* `wavecd up | serve | sandbox`  run the system or its parts (scheduler/cli/run.py).

Help is plain text as `argocd --help` prints it: option names are never cut to fit a narrow terminal, and a
value is named the way cobra names it (`--revision string`, `--resource stringArray`), not `<str>`.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup

from scheduler.cli import admin, app_cmds, check, cluster_cmds, proj_cmds, repo_cmds, run

# How cobra (argocd's CLI library) names an option's value, by the Python type typer shows.
_VALUE_NAMES = {"str": "string", "int": "int", "float": "float", "Path": "path", "list[str]": "stringArray",
                "list[int]": "intArray", "list[Path]": "pathArray", "datetime": "time", "int range": "int",
                "float range": "float"}


class _PlainArgument(TyperArgument):
    """An argument whose help line is its name alone (typer would add `<str>`)."""

    def display_type_rich(self, ctx: Any) -> str | None:  # noqa: ANN401 - click's context
        return None


def _plain_help(command: Any) -> None:  # noqa: ANN401 - a typer/click command or group
    """Plain help for `command` and everything under it; values named as cobra names them."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument":
            param.metavar = param.metavar or (param.name or "value").upper()
            if isinstance(param, TyperArgument):
                param.__class__ = _PlainArgument
            continue
        if param.metavar is not None or getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        shown = param.display_type_rich(None) if hasattr(param, "display_type_rich") else None
        label = str(shown or "").strip("<>").removesuffix("...")
        param.metavar = _VALUE_NAMES.get(label, label or "string")
    for sub in (getattr(command, "commands", None) or {}).values():
        _plain_help(sub)


class _WaveCDGroup(TyperGroup):
    """The root group: applies `_plain_help` to the whole command tree once it is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - click's signature
        super().__init__(*args, **kwargs)
        _plain_help(self)


cli = typer.Typer(name="wavecd", help="GitOps continuous delivery for Kubernetes, Argo CD-compatible.",
                  no_args_is_help=True, add_completion=False, cls=_WaveCDGroup, rich_markup_mode=None)

_SUBCOMMANDS = {
    "app": (app_cmds.cli, "Manage applications through the API server."),
    "admin": (admin.cli, "Offline checks: health rules, sync plans, diffs, webhook matching."),
    "check": (check.cli, "Health probes for processes without a port (beat)."),
    "proj": (proj_cmds.cli, "Manage projects (AppProjects) through the API server."),
    "cluster": (cluster_cmds.cli, "List the clusters applications deploy to."),
    "repo": (repo_cmds.cli, "List repositories and credential templates (never their secrets)."),
}


def _register() -> None:
    """Every subcommand group, imported plainly: a missing module is a bug to see, not a command to skip."""
    for name, (group, help_text) in _SUBCOMMANDS.items():
        cli.add_typer(group, name=name, help=help_text)
    run.register(cli)


@cli.callback()
def _root() -> None:
    """GitOps continuous delivery for Kubernetes, Argo CD-compatible."""


@cli.command()
def version() -> None:
    """Print WaveCD's version."""
    from importlib.metadata import version as dist_version

    typer.echo(f"wavecd {dist_version('wavecd')}")


_register()


def main() -> None:
    cli()
