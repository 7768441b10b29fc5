"""`wavecd admin`: check health rules, sync plans, diffs and webhooks offline, before committing them.

Users write Lua health scripts, wave annotations, ignoreDifferences and webhook settings, and without this
the only way to learn whether they are right is to commit and watch a sync. Every command here answers
from files alone (no Redis, no cluster, no server) by calling exactly the functions the workers call:
`shared.health.assess`, `shared.sync.plan.plan_sync`, `shared.diff.pairing.pair_objects` (desired x live),
`shared.diff.compare.compare`, `shared.webhooks`. This module only reads files, wires those calls
together as the workers do, and prints the answer as a rich table or as JSON (`--output json`).

Exit codes: 0 success (for `diff`: everything in sync), 1 `diff` found a difference, 2 bad input (bad
YAML, unknown fields, a failing Lua script, a refused webhook), with one line on stderr saying why.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, SecretStr, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.core import safe_yaml
from shared.core.errors import StallingError, WaveCDError
from shared.core.models import (
    Application,
    ApplicationSource,
    ResourceIgnoreDifferences,
    RetryStrategy,
    format_validation_error,
)
from shared.core.repo_url import redact_url
from shared.core.resources import ResourceKey, split_api_version
from shared.core.settings import Settings, get_settings
from shared.diff.compare import SYNCED, compare
from shared.diff.pairing import Pairing, pair_objects
from shared.health import (
    HealthStatus,
    HealthStatusCode,
    LuaHealthRules,
    aggregate,
    assess,
    default_lua_rules,
    group_kind,
    is_health_ignored,
    is_hook,
)
from shared.source.manifests import DirectoryOptions, load_manifests_from_dir, parse_manifest_text
from shared.sync import hooks
from shared.sync.options import SyncOptions
from shared.sync.plan import CLUSTER_SCOPED_KINDS, PlannedObject, PlanStep, SyncPlan, plan_sync
from shared.webhooks import MatchResult, PushEvent, WebhookError, detect_provider, match_apps, parse_webhook

cli = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Offline checks: health rules, sync plans, diffs, webhook matching.")

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2

# The engine's own failure messages all start so (syntax error, runtime error, timeout, bad result).
LUA_FAILURE_PREFIX = "health script "

# Fields of Argo CD's Application spec that WaveCD's models pass through untyped (they round-trip but
# WaveCD does not act on them): present in Argo CD's CRD, hence not "unknown" to a strict check.
ARGO_CD_PASSTHROUGH_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    ApplicationSource: frozenset({"ref", "name"}),
    RetryStrategy: frozenset({"refresh"}),
}

# Which settings hold each webhook provider's secret (`--secret`); Azure DevOps takes `user:password`.
WEBHOOK_SECRET_FIELDS: dict[str, str] = {
    "github": "webhook_github_secret",
    "gitlab": "webhook_gitlab_secret",
    "bitbucket": "webhook_bitbucket_uuid",
    "bitbucketserver": "webhook_bitbucketserver_secret",
    "gogs": "webhook_gogs_secret",
    "gitea": "webhook_gitea_secret",
}
AZURE_DEVOPS = "azuredevops"


class OutputFormat(StrEnum):
    """`--output`: a human table (default) or machine-readable JSON."""

    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json.")]
NamespaceOption = Annotated[str, typer.Option(
    "--namespace", "-n", help="Destination namespace: objects without one are placed there, as in a sync.")]
AppOption = Annotated[str | None, typer.Option(
    "--app", help="The app's name: live objects whose tracking id names another app are left alone.")]


# --- errors -------------------------------------------------------------------------------------------

class AdminInputError(StallingError):
    """Input handed to `wavecd admin` that cannot be used as given (a file, a flag, a field)."""


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 2."""
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def _bad_input_exits() -> Iterator[None]:
    """Turn every typed input error into one line on stderr and exit code 2 (never a traceback)."""
    try:
        yield
    except WaveCDError as exc:
        _fail(str(exc))
    except WebhookError as exc:
        _fail(f"webhook refused (HTTP {exc.status_code}): {exc.message}")
    except ValidationError as exc:  # settings from WAVECD_* (e.g. global ignoreDifferences) that do not parse
        _fail(f"invalid settings: {format_validation_error(exc)}")


