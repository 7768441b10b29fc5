"""The `wavecd` command: one entry point whose verbs live in a module each.

* `wavecd app ...`    talks to the API server, as `argocd app ...` does (scheduler/cli/app_cmds.py);
* `wavecd admin ...`  checks health rules, plans, diffs and webhooks offline (scheduler/cli/admin.py);
* `wavecd up | serve | sandbox`  run the system or its parts (scheduler/cli/run.py).
"""

from __future__ import annotations

import importlib

import typer

cli = typer.Typer(name="wavecd", help="GitOps continuous delivery for Kubernetes, Argo CD-compatible.",
                  no_args_is_help=True, add_completion=False)

_SUBCOMMANDS = {
    "app": ("scheduler.cli.app_cmds", "Manage applications through the API server."),
    "admin": ("scheduler.cli.admin", "Offline checks: health rules, sync plans, diffs, webhook matching."),
    "check": ("scheduler.cli.check", "Health probes for processes without a port (beat)."),
    "proj": ("scheduler.cli.proj_cmds", "Manage projects (AppProjects) through the API server."),
    "cluster": ("scheduler.cli.cluster_cmds", "List the clusters applications deploy to."),
    "repo": ("scheduler.cli.repo_cmds", "List repositories and credential templates (never their secrets)."),
}


def _register() -> None:
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        cli.add_typer(module.cli, name=name, help=help_text)
    try:
        run = importlib.import_module("scheduler.cli.run")
    except ModuleNotFoundError as exc:
        if exc.name != "scheduler.cli.run":
            raise
        return
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
