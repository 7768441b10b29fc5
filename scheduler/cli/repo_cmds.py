"""`wavecd repo list`: repositories and credential templates declared as Argo CD Secrets, as
`argocd repo list` shows them: CREDS says whether credentials exist, never what they are."""

from __future__ import annotations

import typer

from scheduler.cli.declarative_cmds import Output, Server, Token, api, check_output, print_structured, table

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Repositories (as `argocd repo`).")


@cli.command("list")
def list_repositories(output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """List repositories and credential templates."""
    check_output(output, ("json", "yaml", "url"))
    with api(server, auth_token) as client:
        repos = client.repositories()
    if output in ("json", "yaml"):
        print_structured(repos, output)
        return
    if output == "url":
        for repo in repos:
            typer.echo(repo["url"])
        return

    def creds(repo: dict[str, object]) -> str:
        return str(any(repo.get(k) for k in ("username", "password", "sshPrivateKey", "tlsClientCert"))).lower()

    table(["TYPE", "NAME", "REPO", "KIND", "INSECURE", "CREDS", "PROJECT", "SOURCE"],
          [[str(r.get("type") or "git"), str(r.get("name") or ""), str(r["url"]), str(r.get("kind") or ""),
            str(bool(r.get("insecure"))).lower(), creds(r), str(r.get("project") or ""), str(r.get("source") or "")]
           for r in repos])