# --- reading input ------------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise AdminInputError("is a directory, expected a file", path=str(path)) from None
    except OSError as exc:
        raise AdminInputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def read_objects(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects in one YAML/JSON file (multi-document, `...List` flattened), checked as git
    content is checked by the workers."""
    return parse_manifest_text(_read_bytes(path), str(path))


def load_directory(path: Path, options: DirectoryOptions) -> tuple[list[dict[str, Any]], list[str]]:
    """Objects (and the file of each) under a directory, loaded as an Application's path is; errors name the
    file under `path`, not only its path relative to the app path."""
    try:
        rendered = load_manifests_from_dir(path, options)
    except StallingError as exc:
        where = str(path / exc.path) if exc.path and not Path(exc.path).is_absolute() else exc.path
        raise AdminInputError(exc.message, path=where or str(path), line=exc.line) from None
    sources = [str(path / src) if src else str(path) for src in rendered.sources]
    sources += [str(path)] * (len(rendered.objects) - len(sources))
    return rendered.objects, sources


def read_objects_from(paths: Iterable[Path], options: DirectoryOptions | None = None) -> list[dict[str, Any]]:
    """Objects from files and directories; a directory loads as an Application's path does."""
    objects: list[dict[str, Any]] = []
    for path in paths:
        if path.is_dir():
            objects.extend(load_directory(path, options or DirectoryOptions())[0])
        else:
            objects.extend(read_objects(path))
    return objects


def _is_namespaced(obj: dict[str, Any]) -> bool:
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    return (group, str(obj.get("kind", ""))) not in CLUSTER_SCOPED_KINDS


def with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object placed in the destination namespace when it names none (cluster-scoped kinds stay so)."""
    meta = obj.get("metadata") or {}
    if not namespace or meta.get("namespace") or not _is_namespaced(obj):
        return obj
    return {**obj, "metadata": {**meta, "namespace": namespace}}


# --- strict Application validation --------------------------------------------------------------------

def unknown_fields(model: BaseModel, path: str) -> list[str]:
    """Dotted paths of fields the models kept as extras and Argo CD's Application spec does not define."""
    found: list[str] = []
    allowed = ARGO_CD_PASSTHROUGH_FIELDS.get(type(model), frozenset())
    for name in sorted(model.model_extra or {}):
        if name not in allowed:
            found.append(f"{path}.{name}" if path else name)
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{path}.{field.alias or name}" if path else (field.alias or name)
        if isinstance(value, BaseModel):
            found.extend(unknown_fields(value, where))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found.extend(unknown_fields(item, f"{where}[{index}]"))
    return found


def parse_application_strictly(obj: dict[str, Any], source: str) -> Application:
    """An Application as the workers parse it, plus a refusal of fields Argo CD's spec does not have
    (a typo such as `syncPolicy.autoSync` would otherwise be silently ignored)."""
    try:
        app = Application.parse(obj)
    except StallingError as exc:
        name = (obj.get("metadata") or {}).get("name") or "?"
        raise AdminInputError(f"Application {name}: {exc.message}", path=source) from None
    unknown = unknown_fields(app, "")
    if unknown:
        raise AdminInputError(f"Application {app.name}: unknown field(s) {', '.join(unknown)} "
                              f"(not in Argo CD's Application spec)", path=source)
    return app


def _is_application(obj: dict[str, Any]) -> bool:
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    return obj.get("kind") == "Application" and group == "argoproj.io"


def load_applications(paths: Sequence[Path]) -> list[Application]:
    """The Applications in the given files and directories (searched recursively); other kinds skipped."""
    apps: list[Application] = []
    seen: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            pairs = list(zip(*load_directory(path, DirectoryOptions(recurse=True)), strict=True))
        else:
            pairs = [(obj, str(path)) for obj in read_objects(path)]
        for obj, source in pairs:
            if not _is_application(obj):
                continue
            app = parse_application_strictly(obj, source)
            if app.name in seen:
                raise AdminInputError(f"Application {app.name} is defined twice: in {seen[app.name]} and "
                                      f"in {source}")
            seen[app.name] = source
            apps.append(app)
    if not apps:
        raise AdminInputError(f"no Application (argoproj.io/Application) found in "
                              f"{', '.join(str(p) for p in paths)}")
    return apps


def load_ignore_differences(path: Path) -> list[ResourceIgnoreDifferences]:
    """`spec.ignoreDifferences` entries: a YAML/JSON list of them, or an Application manifest."""
    source = str(path)
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdminInputError(f"file is not valid UTF-8 (byte {exc.start})", path=source) from None
    docs = [doc for doc, _ in safe_yaml.load_all(text, source) if doc is not None]
    if len(docs) == 1 and isinstance(docs[0], dict) and _is_application(docs[0]):
        return parse_application_strictly(docs[0], source).spec.ignore_differences
    if len(docs) != 1 or not isinstance(docs[0], list):
        raise AdminInputError("expected a list of ignoreDifferences entries (group, kind, jsonPointers, ...) "
                              "or an Application manifest", path=source)
    rules: list[ResourceIgnoreDifferences] = []
    for index, item in enumerate(docs[0]):
        where = f"ignoreDifferences[{index}]"
        if not isinstance(item, dict):
            raise AdminInputError(f"{where} must be a mapping, not {type(item).__name__}", path=source)
        try:
            rule = ResourceIgnoreDifferences.model_validate(item)
        except ValidationError as exc:
            raise AdminInputError(f"{where}: {format_validation_error(exc)}", path=source) from None
        unknown = unknown_fields(rule, where)
        if unknown:
            raise AdminInputError(f"unknown field(s) {', '.join(unknown)} (not in Argo CD's ignoreDifferences)",
                                  path=source)
        rules.append(rule)
    return rules


# --- output helpers -----------------------------------------------------------------------------------

def _console() -> Console:
    """A console on stdout, made per command so test runners' captured stdout is used."""
    return Console(highlight=False, soft_wrap=False)


def _print_json(data: Any) -> None:  # noqa: ANN401 - any JSON value
    typer.echo(json.dumps(data, indent=2))


def _table(*headers: str, show_header: bool = True) -> Table:
    """A table whose cells wrap instead of being cut short: names and messages must be read whole."""
    table = Table(show_header=show_header)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _kind_text(group: str, kind: str) -> str:
    return f"{kind}.{group}" if group else kind


# --- wavecd admin health ------------------------------------------------------------------------------

STDIN_PATH = "-"


def _health_object(doc: Any, source: str, line: int | None) -> Iterator[dict[str, Any]]:  # noqa: ANN401
    """One pasted document as objects to assess: a `...List` flattened; what assess needs checked (a map
    with apiVersion and kind; metadata a map if present). A name is not needed: an excerpt of a live
    object (`kubectl get -o yaml` trimmed to its status) is assessed as Argo CD's rules would."""
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"].endswith("List") \
            and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _health_object(item, source, line)
        return
    if not isinstance(doc, dict):
        raise AdminInputError(f"a live object must be a map, not {type(doc).__name__}", path=source, line=line)
    missing = [name for name in ("apiVersion", "kind") if not isinstance(doc.get(name), str) or not doc[name]]
    if missing:
        kind = doc["kind"] if isinstance(doc.get("kind"), str) and doc["kind"] else "object"
        raise AdminInputError(f"{kind} has no {' or '.join(missing)}", path=source, line=line)
    if doc.get("metadata") is not None and not isinstance(doc["metadata"], dict):
        raise AdminInputError(f"{doc['kind']}: metadata must be a map", path=source, line=line)
    yield doc


def read_live_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Live objects to assess, from files (YAML, multi-document; `.json` as JSON), from stdin (`-`, YAML:
    paste and press Ctrl-D) or from directories (loaded as an Application's path is, so there every object
    needs its name)."""
    objects: list[dict[str, Any]] = []
    for path in paths:
        if path.is_dir():
            objects.extend(load_directory(path, DirectoryOptions())[0])
            continue
        source = "stdin" if str(path) == STDIN_PATH else str(path)
        try:
            raw = sys.stdin.buffer.read() if source == "stdin" else _read_bytes(path)
            body = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise AdminInputError(f"file is not valid UTF-8 (byte {exc.start})", path=source) from None
        if source.endswith(".json"):
            if not body.strip():
                continue
            try:
                docs: Iterable[tuple[Any, int | None]] = [(json.loads(body), None)]
            except json.JSONDecodeError as exc:
                raise AdminInputError(f"invalid JSON: {exc.msg}", path=source, line=exc.lineno) from None
        else:
            docs = safe_yaml.load_all(body, source)
        for doc, line in docs:
            if doc is not None:
                objects.extend(_health_object(doc, source, line))
    return objects


def read_argocd_cm(path: Path) -> LuaHealthRules:
    """The health customizations of an argocd-cm ConfigMap file (YAML or JSON)."""
    docs = [doc for doc, _ in safe_yaml.load_all(_read_bytes(path).decode("utf-8", "replace"), str(path))
            if doc is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "ConfigMap":
        raise AdminInputError("expected one ConfigMap (argocd-cm)", path=str(path))
    return LuaHealthRules.from_argocd_cm(docs[0].get("data") or {}, source=str(path))


def health_rules(lua_dir: Path | None, argocd_cm: Path | None = None
                 ) -> tuple[LuaHealthRules, LuaHealthRules | None]:
    """(rules to assess with, the user's own rules), layered as Argo CD layers them: argocd-cm overrides
    first, then the --lua-dir scripts, then WaveCD's shipped ones (shared/pipeline/services.py does the same for
    workers with the directory)."""
    user: LuaHealthRules | None = None
    if lua_dir is not None:
        user = LuaHealthRules.from_directory(lua_dir)
    if argocd_cm is not None:
        overrides = read_argocd_cm(argocd_cm)
        user = overrides if user is None else user.merged(overrides)
    if user is None:
        return default_lua_rules(), None
    return default_lua_rules().merged(user), user


def assess_objects(objects: Sequence[dict[str, Any]], rules: LuaHealthRules, user: LuaHealthRules | None
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """Each object's health row, and the failures of the user's Lua scripts (one line each)."""
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    user_scripts = user.scripts() if user is not None else []
    for obj in objects:
        key = ResourceKey.from_object(obj)
        verdict = assess(obj, rules)
        rows.append({**key.to_dict(), "status": verdict.status.value if verdict else None,
                     "message": verdict.message if verdict else ""})
        if verdict is None or verdict.status is not HealthStatusCode.UNKNOWN:
            continue
        script = rules.script_for(*group_kind(obj))
        if script is not None and script in user_scripts and verdict.message.startswith(LUA_FAILURE_PREFIX):
            failures.append(f"{script.origin} on {key}: {verdict.message}")
    return rows, failures


@cli.command()
def health(
    files: Annotated[list[Path], typer.Argument(
        help="YAML/JSON files of live objects (multi-document); '-' reads YAML from stdin.")],
    lua_dir: Annotated[Path | None, typer.Option(
        "--lua-dir", help="Lua health scripts as <group>/<kind>/health.lua (core group: 'core').")] = None,
    argocd_cm: Annotated[Path | None, typer.Option(
        "--argocd-cm", help="An argocd-cm ConfigMap: its resource.customizations.health.* scripts win.")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Assess every object's health as the workers would: built-in rules, shipped and custom Lua rules."""
    with _bad_input_exits():
        rules, user = health_rules(lua_dir, argocd_cm)
        objects = read_live_objects(files)
        rows, failures = assess_objects(objects, rules, user)
    if output is OutputFormat.JSON:
        _print_json(rows)
    else:
        table = _table("GROUP", "KIND", "NAMESPACE/NAME", "HEALTH", "MESSAGE")
        for row in rows:
            name = f"{row['namespace']}/{row['name']}" if row["namespace"] else row["name"] or "-"
            table.add_row(Text(row["group"]), Text(row["kind"]), Text(name), Text(row["status"] or "-"),
                          Text(row["message"]))
        console = _console()
        console.print(table)
        counted = [HealthStatus(HealthStatusCode(r["status"]), r["message"]) if r["status"] else None
                   for r, obj in zip(rows, objects, strict=True)
                   if not is_health_ignored(obj) and not is_hook(obj)]
        console.print(Text(f"Overall: {aggregate(counted).status.value} ({len(rows)} objects)"))
    if failures:
        _fail(f"health script failed: {failures[0]}"
              + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""))


