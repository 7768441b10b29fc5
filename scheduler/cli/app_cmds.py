"""`wavecd app ...`: Argo CD's `argocd app` verbs against WaveCD's API server.

Verbs, flags, columns and exit codes follow `argocd app` so habits and scripts carry over: `app diff`
exits 0 with no difference, 1 with one, 2 on error; `app sync` (without `--async`) follows the
operation step by step until it ends and exits non-zero when it did not succeed. Errors are one line
on stderr and a non-zero exit, never a traceback.

WaveCD keeps each app's comparison from its last reconcile, so `app get --refresh` and `app diff`
(refreshing by default; `--no-refresh` reads the stored result) ask for a reconcile and wait for one
that started after the request.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scheduler.cli.client import ApiClient, ClientError, Connection

cli = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Manage applications through the API server (as `argocd app`).")

FINAL_PHASES = {"Succeeded", "Failed", "Error"}
POLL_SECONDS = 0.3

Server = Annotated[str | None, typer.Option("--server", help="API server URL (env WAVECD_SERVER).")]
Token = Annotated[str | None, typer.Option("--auth-token", help="API token (env WAVECD_AUTH_TOKEN).")]
Output = Annotated[str | None, typer.Option("--output", "-o", help="Output format: json|yaml|wide.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Give up after this many seconds (0: never).")]


# -- plumbing ----------------------------------------------------------------------------------------------


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=250, color_system=None)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _api(server: str | None, token: str | None, error_code: int = 1) -> Iterator[ApiClient]:
    """A client whose every failure becomes one line on stderr and exit `error_code`."""
    try:
        connection = Connection.resolve(server, token)
    except ClientError as exc:
        _fail(exc.message, error_code)
    client = ApiClient(connection)
    try:
        yield client
    except ClientError as exc:
        _fail(exc.message, error_code)
    finally:
        client.close()


def _print_structured(data: Any, output: str) -> None:  # noqa: ANN401 - JSON
    if output == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def _check_output(output: str | None, allowed: tuple[str, ...]) -> None:
    if output is not None and output not in allowed:
        _fail(f"unknown output format {output!r}: use one of {', '.join(allowed)}")


def _table(columns: list[str], rows: list[list[str]]) -> None:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def _status(app: dict[str, Any]) -> dict[str, Any]:
    return app.get("status") or {}


def _op(app: dict[str, Any]) -> dict[str, Any]:
    return _status(app).get("operationState") or {}


def _short(revision: str | None) -> str:
    return (revision or "")[:12]


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _deadline(timeout: float) -> Callable[[], bool]:
    end = time.monotonic() + timeout if timeout > 0 else None
    return lambda: end is not None and time.monotonic() > end


# -- waiting for the workers ------------------------------------------------------------------------------


def _refresh_and_wait(client: ApiClient, name: str, hard: bool, timeout: float = 120.0) -> dict[str, Any]:
    """Ask for a reconcile and return the app once a reconcile that began after the request is published.

    `reconciledAt` has one-second resolution: a reconcile stamped a later second than the request began
    after it; one stamped the same second counts when the stamp changed. The request is repeated every
    few seconds so a same-second reconcile that left the stamp unchanged is followed by another.
    """
    before = _status(client.get_app(name)).get("reconciledAt")
    asked = datetime.fromtimestamp(int(time.time()), UTC)
    client.refresh(name, hard=hard)
    last_ask = time.monotonic()
    expired = _deadline(timeout)
    while True:
        app = client.get_app(name)
        stamp = _status(app).get("reconciledAt")
        when = _parse_time(stamp)
        if when is not None and (when > asked or (when >= asked and stamp != before)):
            return app
        if expired():
            _fail(f"timed out after {timeout:.0f}s waiting for application '{name}' to be refreshed")
        if time.monotonic() - last_ask > 3.0:
            client.refresh(name, hard=hard)
            last_ask = time.monotonic()
        time.sleep(POLL_SECONDS)


def _step_text(op: dict[str, Any]) -> str:
    step = op.get("currentStep")
    if not step:
        return str(op.get("phase") or "")
    return f"step {step['index'] + 1}/{step['total']}: {step['phase']} wave {step['wave']} ({step.get('stage')})"


def _follow(client: ApiClient, name: str, previous: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Wait for the operation that replaces `previous` to start and end, showing its steps as they pass."""
    expired = _deadline(timeout)
    before_id = (_op(previous) or {}).get("id")
    before_stamp = _status(previous).get("reconciledAt")
    taken_since: float | None = None
    console = _console()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), console=console, transient=True) if console.is_terminal else None
    bar = None
    shown = ""
    try:
        if progress is not None:
            progress.start()
        while True:
            app = client.get_app(name)
            op = _op(app)
            if op.get("id") and op.get("id") != before_id:
                text = _step_text(op)
                if progress is not None:
                    step = op.get("currentStep") or {}
                    if bar is None:
                        bar = progress.add_task(text, total=step.get("total") or 1)
                    progress.update(bar, description=text,
                                    completed=step.get("index", step.get("total") or 1)
                                    if op.get("phase") not in FINAL_PHASES else step.get("total") or 1)
                elif text != shown and op.get("phase") not in FINAL_PHASES:
                    typer.echo(text)
                shown = text
                if op.get("phase") in FINAL_PHASES:
                    return app
            else:
                pending = app.get("pending") or {}
                if not pending.get("sync") and not pending.get("refresh"):
                    taken_since = taken_since or time.monotonic()
                    stamp_changed = _status(app).get("reconciledAt") != before_stamp
                    if stamp_changed or time.monotonic() - taken_since > 10.0:
                        _fail(f"the operation of application '{name}' did not start"
                              + _conditions_suffix(app))
            if expired():
                _fail(f"timed out after {timeout:.0f}s waiting for the operation of application '{name}'"
                      + (f" ({shown})" if shown else ""))
            time.sleep(POLL_SECONDS)
    finally:
        if progress is not None:
            progress.stop()


