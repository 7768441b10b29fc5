"""`wavecd proj ...`: Argo CD's `argocd proj` verbs against WaveCD's API server.

list, get, create (from flags or `-f` a manifest), delete, add-destination, add-source and `windows
list`, with Argo CD's flags and columns. Changes are applied by a worker; the command waits for its
outcome (`--async` does not) and exits 1 with the reason when it was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from scheduler.cli.declarative_cmds import Output, Server, Token, api, check_output, fail, print_structured, table

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Manage projects (as `argocd proj`).")
windows_cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Sync windows of a project.")
cli.add_typer(windows_cli, name="windows")

Async = Annotated[bool, typer.Option("--async", help="Do not wait for a worker to apply the change.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the change (0: forever).")]


def _count(items: list[Any], one: str, many: str) -> str:
    if not items:
        return "<none>"
    return one if len(items) == 1 else f"{len(items)} {many}"


def _destination(item: dict[str, Any]) -> str:
    return f"{item.get('server') or item.get('name') or ''},{item.get('namespace', '')}"


def _group_kind(item: dict[str, Any]) -> str:
    return f"{item.get('group', '')}/{item.get('kind', '')}"


def _orphaned(spec: dict[str, Any]) -> str:
    orphaned = spec.get("orphanedResources")
    if orphaned is None:
        return "disabled"
    return f"enabled (warn={str(bool(orphaned.get('warn'))).lower()})"


def _finish(client: Any, accepted: dict[str, Any], asynchronous: bool, timeout: float) -> None:  # noqa: ANN401
    if asynchronous:
        typer.echo(accepted["message"])
        return
    typer.echo(client.wait_change(accepted["change"], timeout))


@cli.command("list")
def list_projects(output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """List projects."""
    check_output(output, ("json", "yaml", "name"))
    with api(server, auth_token) as client:
        projects = client.projects()
    if output in ("json", "yaml"):
        print_structured(projects, output)
        return
    if output == "name":
        for project in projects:
            typer.echo(project["metadata"]["name"])
        return
    rows = []
    for project in projects:
        spec = project.get("spec") or {}
        dests, repos = spec.get("destinations") or [], spec.get("sourceRepos") or []
        white, black = spec.get("clusterResourceWhitelist") or [], spec.get("namespaceResourceBlacklist") or []
        rows.append([project["metadata"]["name"], spec.get("description", ""),
                     _count(dests, _destination(dests[0]) if dests else "", "destinations"),
                     _count(repos, repos[0] if repos else "", "repos"),
                     _count(white, _group_kind(white[0]) if white else "", "resources"),
                     _count(black, _group_kind(black[0]) if black else "", "resources"),
                     _count(spec.get("signatureKeys") or [], "1 key", "keys"), _orphaned(spec)])
    table(["NAME", "DESCRIPTION", "DESTINATIONS", "SOURCES", "CLUSTER-RESOURCE-WHITELIST",
           "NAMESPACE-RESOURCE-BLACKLIST", "SIGNATURE-KEYS", "ORPHANED-RESOURCES"], rows)


@cli.command("get")
def get_project(name: str, output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """Show a project."""
    check_output(output, ("json", "yaml"))
    with api(server, auth_token) as client:
        project = client.project(name)
    if output in ("json", "yaml"):
        print_structured(project, output)
        return
    spec = project.get("spec") or {}

    def listed(items: list[Any], show: Any = str) -> str:  # noqa: ANN401
        return ", ".join(show(i) for i in items) if items else "<none>"

    lines = [("Name", name), ("Description", spec.get("description", "")),
             ("Destinations", listed(spec.get("destinations") or [], _destination)),
             ("Repositories", listed(spec.get("sourceRepos") or [])),
             ("Source Namespaces", listed(spec.get("sourceNamespaces") or [])),
             ("Allowed Cluster Resources", listed(spec.get("clusterResourceWhitelist") or [], _group_kind)),
             ("Denied Cluster Resources", listed(spec.get("clusterResourceBlacklist") or [], _group_kind)),
             ("Allowed Namespaced Resources", listed(spec.get("namespaceResourceWhitelist") or [], _group_kind)
              if spec.get("namespaceResourceWhitelist") is not None else "*/*"),
             ("Denied Namespaced Resources", listed(spec.get("namespaceResourceBlacklist") or [], _group_kind)),
             ("Sync Windows", str(len(spec.get("syncWindows") or [])) if spec.get("syncWindows") else "<none>"),
             ("Orphaned Resources", _orphaned(spec))]
    for label, value in lines:
        typer.echo(f"{label + ':':<30}{value}")


def _parse_dest(text: str) -> dict[str, str]:
    server, sep, namespace = text.partition(",")
    if not sep or not server:
        fail(f"destination {text!r} must be SERVER,NAMESPACE")
    return {"server": server, "namespace": namespace}


def _parse_group_kind(text: str) -> dict[str, str]:
    group, sep, kind = text.rpartition("/")
    if not sep or not kind:
        fail(f"resource {text!r} must be GROUP/KIND (GROUP may be empty: /Namespace)")
    return {"group": group, "kind": kind}


@cli.command("create")
def create_project(
    name: Annotated[str | None, typer.Argument(help="Project name (or from the -f manifest).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="An AppProject manifest (YAML or JSON).")] = None,
    description: Annotated[str, typer.Option("--description", help="Project description.")] = "",
    dest: Annotated[list[str] | None, typer.Option("--dest", "-d", help="SERVER,NAMESPACE (repeatable).")] = None,
    src: Annotated[list[str] | None, typer.Option("--src", "-s", help="Permitted source repository URL.")] = None,
    allow_cluster_resource: Annotated[list[str] | None, typer.Option(
        "--allow-cluster-resource", help="GROUP/KIND of a permitted cluster-scoped kind.")] = None,
    deny_namespaced_resource: Annotated[list[str] | None, typer.Option(
        "--deny-namespaced-resource", help="GROUP/KIND of a denied namespaced kind.")] = None,
    source_namespaces: Annotated[list[str] | None, typer.Option(
        "--source-namespaces", help="Namespaces whose Applications may use the project.")] = None,
    orphaned_resources_warn: Annotated[bool, typer.Option(
        "--orphaned-resources-warn", help="Warn about orphaned resources.")] = False,
    upsert: Annotated[bool, typer.Option("--upsert", help="Replace the project if it exists.")] = False,
    asynchronous: Async = False, timeout: Timeout = 60.0, server: Server = None, auth_token: Token = None,
) -> None:
    """Create a project."""
    if file is not None:
        try:
            manifest = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            fail(f"cannot read {file}: {str(exc).splitlines()[0]}")
        if not isinstance(manifest, dict):
            fail(f"{file} must hold one AppProject object")
        if name:
            manifest.setdefault("metadata", {})["name"] = name
    else:
        if not name:
            fail("a project name (or -f FILE) is required")
        spec: dict[str, Any] = {
            "description": description, "sourceRepos": list(src or []),
            "destinations": [_parse_dest(d) for d in dest or []],
            "clusterResourceWhitelist": [_parse_group_kind(r) for r in allow_cluster_resource or []],
            "namespaceResourceBlacklist": [_parse_group_kind(r) for r in deny_namespaced_resource or []],
            "sourceNamespaces": list(source_namespaces or [])}
        if orphaned_resources_warn:
            spec["orphanedResources"] = {"warn": True}
        manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name},
                    "spec": spec}
    with api(server, auth_token) as client:
        _finish(client, client.create_project(manifest, upsert), asynchronous, timeout)


@cli.command("delete")
def delete_project(name: str, asynchronous: Async = False, timeout: Timeout = 60.0, server: Server = None,
                   auth_token: Token = None) -> None:
    """Delete a project (refused while applications use it, and for `default`)."""
    with api(server, auth_token) as client:
        _finish(client, client.delete_project(name), asynchronous, timeout)


@cli.command("add-destination")
def add_destination(
    project: str, server_or_name: Annotated[str, typer.Argument(metavar="SERVER")], namespace: str,
    by_name: Annotated[bool, typer.Option("--name", help="SERVER is a cluster name, not a server URL.")] = False,
    asynchronous: Async = False, timeout: Timeout = 60.0, server: Server = None, auth_token: Token = None,
) -> None:
    """Add a permitted destination (cluster and namespace) to a project."""
    destination = {"name" if by_name else "server": server_or_name, "namespace": namespace}
    with api(server, auth_token) as client:
        _finish(client, client.add_destination(project, destination), asynchronous, timeout)


@cli.command("add-source")
def add_source(project: str, url: str, asynchronous: Async = False, timeout: Timeout = 60.0,
               server: Server = None, auth_token: Token = None) -> None:
    """Add a permitted source repository (a URL glob; '!' forbids) to a project."""
    with api(server, auth_token) as client:
        _finish(client, client.add_source(project, url), asynchronous, timeout)


@windows_cli.command("list")
def list_windows(project: str, output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """List a project's sync windows and whether each is active now."""
    check_output(output, ("json", "yaml"))
    with api(server, auth_token) as client:
        windows = client.windows(project)
    if output in ("json", "yaml"):
        print_structured(windows, output)
        return
    rows = [[str(w["id"]), "Active" if w["active"] else "Inactive", w["kind"], w["schedule"], w["duration"],
             ",".join(w.get("applications") or []) or "-", ",".join(w.get("namespaces") or []) or "-",
             ",".join(w.get("clusters") or []) or "-", "Enabled" if w.get("manualSync") else "Disabled",
             w.get("timeZone") or "UTC"] for w in windows]
    table(["ID", "STATUS", "KIND", "SCHEDULE", "DURATION", "APPLICATIONS", "NAMESPACES", "CLUSTERS", "MANUALSYNC",
           "TIMEZONE"], rows)