# --- wavecd admin plan --------------------------------------------------------------------------------

def prune_candidates(desired: Sequence[dict[str, Any]], live: Sequence[dict[str, Any]], namespace: str,
                     app: str | None) -> list[dict[str, Any]]:
    """Live objects git no longer holds, as the `diff` step hands them to the planner: `pair_live`'s prune
    candidates (Prune=false ones included: the planner lists them as not pruned)."""
    return [pair.live for pair in pair_live(desired, live, namespace, app).prune if pair.live is not None]


def pair_live(desired: Sequence[dict[str, Any]], live: Sequence[dict[str, Any]], namespace: str,
              app: str | None) -> Pairing:
    """Desired x live by `shared.diff.pairing.pair_objects`, the workers' pairing: both placed in `namespace`
    first; hooks and skipped objects are not compared (as the `diff` step leaves them out)."""
    live_by_key: dict[ResourceKey, dict[str, Any]] = {}
    for obj in live:
        placed = with_namespace(obj, namespace)
        key = ResourceKey.from_object(placed)
        if key in live_by_key:
            raise AdminInputError(f"{key} appears more than once in the live objects")
        live_by_key[key] = placed
    compared = [with_namespace(o, namespace) for o in desired if not hooks.is_hook(o) and not hooks.is_skipped(o)]
    return pair_objects(compared, live_by_key, app=app)