def _conditions_suffix(app: dict[str, Any]) -> str:
    messages = [f"{c.get('type')}: {c.get('message')}" for c in _status(app).get("conditions") or []]
    return (": " + "; ".join(messages)) if messages else ""


def _print_operation(op: dict[str, Any]) -> None:
    sync = (op.get("operation") or {}).get("sync") or {}
    typer.echo(f"Operation:          Sync{' (dry run)' if sync.get('dryRun') else ''}")
    typer.echo(f"Sync Revision:      {(op.get('syncResult') or {}).get('revision') or sync.get('revision') or ''}")
    typer.echo(f"Phase:              {op.get('phase')}")
    typer.echo(f"Start:              {op.get('startedAt') or ''}")
    typer.echo(f"Finished:           {op.get('finishedAt') or ''}")
    typer.echo(f"Message:            {op.get('message') or ''}")
    if op.get("currentStep"):
        typer.echo(f"Current Step:       {_step_text(op)}")
    results = (op.get("syncResult") or {}).get("resources") or []
    if results:
        typer.echo("")
        _table(["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "HOOK", "MESSAGE"],
               [[r.get("group", ""), r.get("kind", ""), r.get("namespace", ""), r.get("name", ""),
                 r.get("status", ""), (r.get("health") or {}).get("status", "") if isinstance(r.get("health"), dict)
                 else str(r.get("health") or ""), r.get("hookType", ""), r.get("message", "")]
                for r in results])


def _finish_operation(app: dict[str, Any], name: str) -> None:
    op = _op(app)
    _print_operation(op)
    if op.get("phase") != "Succeeded":
        _fail(f"operation of application '{name}' ended with phase {op.get('phase')}: {op.get('message') or ''}")


# -- list / get ---------------------------------------------------------------------------------------------


@cli.command("list")
def list_apps(
    project: Annotated[list[str] | None, typer.Option("--project", "-p", help="Only these projects.")] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-l", help="Label selector (k=v,...).")] = None,
    output: Output = None, server: Server = None, auth_token: Token = None,
) -> None:
    """List applications."""
    _check_output(output, ("json", "yaml", "wide", "name"))
    with _api(server, auth_token) as client:
        apps = client.list_apps(project or None, selector)
    if output in ("json", "yaml"):
        _print_structured(apps, output)
        return
    if output == "name":
        for app in apps:
            typer.echo(app["metadata"]["name"])
        return
    columns = ["NAME", "PROJECT", "SYNC STATUS", "HEALTH STATUS", "REVISION"]
    if output == "wide":
        columns += ["NAMESPACE", "REPO", "PATH", "TARGET", "CONDITIONS"]
    rows = []
    for app in apps:
        spec, status = app.get("spec") or {}, _status(app)
        row = [app["metadata"]["name"], spec.get("project", "default"),
               (status.get("sync") or {}).get("status", "Unknown"),
               (status.get("health") or {}).get("status", "Unknown"),
               _short((status.get("sync") or {}).get("revision"))]
        if output == "wide":
            source = spec.get("source") or (spec.get("sources") or [{}])[0]
            row += [(spec.get("destination") or {}).get("namespace", ""), source.get("repoURL", ""),
                    source.get("path", ""), source.get("targetRevision", "HEAD"),
                    ",".join(c.get("type", "") for c in status.get("conditions") or []) or "<none>"]
        rows.append(row)
    _table(columns, rows)


@cli.command("get")
def get_app(
    name: str,
    refresh: Annotated[bool, typer.Option("--refresh", help="Reconcile first and show the result.")] = False,
    hard_refresh: Annotated[bool, typer.Option("--hard-refresh", help="Also re-render manifests.")] = False,
    show_operation: Annotated[bool, typer.Option("--show-operation", help="Show the operation.")] = False,
    output: Output = None, server: Server = None, auth_token: Token = None,
) -> None:
    """Show an application: source, status, resources with their sync and health."""
    _check_output(output, ("json", "yaml", "wide"))
    with _api(server, auth_token) as client:
        app = _refresh_and_wait(client, name, hard_refresh) if (refresh or hard_refresh) else client.get_app(name)
    if output in ("json", "yaml"):
        _print_structured(app, output)
        return
    spec, status = app.get("spec") or {}, _status(app)
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    destination = spec.get("destination") or {}
    policy = "Automated" if (spec.get("syncPolicy") or {}).get("automated") is not None else "Manual"
    sync, health = status.get("sync") or {}, status.get("health") or {}
    lines = [("Name", app["metadata"]["name"]), ("Project", spec.get("project", "default")),
             ("Server", destination.get("server") or destination.get("name") or ""),
             ("Namespace", destination.get("namespace", "")), ("Repo", source.get("repoURL", "")),
             ("Target", source.get("targetRevision", "HEAD")), ("Path", source.get("path", "")),
             ("SyncWindow", "Sync Allowed"), ("Sync Policy", policy),
             ("Sync Status", f"{sync.get('status', 'Unknown')}"
                             + (f" to {source.get('targetRevision', 'HEAD')} ({_short(sync.get('revision'))})"
                                if sync.get("revision") else "")),
             ("Health Status", health.get("status", "Unknown") + (f" ({health['message']})"
                                                                  if health.get("message") else ""))]
    for label, value in lines:
        typer.echo(f"{label + ':':<20}{value}")
    for cond in status.get("conditions") or []:
        typer.echo(f"{'Condition:':<20}{cond.get('type')}: {cond.get('message')}")
    if show_operation and _op(app):
        typer.echo("")
        _print_operation(_op(app))
    resources = status.get("resources") or []
    typer.echo("")
    columns = ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"]
    if output == "wide":
        columns.insert(4, "VERSION")
        columns.append("PRUNE")
    rows = []
    for res in resources:
        res_health = res.get("health") or {}
        row = [res.get("group", ""), res.get("kind", ""), res.get("namespace", ""), res.get("name", ""),
               res.get("status", ""), res_health.get("status", ""), res_health.get("message", "") or ""]
        if output == "wide":
            row.insert(4, res.get("version", ""))
            row.append("yes" if res.get("requiresPruning") else "")
        rows.append(row)
    _table(columns, rows)


# -- diff ------------------------------------------------------------------------------------------------------


@cli.command("diff")
def diff_app(
    name: str,
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh",
                                          help="Reconcile first (default) or show the stored comparison.")] = True,
    hard_refresh: Annotated[bool, typer.Option("--hard-refresh", help="Also re-render manifests.")] = False,
    server: Server = None, auth_token: Token = None,
) -> None:
    """Show the (masked) difference between git and the cluster. Exit 0: none, 1: some, 2: error."""
    with _api(server, auth_token, error_code=2) as client:
        if refresh or hard_refresh:
            _refresh_and_wait_diff(client, name, hard_refresh)
        result = client.diff(name)
        app = client.get_app(name)
    if result.get("syncStatus") == "Unknown":
        _fail(f"application '{name}' could not be compared" + (_conditions_suffix(app) or ": not reconciled yet"),
              2)
    for item in result.get("items") or []:
        typer.echo(f"\n===== {item['resource']} ======")
        typer.echo(item["diff"].rstrip("\n"))
    if result.get("items") or result.get("syncStatus") == "OutOfSync":
        raise typer.Exit(1)


