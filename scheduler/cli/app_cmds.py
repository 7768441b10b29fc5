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
from urllib.parse import quote

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
    waiting = "waiting for a worker to start the operation"
    bar = None
    shown = ""
    next_index = 0  # on a pipe: the first step not printed yet
    try:
        if progress is not None:
            progress.start()
            bar = progress.add_task(waiting, total=None)
        else:
            typer.echo(waiting)
        while True:
            app = client.get_app(name)
            op = _op(app)
            if op.get("id") and op.get("id") != before_id:
                text = _step_text(op)
                step = op.get("currentStep") or {}
                if progress is not None and bar is not None:
                    progress.update(bar, description=text, total=step.get("total") or 1,
                                    completed=step.get("index", step.get("total") or 1)
                                    if op.get("phase") not in FINAL_PHASES else step.get("total") or 1)
                elif text != shown and op.get("phase") not in FINAL_PHASES:
                    for passed in range(next_index, int(step.get("index", 0))):  # ran between two polls
                        typer.echo(f"step {passed + 1}/{step['total']}: done")
                    typer.echo(text)
                    next_index = int(step.get("index", 0)) + 1 if step else next_index
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
    columns = ["NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "SYNCPOLICY", "CONDITIONS",
               "REPO", "PATH", "TARGET"]
    if output == "wide":
        columns.append("REVISION")
    rows = []
    for app in apps:
        spec, status = app.get("spec") or {}, _status(app)
        source = spec.get("source") or (spec.get("sources") or [{}])[0]
        destination = spec.get("destination") or {}
        row = [app["metadata"]["name"], destination.get("server") or destination.get("name") or "",
               destination.get("namespace", ""), spec.get("project", "default"),
               (status.get("sync") or {}).get("status", "Unknown"),
               (status.get("health") or {}).get("status", "Unknown"),
               sync_policy_column(spec), conditions_summary(status), source.get("repoURL", ""),
               source.get("path", ""), source.get("targetRevision", "")]
        if output == "wide":
            row.append(_short((status.get("sync") or {}).get("revision")))
        rows.append(row)
    _table(columns, rows)


def _automated(spec: dict[str, Any]) -> dict[str, Any] | None:
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if automated is None or automated.get("enabled") is False:
        return None
    return automated


def sync_policy_column(spec: dict[str, Any]) -> str:
    """`argocd app list`'s SYNCPOLICY: Manual, Auto or Auto-Prune."""
    automated = _automated(spec)
    if automated is None:
        return "Manual"
    return "Auto-Prune" if automated.get("prune") else "Auto"


def sync_policy_text(spec: dict[str, Any]) -> str:
    """`argocd app get`'s Sync Policy: Manual, Automated or Automated (Prune)."""
    automated = _automated(spec)
    if automated is None:
        return "Manual"
    return "Automated (Prune)" if automated.get("prune") else "Automated"


def conditions_summary(status: dict[str, Any]) -> str:
    """`argocd app list`'s CONDITIONS: each condition type once, with a count when it repeats."""
    counts: dict[str, int] = {}
    for condition in status.get("conditions") or []:
        kind = str(condition.get("type", ""))
        counts[kind] = counts.get(kind, 0) + 1
    items = sorted(kind if count == 1 else f"{kind}({count})" for kind, count in counts.items())
    return ",".join(items) or "<none>"


