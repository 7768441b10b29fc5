"""`wavecd cluster list`: the clusters WaveCD deploys to (in-cluster and Argo CD cluster Secrets), as
`argocd cluster list` shows them; never a credential, only which kind of authentication is configured."""

from __future__ import annotations

import typer

from scheduler.cli.declarative_cmds import Output, Server, Token, api, check_output, print_structured, table

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Clusters (as `argocd cluster`).")


@cli.command("list")
def list_clusters(output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """List clusters."""
    check_output(output, ("json", "yaml", "server"))
    with api(server, auth_token) as client:
        clusters = client.clusters()
    if output in ("json", "yaml"):
        print_structured(clusters, output)
        return
    if output == "server":
        for cluster in clusters:
            typer.echo(cluster["server"])
        return
    table(["SERVER", "NAME", "NAMESPACES", "AUTH", "PROJECT"],
          [[c["server"], c["name"], ",".join(c.get("namespaces") or []) or "<all>",
            ",".join(c.get("auth") or []) or ("in-cluster" if c.get("source") == "in-cluster" else "none"),
            c.get("project") or ""] for c in clusters])