def _refresh_and_wait_diff(client: ApiClient, name: str, hard: bool) -> None:
    try:
        _refresh_and_wait(client, name, hard)
    except typer.Exit as exc:
        raise typer.Exit(2) from exc


# -- sync / rollback / terminate ---------------------------------------------------------------------------------


def _parse_resource(text: str) -> dict[str, str]:
    """`GROUP:KIND:NAME` or `GROUP:KIND:NAMESPACE/NAME` (group empty for the core group), as Argo CD."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        _fail(f"--resource {text!r}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME")
    group, kind, rest = parts
    namespace, _, name = rest.rpartition("/")
    if not name:
        _fail(f"--resource {text!r}: the name is empty")
    return {"group": group, "kind": kind, "name": name, **({"namespace": namespace} if namespace else {})}


@cli.command("sync")
def sync_app(
    name: str,
    prune: Annotated[bool, typer.Option("--prune", help="Delete resources git no longer has.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Preview the apply, change nothing.")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="Sync to this revision.")] = None,
    resource: Annotated[list[str] | None, typer.Option("--resource", help="GROUP:KIND:NAME (repeatable).")] = None,
    sync_option: Annotated[list[str] | None, typer.Option("--sync-option", help="e.g. Replace=true.")] = None,
    async_: Annotated[bool, typer.Option("--async", help="Do not wait for the operation.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Sync an application to its target revision, following it wave by wave."""
    body: dict[str, Any] = {"prune": prune, "dryRun": dry_run}
    if revision:
        body["revision"] = revision
    if resource:
        body["resources"] = [_parse_resource(r) for r in resource]
    if sync_option:
        body["syncOptions"] = list(sync_option)
    with _api(server, auth_token) as client:
        before = client.get_app(name)
        client.sync(name, body)
        if async_:
            typer.echo(f"application '{name}' sync requested")
            return
        app = _follow(client, name, before, timeout)
    _finish_operation(app, name)


