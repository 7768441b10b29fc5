"""`wavecd cluster list`: the clusters WaveCD deploys to (in-cluster and Argo CD cluster Secrets), as
`argocd cluster list` shows them; never a credential, only which kind of authentication is configured."""

from __future__ import annotations

import typer

from scheduler.cli.declarative_cmds import Output, Server, Token, api, check_output, print_structured, table

MESSAGE_WIDTH = 60

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
    rows = []
    for c in clusters:
        connection = c.get("connection") or {}
        message = connection.get("message") or ""
        if len(message) > MESSAGE_WIDTH:  # the whole message is in `-o json`
            message = message[:MESSAGE_WIDTH - 3] + "..."
        rows.append([c["server"], c["name"], connection.get("version") or "", connection.get("status") or "Unknown",
                     message, ",".join(c.get("namespaces") or []) or "<all>",
                     ",".join(c.get("auth") or []) or ("in-cluster" if c.get("source") == "in-cluster" else "none"),
                     c.get("project") or ""])
    table(["SERVER", "NAME", "VERSION", "STATUS", "MESSAGE", "NAMESPACES", "AUTH", "PROJECT"], rows)