def _details(obj: PlannedObject) -> str:
    parts: list[str] = []
    if obj.hook_types:
        parts.append("hook: " + ",".join(obj.hook_types))
    if obj.delete_policies:
        parts.append("delete-policy: " + ",".join(obj.delete_policies))
    if obj.options:
        parts.append("options: " + ",".join(f"{k}={v}" for k, v in obj.options.items()))
    if obj.managed_namespace:
        parts.append("managed namespace (CreateNamespace=true)")
    if obj.reason:
        parts.append(obj.reason)
    return "; ".join(parts)


def _add_step_rows(table: Table, steps: Iterable[PlanStep]) -> None:
    for step in steps:
        label = f"{step.phase} {step.wave}"
        for obj in step.objects:
            table.add_row(Text(label), Text(obj.action), Text(_kind_text(obj.key.group, obj.key.kind)),
                          Text(obj.key.namespace), Text(obj.key.name), Text(_details(obj)))
            label = ""


def print_plan(plan: SyncPlan) -> None:
    console = _console()
    table = _table("STEP", "ACTION", "KIND", "NAMESPACE", "NAME", "DETAILS")
    _add_step_rows(table, plan.steps)
    console.print(table if plan.steps else Text("Nothing to sync."))
    if plan.sync_fail_steps:
        console.print(Text("Only if the sync fails:"))
        fail_table = _table("STEP", "ACTION", "KIND", "NAMESPACE", "NAME", "DETAILS")
        _add_step_rows(fail_table, plan.sync_fail_steps)
        console.print(fail_table)
    for obj in plan.prune_skipped:
        console.print(Text(f"Not pruned: {obj.key} {obj.reason}"))
    for warning in plan.warnings:
        console.print(Text(f"Warning: {warning}"))