@cli.command("rollback")
def rollback_app(
    name: str,
    history_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="History id (default: previous).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete resources the old revision lacks.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Roll an application back to a deployment of its history (default: the previous one)."""
    with _api(server, auth_token) as client:
        before = client.get_app(name)
        if history_id is None:
            history = sorted(_status(before).get("history") or [], key=lambda h: int(h.get("id", 0)))
            if len(history) < 2:
                _fail(f"application '{name}' has no previous deployment to roll back to")
            history_id = int(history[-2]["id"])
        client.rollback(name, history_id, prune=prune)
        app = _follow(client, name, before, timeout)
    _finish_operation(app, name)


@cli.command("terminate-op")
def terminate_op(name: str, server: Server = None, auth_token: Token = None) -> None:
    """Terminate the running operation of an application."""
    with _api(server, auth_token) as client:
        client.terminate(name)
    typer.echo(f"Application '{name}' operation terminating")


# -- history / wait ----------------------------------------------------------------------------------------------


@cli.command("history")
def history_app(name: str, output: Output = None, server: Server = None, auth_token: Token = None) -> None:
    """Show an application's deployment history."""
    _check_output(output, ("json", "yaml", "wide"))
    with _api(server, auth_token) as client:
        history = client.history(name)
    if output in ("json", "yaml"):
        _print_structured(history, output)
        return
    rows = []
    for entry in history:
        row = [str(entry.get("id", "")), str(entry.get("deployedAt", "")), str(entry.get("revision", ""))]
        if output == "wide":
            source = entry.get("source") or {}
            row += [source.get("repoURL", ""), source.get("path", ""), str(entry.get("initiatedBy") or "")]
        rows.append(row)
    _table(["ID", "DATE", "REVISION"] + (["REPO", "PATH", "INITIATED BY"] if output == "wide" else []), rows)


@cli.command("wait")
def wait_app(
    name: str,
    sync: Annotated[bool, typer.Option("--sync", help="Wait until Synced.")] = False,
    health: Annotated[bool, typer.Option("--health", help="Wait until Healthy.")] = False,
    operation: Annotated[bool, typer.Option("--operation", help="Wait until no operation runs.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Wait for an application to be synced, healthy and idle (all three when none is named)."""
    if not (sync or health or operation):
        sync = health = operation = True
    expired = _deadline(timeout)
    with _api(server, auth_token) as client:
        while True:
            app = client.get_app(name)
            status = _status(app)
            state = {
                "sync": (status.get("sync") or {}).get("status"),
                "health": (status.get("health") or {}).get("status"),
                "operation": _op(app).get("phase") or "none",
            }
            ok = (not sync or state["sync"] == "Synced") and (not health or state["health"] == "Healthy") \
                and (not operation or (state["operation"] in FINAL_PHASES | {"none"}
                                       and not (app.get("pending") or {}).get("sync")))
            if ok:
                typer.echo(f"application '{name}': {state['sync']}, {state['health']}, "
                           f"operation {state['operation']}")
                return
            if expired():
                _fail(f"timed out after {timeout:.0f}s waiting for application '{name}' "
                      f"(sync {state['sync']}, health {state['health']}, operation {state['operation']})")
            time.sleep(POLL_SECONDS)


# -- create / delete --------------------------------------------------------------------------------------------


def _read_manifests(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        _fail(f"{path} is not valid YAML: {str(exc).splitlines()[0]}")
    if not docs:
        _fail(f"{path} holds no Application")
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Application":
            _fail(f"{path}: every document must be an Application (kind: Application)")
    return docs


@cli.command("create")
def create_app(
    file: Annotated[str, typer.Option("--file", "-f", help="Application manifest (YAML; '-' for stdin).")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the app to exist.")] = 60,
    server: Server = None, auth_token: Token = None,
) -> None:
    """Create applications from a manifest file."""
    docs = _read_manifests(file)
    with _api(server, auth_token) as client:
        for doc in docs:
            answer = client.create(doc)
            name = answer["name"]
            expired = _deadline(timeout)
            while True:
                try:
                    client.get_app(name)
                    break
                except ClientError as exc:
                    if exc.status != 404:
                        raise
                if expired():
                    _fail(f"application '{name}' was accepted but did not appear within {timeout:.0f}s "
                          "(are workers running?)")
                time.sleep(POLL_SECONDS)
            typer.echo(f"application '{name}' created")


@cli.command("delete")
def delete_app(
    name: str,
    cascade: Annotated[bool, typer.Option("--cascade/--no-cascade",
                                          help="Also delete the app's resources (default).")] = True,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the application is gone.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Turn off prompting to confirm cascaded deletion of "
                                                          "application resources.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Delete an application (and, with --cascade, what it deployed); on a terminal, a cascade asks first."""
    if cascade and not yes and sys.stdout.isatty():  # as argocd: scripts (no terminal) are not asked
        try:
            answer = input(f"Are you sure you want to delete '{name}' and all its resources? [y/n] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            typer.echo(f"The command to delete '{name}' was cancelled.")
            return
    with _api(server, auth_token) as client:
        client.delete(name, cascade=cascade)
        if wait:
            expired = _deadline(timeout)
            while True:
                try:
                    client.get_app(name)
                except ClientError as exc:
                    if exc.status == 404:
                        break
                    raise
                if expired():
                    _fail(f"timed out after {timeout:.0f}s waiting for application '{name}' to be deleted")
                time.sleep(POLL_SECONDS)
    typer.echo(f"application '{name}' {'deleted' if wait else 'delete requested'}")