def sync_window_status(client: ApiClient, name: str) -> str | None:
    """`argocd app get`'s SyncWindow line: "Sync Allowed", "Sync Denied" or "Manual Allowed" from the
    project's windows that apply to the app now, as the API's sync-windows endpoint decides; None (no
    line, as Argo CD prints none) when no window applies or the server cannot say (a missing project)."""
    try:
        windows = client._call("GET", f"/api/v1/applications/{quote(name, safe='')}/syncwindows")
    except ClientError:
        return None
    if not windows.get("assignedWindows"):
        return None
    return str(windows.get("status") or "") or None


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
        window = None if output in ("json", "yaml") else sync_window_status(client, name)
    if output in ("json", "yaml"):
        _print_structured(app, output)
        return
    spec, status = app.get("spec") or {}, _status(app)
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    destination = spec.get("destination") or {}
    policy = sync_policy_text(spec)
    sync, health = status.get("sync") or {}, status.get("health") or {}
    lines = [("Name", app["metadata"]["name"]), ("Project", spec.get("project", "default")),
             ("Server", destination.get("server") or destination.get("name") or ""),
             ("Namespace", destination.get("namespace", "")), ("Repo", source.get("repoURL", "")),
             ("Target", source.get("targetRevision", "HEAD")), ("Path", source.get("path", "")),
             *([("SyncWindow", window)] if window else []), ("Sync Policy", policy),
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
        typer.echo(f"\n===== {diff_header(item['resource'])} ======")
        typer.echo(item["diff"].rstrip("\n"))
    if result.get("items") or result.get("syncStatus") == "OutOfSync":
        raise typer.Exit(1)


def diff_header(resource: str) -> str:
    """Argo CD's `group/Kind namespace/name` (an empty group or namespace stays empty) from WaveCD's
    resource key `Kind[.group] [namespace/]name`."""
    kind_group, _, where = resource.partition(" ")
    kind, _, group = kind_group.partition(".")
    namespace, _, name = where.rpartition("/")
    return f"{group}/{kind} {namespace}/{name}"


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
    force: Annotated[bool, typer.Option("--force", help="Force apply (sync option Force=true).")] = False,
    apply_out_of_sync_only: Annotated[bool, typer.Option(
        "--apply-out-of-sync-only", help="Apply only the resources that are out of sync.")] = False,
    async_: Annotated[bool, typer.Option("--async", help="Do not wait for the operation.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Sync an application to its target revision, following it wave by wave."""
    body: dict[str, Any] = {"prune": prune, "dryRun": dry_run}
    if revision:
        body["revision"] = revision
    if resource:
        body["resources"] = [_parse_resource(r) for r in resource]
    options = list(sync_option or [])
    if force:
        options.append("Force=true")
    if apply_out_of_sync_only:
        options.append("ApplyOutOfSyncOnly=true")
    if options:
        body["syncOptions"] = options
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
    names: Annotated[list[str] | None, typer.Argument(metavar="[APPNAME...]", help="Applications to wait for.",
                                                      show_default=False)] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-l",
                                                 help="Wait for the apps with these labels (k=v,...).")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Wait until Synced.")] = False,
    health: Annotated[bool, typer.Option("--health", help="Wait until Healthy.")] = False,
    operation: Annotated[bool, typer.Option("--operation", help="Wait until no operation runs.")] = False,
    timeout: Timeout = 0, server: Server = None, auth_token: Token = None,
) -> None:
    """Wait for applications (by name or label selector) to be synced, healthy and idle (all three when
    none is named)."""
    if not names and not selector:
        _fail("name at least one application, or select them with --selector")
    if not (sync or health or operation):
        sync = health = operation = True
    expired = _deadline(timeout)
    with _api(server, auth_token) as client:
        if selector:
            selected = [a["metadata"]["name"] for a in client.list_apps(None, selector)]
            if not selected:
                _fail(f"no application matches the selector {selector!r}")
            names = [*(names or []), *(n for n in selected if n not in (names or []))]
        waiting = list(names or [])
        while waiting:
            states = {name: _wait_state(client.get_app(name)) for name in waiting}
            for name, state in states.items():
                ok = (not sync or state["sync"] == "Synced") and (not health or state["health"] == "Healthy") \
                    and (not operation or state["idle"])
                if ok:
                    typer.echo(f"application '{name}': {state['sync']}, {state['health']}, "
                               f"operation {state['operation']}")
                    waiting.remove(name)
            if not waiting:
                return
            if expired():
                _fail(f"timed out after {timeout:.0f}s waiting for "
                      + "; ".join(f"application '{n}' (sync {states[n]['sync']}, health {states[n]['health']}, "
                                  f"operation {states[n]['operation']})" for n in waiting))
            time.sleep(POLL_SECONDS)


def _wait_state(app: dict[str, Any]) -> dict[str, Any]:
    status = _status(app)
    phase = _op(app).get("phase") or "none"
    return {"sync": (status.get("sync") or {}).get("status"), "health": (status.get("health") or {}).get("status"),
            "operation": phase,
            "idle": phase in FINAL_PHASES | {"none"} and not (app.get("pending") or {}).get("sync")}


@cli.command("resources")
def resources_app(
    name: str,
    orphaned: Annotated[bool, typer.Option("--orphaned", help="Only orphaned resources.")] = False,
    output: Output = None, server: Server = None, auth_token: Token = None,
) -> None:
    """List the resources of an application (as `argocd app resources`)."""
    _check_output(output, ("json", "yaml", "wide"))
    with _api(server, auth_token) as client:
        app = client.get_app(name)
    # WaveCD's status lists the resources the app manages; none of them is orphaned.
    resources = [] if orphaned else list(_status(app).get("resources") or [])
    if output in ("json", "yaml"):
        _print_structured(resources, output)
        return
    columns = ["GROUP", "KIND", "NAMESPACE", "NAME", "ORPHANED"]
    if output == "wide":
        columns += ["STATUS", "HEALTH"]
    rows = []
    for res in resources:
        row = [res.get("group", ""), res.get("kind", ""), res.get("namespace", ""), res.get("name", ""), "No"]
        if output == "wide":
            row += [res.get("status", ""), (res.get("health") or {}).get("status", "")]
        rows.append(row)
    _table(columns, rows)


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


_MANUAL_POLICIES = ("manual", "none")
_AUTOMATED_POLICIES = ("automated", "auto", "automatic")


def application_from_flags(doc: dict[str, Any] | None, *, name: str | None, repo: str | None, path: str | None,
                           revision: str | None, dest_server: str | None, dest_name: str | None,
                           dest_namespace: str | None, project: str | None, sync_policy: str | None,
                           auto_prune: bool, self_heal: bool, sync_options: list[str]) -> dict[str, Any]:
    """An Application as `argocd app create` builds it: from a manifest, flags overriding its fields."""
    app = dict(doc or {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"})
    meta = app.setdefault("metadata", {})
    if name:
        meta["name"] = name
    if not meta.get("name"):
        _fail("the application needs a name: `wavecd app create NAME ...` or metadata.name in --file")
    spec = app.setdefault("spec", {})
    if project:
        spec["project"] = project
    spec.setdefault("project", "default")
    if repo or path or revision:
        source = spec.setdefault("source", {})
        source.update({k: v for k, v in (("repoURL", repo), ("path", path), ("targetRevision", revision)) if v})
    destination = spec.setdefault("destination", {})
    destination.update({k: v for k, v in (("server", dest_server), ("name", dest_name),
                                          ("namespace", dest_namespace)) if v})
    policy = spec.get("syncPolicy") or {}
    if sync_policy is not None:
        if sync_policy.lower() in _MANUAL_POLICIES:
            policy.pop("automated", None)
        elif sync_policy.lower() in _AUTOMATED_POLICIES:
            policy.setdefault("automated", {})
        else:
            _fail(f"--sync-policy {sync_policy!r}: use manual (or none) or automated (or auto, automatic)")
    if auto_prune or self_heal:
        if "automated" not in policy:
            _fail("--auto-prune and --self-heal need an automated sync policy (--sync-policy automated)")
        policy["automated"].update({k: True for k, on in (("prune", auto_prune), ("selfHeal", self_heal)) if on})
    if sync_options:
        policy["syncOptions"] = [*policy.get("syncOptions", []),
                                 *(o for o in sync_options if o not in policy.get("syncOptions", []))]
    if policy:
        spec["syncPolicy"] = policy
    if not (spec.get("source") or spec.get("sources")):
        _fail("the application needs a source: --repo and --path (or spec.source in --file)")
    return app


@cli.command("create")
def create_app(
    name: Annotated[str | None, typer.Argument(metavar="[APPNAME]", help="The application's name.",
                                               show_default=False)] = None,
    file: Annotated[str | None, typer.Option("--file", "-f",
                                             help="Application manifest (YAML; '-' for stdin).")] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Repository URL.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Path in the repository.")] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Target revision (branch, tag, sha).")] = None,
    dest_server: Annotated[str | None, typer.Option("--dest-server", help="Destination cluster URL.")] = None,
    dest_name: Annotated[str | None, typer.Option("--dest-name", help="Destination cluster name.")] = None,
    dest_namespace: Annotated[str | None, typer.Option("--dest-namespace", help="Destination namespace.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project (default: default).")] = None,
    sync_policy: Annotated[str | None, typer.Option("--sync-policy",
                                                    help="manual (none) or automated (auto, automatic).")] = None,
    auto_prune: Annotated[bool, typer.Option("--auto-prune", help="Automated sync prunes.")] = False,
    self_heal: Annotated[bool, typer.Option("--self-heal", help="Automated sync reverts drift.")] = False,
    sync_option: Annotated[list[str] | None, typer.Option("--sync-option",
                                                          help="e.g. CreateNamespace=true (repeatable).")] = None,
    upsert: Annotated[bool, typer.Option("--upsert", help="Accept an existing application of that name.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the app to exist.")] = 60,
    server: Server = None, auth_token: Token = None,
) -> None:
    """Create applications from a manifest file, or one from flags (flags override the file's fields)."""
    docs: list[dict[str, Any] | None] = list(_read_manifests(file)) if file else [None]
    if len(docs) > 1 and (name or repo or path or revision or dest_server or dest_name or dest_namespace
                          or project or sync_policy or auto_prune or self_heal or sync_option):
        _fail(f"{file} holds {len(docs)} applications: flags apply to a file of one")
    apps = [application_from_flags(
        doc, name=name, repo=repo, path=path, revision=revision, dest_server=dest_server, dest_name=dest_name,
        dest_namespace=dest_namespace, project=project, sync_policy=sync_policy, auto_prune=auto_prune,
        self_heal=self_heal, sync_options=list(sync_option or []))
        for doc in docs]
    with _api(server, auth_token) as client:
        for app in apps:
            app_name = str(app["metadata"]["name"])
            existing = _existing(client, app_name)
            if existing is not None:
                # As Argo CD: the same spec again is not an error; a different one is refused.
                if _pruned(existing.get("spec")) == _pruned(app["spec"]):
                    typer.echo(f"application '{app_name}' unchanged")
                    continue
                if not upsert:
                    _fail(f"existing application '{app_name}' spec is different, use the --upsert flag to "
                          "force an update")
                _update_and_wait(client, app_name, app["spec"], timeout)
                typer.echo(f"application '{app_name}' updated")
                continue
            answer = client.create(app)
            expired = _deadline(timeout)
            while _existing(client, answer["name"]) is None:
                if expired():
                    _fail(f"application '{app_name}' was accepted but did not appear within {timeout:.0f}s "
                          "(are workers running?)")
                time.sleep(POLL_SECONDS)
            typer.echo(f"application '{app_name}' created")


def _update_and_wait(client: ApiClient, name: str, spec: dict[str, Any], timeout: float) -> None:
    """Send the new spec and wait until the server shows it (a worker writes it to the Application)."""
    client.update_spec(name, spec)
    expired = _deadline(timeout)
    while _pruned((_existing(client, name) or {}).get("spec")) != _pruned(spec):
        if expired():
            _fail(f"the new spec of application '{name}' was accepted but not applied within {timeout:.0f}s "
                  "(are workers running?)")
        time.sleep(POLL_SECONDS)


def _pruned(value: Any) -> Any:  # noqa: ANN401 - JSON
    """`value` without empty maps and lists, which mean the same as absent ones (`syncPolicy: {}`)."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _existing(client: ApiClient, name: str) -> dict[str, Any] | None:
    try:
        return client.get_app(name)
    except ClientError as exc:
        if exc.status != 404:
            raise
        return None


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


# -- set / unset / patch ---------------------------------------------------------------------------------------

SpecTimeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the change to show.")]


def _option_name(option: str) -> str:
    return option.partition("=")[0].strip()


def _change_spec(server: str | None, auth_token: str | None, name: str, timeout: float,
                 change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Read the app, change a copy of it, send its new spec, and wait until the server shows it."""
    with _api(server, auth_token) as client:
        app = client.get_app(name)
        changed = change(json.loads(json.dumps({k: app.get(k) for k in ("apiVersion", "kind", "metadata", "spec")})))
        spec = changed.get("spec")
        if not isinstance(spec, dict):
            _fail("the change leaves the application without a spec")
        if _pruned(spec) == _pruned(app.get("spec")):
            typer.echo(f"application '{name}' unchanged")
            return
        _update_and_wait(client, name, spec, timeout)
    typer.echo(f"application '{name}' updated")


@cli.command("set")
def set_app(
    name: str,
    repo: Annotated[str | None, typer.Option("--repo", help="Repository URL.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Path in the repository.")] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Target revision (branch, tag, sha).")] = None,
    dest_server: Annotated[str | None, typer.Option("--dest-server", help="Destination cluster URL.")] = None,
    dest_name: Annotated[str | None, typer.Option("--dest-name", help="Destination cluster name.")] = None,
    dest_namespace: Annotated[str | None, typer.Option("--dest-namespace", help="Destination namespace.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project.")] = None,
    sync_policy: Annotated[str | None, typer.Option("--sync-policy",
                                                    help="manual (none) or automated (auto, automatic).")] = None,
    auto_prune: Annotated[bool, typer.Option("--auto-prune", help="Automated sync prunes.")] = False,
    self_heal: Annotated[bool, typer.Option("--self-heal", help="Automated sync reverts drift.")] = False,
    sync_option: Annotated[list[str] | None, typer.Option(
        "--sync-option", help="Add or replace a sync option, e.g. Prune=false (repeatable).")] = None,
    timeout: SpecTimeout = 60, server: Server = None, auth_token: Token = None,
) -> None:
    """Set an application's source, destination, project or sync policy (as `argocd app set`)."""
    def change(app: dict[str, Any]) -> dict[str, Any]:
        policy = (app.get("spec") or {}).get("syncPolicy") or {}
        if sync_option:  # a new value of an option replaces the old one of the same name
            names = {_option_name(o) for o in sync_option}
            policy["syncOptions"] = [o for o in policy.get("syncOptions") or [] if _option_name(o) not in names]
            app.setdefault("spec", {})["syncPolicy"] = policy
        return application_from_flags(
            app, name=None, repo=repo, path=path, revision=revision, dest_server=dest_server, dest_name=dest_name,
            dest_namespace=dest_namespace, project=project, sync_policy=sync_policy, auto_prune=auto_prune,
            self_heal=self_heal, sync_options=list(sync_option or []))

    _change_spec(server, auth_token, name, timeout, change)


@cli.command("unset")
def unset_app(
    name: str,
    revision: Annotated[bool, typer.Option("--revision", help="Track HEAD again (drop targetRevision).")] = False,
    auto_prune: Annotated[bool, typer.Option("--auto-prune", help="Automated sync no longer prunes.")] = False,
    self_heal: Annotated[bool, typer.Option("--self-heal", help="Automated sync no longer self-heals.")] = False,
    sync_option: Annotated[list[str] | None, typer.Option(
        "--sync-option", help="Remove this sync option, by name (repeatable).")] = None,
    timeout: SpecTimeout = 60, server: Server = None, auth_token: Token = None,
) -> None:
    """Unset parts of an application's spec that `app set` sets."""
    if not (revision or auto_prune or self_heal or sync_option):
        _fail("say what to unset: --revision, --auto-prune, --self-heal or --sync-option")

    def change(app: dict[str, Any]) -> dict[str, Any]:
        spec = app.setdefault("spec", {})
        if revision:
            (spec.get("source") or {}).pop("targetRevision", None)
        policy = spec.get("syncPolicy") or {}
        automated = policy.get("automated")
        if isinstance(automated, dict):
            for key, wanted in (("prune", auto_prune), ("selfHeal", self_heal)):
                if wanted:
                    automated.pop(key, None)
        if sync_option:
            names = {_option_name(o) for o in sync_option}
            policy["syncOptions"] = [o for o in policy.get("syncOptions") or [] if _option_name(o) not in names]
        return app

    _change_spec(server, auth_token, name, timeout, change)


@cli.command("patch")
def patch_app(
    name: str,
    patch: Annotated[str, typer.Option("--patch", help="The patch (JSON), applied to the Application.")],
    patch_type: Annotated[str, typer.Option("--type", help="json (RFC 6902, the default) or merge (RFC 7386).")
                          ] = "json",
    timeout: SpecTimeout = 60, server: Server = None, auth_token: Token = None,
) -> None:
    """Patch an application's spec with a JSON patch or a JSON merge patch (as `argocd app patch`)."""
    import jsonpatch

    try:
        document = json.loads(patch)
    except ValueError as exc:
        _fail(f"--patch is not JSON: {exc}")
    if patch_type not in ("json", "merge"):
        _fail(f"--type {patch_type!r}: use json or merge")

    def change(app: dict[str, Any]) -> dict[str, Any]:
        if patch_type == "merge":
            if not isinstance(document, dict):
                _fail("a merge patch is a JSON object")
            return dict(merge_patch(app, document))
        try:
            return dict(jsonpatch.JsonPatch(document).apply(app))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, ValueError) as exc:
            _fail(f"the JSON patch does not apply: {exc}")

    _change_spec(server, auth_token, name, timeout, change)