@cli.command()
def plan(
    paths: Annotated[list[Path], typer.Argument(help="Manifest files or directories (loaded as an app path).")],
    live: Annotated[list[Path] | None, typer.Option(
        "--live", help="Objects in the cluster tracked by the app (repeatable).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Plan prune steps for live objects git lacks.")] = False,
    sync_option: Annotated[list[str] | None, typer.Option(
        "--sync-option", help="An app-level sync option such as PruneLast=true (repeatable).")] = None,
    recurse: Annotated[bool, typer.Option("--recurse", help="directory.recurse for directories.")] = False,
    include: Annotated[str, typer.Option("--include", help="directory.include glob.")] = "",
    exclude: Annotated[str, typer.Option("--exclude", help="directory.exclude glob.")] = "",
    namespace: NamespaceOption = "",
    app: AppOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Print the sync plan: steps (phase, wave) with objects in apply order, hooks, prunes and options."""
    with _bad_input_exits():
        options = SyncOptions.parse(sync_option or [], where="--sync-option")
        desired = read_objects_from(paths, DirectoryOptions(recurse, include, exclude))
        live_objects = read_objects_from(live or [])
        result = plan_sync(desired, live_tracked=prune_candidates(desired, live_objects, namespace, app),
                           prune=prune, options=options, default_namespace=namespace)
    if output is OutputFormat.JSON:
        _print_json(result.to_dict())
    else:
        print_plan(result)


# --- wavecd admin diff --------------------------------------------------------------------------------

@dataclass
class DiffRow:
    """One object's comparison; `note` says why it is OutOfSync (for the table only)."""

    key: ResourceKey
    status: str
    diff: str
    note: str = ""
    requires_pruning: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.key.to_dict(), "status": self.status}
        if self.requires_pruning is not None:
            data["requiresPruning"] = self.requires_pruning
        data["diff"] = self.diff
        return data