def merge_patch(target: Any, patch: Any) -> Any:  # noqa: ANN401 - JSON values
    """RFC 7386: apply a JSON merge patch (null removes a key)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@cli.command("delete-resource")
def delete_resource_cmd(
    name: str,
    kind: Annotated[str, typer.Option("--kind", help="Kind of the resource.")],
    resource_name: Annotated[str, typer.Option("--resource-name", help="Name of the resource.")],
    group: Annotated[str, typer.Option("--group", help="API group ('' for the core group).")] = "",
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the resource.")] = "",
    orphan: Annotated[bool, typer.Option("--orphan", help="Leave the resource's dependents in place.")] = False,
    server: Server = None, auth_token: Token = None,
) -> None:
    """Delete one resource of an application (as `argocd app delete-resource`); a worker deletes it."""
    with _api(server, auth_token) as client:
        client.delete_resource(name, group=group, kind=kind, namespace=namespace, resource_name=resource_name,
                               orphan=orphan)
    typer.echo(f"delete of {group}/{kind} {namespace}/{resource_name} of application '{name}' requested")


@cli.command("manifests")
def manifests_app(
    name: str,
    source: Annotated[str, typer.Option("--source", help="git (the target manifests) or live.")] = "git",
    revision: Annotated[str | None, typer.Option("--revision", help="With --source git: this revision.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for a worker's answer.")] = 60,
    server: Server = None, auth_token: Token = None,
) -> None:
    """Print an application's manifests, from git or live (as `argocd app manifests`; Secrets masked)."""
    if source not in ("git", "live"):
        _fail(f"--source {source!r}: use git or live")
    if revision and source != "git":
        _fail("--revision goes with --source git")
    with _api(server, auth_token) as client:
        request_id = client.request_manifests(name, source, revision)
        expired = _deadline(timeout)
        while (answer := client.manifests(name, request_id))["state"] == "pending":
            if expired():
                _fail(f"no worker answered within {timeout:.0f}s (are workers running?)")
            time.sleep(POLL_SECONDS)
    if answer["state"] == "failed":
        _fail(f"cannot show the {source} manifests of application '{name}': {answer['error']}")
    for index, manifest in enumerate(answer["manifests"]):
        if index:
            typer.echo("---")
        typer.echo(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False).rstrip())