def diff_objects(desired: Sequence[dict[str, Any]], live: Sequence[dict[str, Any]],
                 ignore: Sequence[ResourceIgnoreDifferences], namespace: str, app: str | None) -> list[DiffRow]:
    """Per object: key, Synced/OutOfSync and the masked diff, as the `diff` step records them (the same
    pairing, `pair_live`). Live objects git does not hold are OutOfSync with requiresPruning."""
    pairing = pair_live(desired, live, namespace, app)
    rows: list[DiffRow] = []
    for pair in pairing.pairs:
        result = compare(pair.desired, pair.live, ignore=ignore)
        note = "" if result.status == SYNCED else ("missing from the cluster" if pair.live is None else "differs")
        rows.append(DiffRow(pair.key, result.status, result.diff_text(), note))
    for pair in pairing.prune:
        result = compare(None, pair.live)
        note = "requires pruning" if pair.requires_pruning else "not in git, kept (Prune=false)"
        rows.append(DiffRow(pair.key, result.status, result.diff_text(), note, pair.requires_pruning))
    return rows


def print_diff(rows: Sequence[DiffRow]) -> None:
    console = _console()
    table = _table("STATUS", "KIND", "NAMESPACE", "NAME", "NOTE")
    for row in rows:
        table.add_row(Text(row.status), Text(_kind_text(row.key.group, row.key.kind)), Text(row.key.namespace),
                      Text(row.key.name), Text(row.note))
    console.print(table)
    for row in rows:
        if row.status == SYNCED:
            continue
        where = f"{row.key.namespace}/{row.key.name}" if row.key.namespace else row.key.name
        console.print(Text(f"\n===== {row.key.group}/{row.key.kind} {where} ======"))
        console.print(Text(row.diff.rstrip("\n")))


@cli.command()
def diff(
    desired: Annotated[list[Path], typer.Option("--desired", help="Desired objects: file or directory.")],
    live: Annotated[list[Path], typer.Option("--live", help="Live objects from the cluster (file).")],
    ignore_differences: Annotated[Path | None, typer.Option(
        "--ignore-differences", help="A YAML list in spec.ignoreDifferences' shape, or an Application.")] = None,
    namespace: NamespaceOption = "",
    app: AppOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Compare desired with live as the workers do; exit 0 in sync, 1 when something differs, 2 on error."""
    with _bad_input_exits():
        ignore = list(load_ignore_differences(ignore_differences)) if ignore_differences else []
        ignore.extend(get_settings().global_ignore_differences())
        rows = diff_objects(read_objects_from(desired), read_objects_from(live), ignore, namespace, app)
    if output is OutputFormat.JSON:
        _print_json([row.to_dict() for row in rows])
    else:
        print_diff(rows)
    if any(row.status != SYNCED for row in rows):
        raise typer.Exit(EXIT_DIFFERENT)


# --- wavecd admin webhook -----------------------------------------------------------------------------

def parse_headers(items: Sequence[str]) -> dict[str, str]:
    """`Name: value` strings as a header mapping."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise AdminInputError(f"header {item[:60]!r} is not of the form 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def settings_with_secret(headers: dict[str, str], secret: str) -> Settings:
    """The settings with the sending provider's webhook secret set to `secret`."""
    provider = detect_provider(headers)
    if provider is None:
        raise AdminInputError("--secret given, but the headers name no known git provider "
                              "(X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event, X-Gogs-Event, X-Event-Key, ...)")
    base = get_settings()
    if provider.name == AZURE_DEVOPS:
        username, sep, password = secret.partition(":")
        if not sep:
            raise AdminInputError("for Azure DevOps, --secret is 'username:password' (basic auth)")
        return base.model_copy(update={"webhook_azuredevops_username": username,
                                       "webhook_azuredevops_password": SecretStr(password)})
    field = WEBHOOK_SECRET_FIELDS.get(provider.name)
    if field is None:
        raise AdminInputError(f"no webhook secret setting is known for provider {provider.name}")
    return base.model_copy(update={field: SecretStr(secret)})


def shown_repo_url(url: str) -> str:
    """A payload's repository URL without credentials; an scp-like `git@host:path` keeps its SSH login
    name, which is not a secret (redact_url drops it, which would show a URL nobody can clone)."""
    return redact_url(url) if "://" in url else url


def webhook_report(event: PushEvent | None, provider: str | None, match: MatchResult) -> dict[str, Any]:
    """The JSON shape of `admin webhook`: what the push says and which apps it refreshes (`refresh`, at once
    after the fetch) or leaves to the fetch's tree comparison (`watch`: skipped by path only)."""
    if event is None:
        return {"provider": provider, "event": None, "repos": [], "ref": None, "revision": None,
                "default_branch": None, "default_branch_push": None, "changed_files": None,
                "refresh": match.refresh, "skipped": match.skipped, "watch": match.watch}
    on_default = None if event.default_branch is None else (event.branch == event.default_branch)
    return {"provider": event.provider, "event": event.event, "repos": [shown_repo_url(u) for u in event.repo_urls],
            "ref": event.ref, "revision": event.revision, "default_branch": event.default_branch,
            "default_branch_push": on_default, "changed_files": event.changed_files,
            "refresh": match.refresh, "skipped": match.skipped, "watch": match.watch}


def print_webhook(report: dict[str, Any]) -> None:
    console = _console()
    if report["event"] is None:
        shown = report["provider"] or "no known git provider"
        console.print(Text(f"Provider: {shown}. Not a push event: nothing is refreshed."))
    else:
        facts = _table("FIELD", "VALUE", show_header=False)
        on_default = {True: "yes", False: "no", None: "unknown (payload does not name it)"}
        files = report["changed_files"]
        facts.add_row("provider", Text(report["provider"]))
        facts.add_row("repos", Text("\n".join(report["repos"])))
        facts.add_row("ref", Text(report["ref"] or "-"))
        facts.add_row("revision", Text(report["revision"] or "- (ref deleted)"))
        facts.add_row("default branch push", Text(on_default[report["default_branch_push"]]))
        facts.add_row("changed files", Text("not listed completely: every app on the ref is a candidate"
                                            if files is None else "\n".join(files) or "(none)"))
        console.print(facts)
    apps = _table("APP", "REFRESH", "REASON")
    for name in report["refresh"]:
        apps.add_row(Text(name), "yes", "")
    watched = set(report["watch"])
    for name, reason in report["skipped"].items():
        if name in watched:
            apps.add_row(Text(name), "if changed", Text(f"{reason}; the fetch compares its tree (a base elsewhere)"))
        else:
            apps.add_row(Text(name), "no", Text(reason))
    if report["refresh"] or report["skipped"]:
        console.print(apps)


@cli.command()
def webhook(
    payload: Annotated[Path, typer.Option("--payload", help="The request body, as the git host sent it.")],
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", help="A request header 'Name: value' (repeatable).")] = None,
    apps: Annotated[list[Path] | None, typer.Option(
        "--apps", help="Application manifests: a file or a directory (repeatable).")] = None,
    secret: Annotated[str | None, typer.Option(
        "--secret", help="Verify the signature with this secret (Azure DevOps: user:password).")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Parse a webhook as the receiver would and show which Applications it would refresh, and why not."""
    with _bad_input_exits():
        headers = parse_headers(header or [])
        body = _read_bytes(payload)
        settings = settings_with_secret(headers, secret) if secret is not None else get_settings()
        applications = load_applications(apps) if apps else []
        event = parse_webhook(headers, body, settings, verify=secret is not None)
        provider = detect_provider(headers)
        if event is None:
            match = MatchResult(skipped={a.name: "the request is not a push event" for a in applications})
        else:
            match = match_apps(event, applications)
    report = webhook_report(event, provider.name if provider else None, match)
    if output is OutputFormat.JSON:
        _print_json(report)
    else:
        print_webhook(report)
