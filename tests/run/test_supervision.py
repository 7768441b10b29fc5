"""`wavecd up`'s parts that need no cluster: process groups, signals, ports, kubeconfig choice, CLI config,
and the progress view read back from WaveCD's status documents in a real Redis."""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path

import pytest
import redis

from scheduler.cli.run import (
    AppView,
    StopSignal,
    Supervisor,
    check_port_free,
    find_kubeconfig,
    group_alive,
    rotate_log,
    write_cli_config,
)
from shared.core.errors import ConfigurationError
from shared.state.app_store import AppStore


def _supervisor(tmp_path: Path) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    return Supervisor(tmp_path / "logs", dict(os.environ), said.append), said


def test_stop_all_ends_whole_process_groups_including_grandchildren(tmp_path: Path):
    sup, said = _supervisor(tmp_path)
    # The shell forks a grandchild that stays in the child's process group, like a Celery pool process.
    child = sup.start("tree", ["sh", "-c", "sleep 300 & echo grandchild $!; wait"])
    deadline = time.monotonic() + 10
    while "grandchild" not in child.log.read_text():
        assert time.monotonic() < deadline, "the child did not start its grandchild"
        time.sleep(0.05)
    grandchild = int(child.log.read_text().split()[1])
    assert os.getpgid(grandchild) == child.pgid != os.getpgid(0)
    assert any(f"pid {child.proc.pid}" in line for line in said)

    sup.stop_all(grace=5)
    assert not group_alive(child.pgid)
    assert not Path(f"/proc/{grandchild}").exists() or _zombie_or_gone(grandchild)


def _zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path):
    sup, said = _supervisor(tmp_path)
    child = sup.start("stubborn", ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"])
    while "ready" not in child.log.read_text():
        time.sleep(0.05)
    began = time.monotonic()
    sup.stop_all(grace=1)
    assert 0.9 <= time.monotonic() - began < 10
    assert child.proc.returncode == -signal.SIGKILL
    assert any("did not stop within 1s" in line for line in said)


def test_a_child_that_exits_on_its_own_is_reported(tmp_path: Path):
    sup, _ = _supervisor(tmp_path)
    sup.start("steady", ["sleep", "30"])
    quitter = sup.start("quitter", ["sh", "-c", "echo boom >&2; exit 3"])
    deadline = time.monotonic() + 10
    while sup.failed() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sup.failed() is quitter and quitter.proc.returncode == 3
    assert "boom" in sup.tail(quitter)
    sup.stop_all(grace=5)
    assert sup.failed() is None  # stopping children on purpose is not a failure


def test_a_crashed_child_is_restarted_and_its_log_kept(tmp_path: Path):
    """Issue #17: one crashed worker used to stop the whole `wavecd up`."""
    sup, said = _supervisor(tmp_path)
    first = sup.start("worker-1", ["sh", "-c", "echo started $$; sleep 300"])
    deadline = time.monotonic() + 10
    while "started" not in first.log.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pgid, signal.SIGKILL)          # kill -9, as the fault benchmark does
    first.proc.wait(10)
    assert sup.revive() is None                     # restarted, not given up on
    (second,) = [c for c in sup.children if c.name == "worker-1"]
    assert second is not first and second.proc.poll() is None
    assert any("worker-1 exited with code -9; restarting it" in line for line in said)
    assert f"started {first.proc.pid}" in (tmp_path / "logs" / "worker-1.log.1").read_text()  # the crash's log
    sup.stop_all(grace=5)


def test_restarts_are_bounded(tmp_path: Path):
    said: list[str] = []
    sup = Supervisor(tmp_path / "logs", dict(os.environ), said.append, restart_limit=2, restart_window=600)
    sup.start("broken", ["sh", "-c", "exit 3"])
    deadline = time.monotonic() + 20
    while (given_up := sup.revive()) is None:
        assert time.monotonic() < deadline, said
        time.sleep(0.05)
    assert given_up.name == "broken" and given_up.proc.returncode == 3
    assert sum("restarting it" in line for line in said) == 2
    sup.stop_all(grace=5)


def test_stop_signal_catches_signals_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and stop.received == signal.SIGTERM
        assert not stop.force.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not stop.force.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stop.force.is_set()  # a second signal asks for a fast stop
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_busy_port_is_refused_with_the_flag_to_change_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"API port {port} on 127.0.0.1 is not free.*--port"):
            check_port_free(port, "API", "--port")


def _time_wait_port() -> int:
    """A port of a previous server (which bound it as uvicorn does, with SO_REUSEADDR) whose last connection
    the server side closed first: it lingers in TIME_WAIT."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server closes first: its end of the connection goes to TIME_WAIT
            client.recv(1)
    return port


def test_a_port_with_connections_in_time_wait_counts_as_free_as_for_uvicorn():
    port = _time_wait_port()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the situation: a bind without SO_REUSEADDR is refused
    check_port_free(port, "API", "--port")  # uvicorn and Flower bind with SO_REUSEADDR, so we check so
    with socket.socket() as server:  # ... and the server can indeed bind it
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()


def test_logs_of_earlier_runs_are_kept_for_a_few_runs(tmp_path: Path):
    sup, _ = _supervisor(tmp_path)
    for run in range(1, 6):
        child = sup.start("api", ["sh", "-c", f"echo run {run}"])
        child.proc.wait(10)
    logs = tmp_path / "logs"
    assert (logs / "api.log").read_text() == "run 5\n"
    assert [(logs / f"api.log.{n}").read_text() for n in (1, 2, 3)] == ["run 4\n", "run 3\n", "run 2\n"]
    assert not (logs / "api.log.4").exists()
    rotate_log(logs / "absent.log")  # nothing to keep: nothing happens
    assert not list(logs.glob("absent.log*"))


def test_kubeconfig_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WAVECD_KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert find_kubeconfig() is None  # nothing anywhere: `up` starts the sandbox

    default = tmp_path / ".kube" / "config"
    default.parent.mkdir()
    default.write_text("apiVersion: v1\n")
    assert find_kubeconfig() == str(default)

    listed = tmp_path / "other-config"
    listed.write_text("apiVersion: v1\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}{os.pathsep}{listed}")
    assert find_kubeconfig() == str(listed)

    monkeypatch.setenv("WAVECD_KUBECONFIG", str(tmp_path / "nope"))
    with pytest.raises(ConfigurationError, match="WAVECD_KUBECONFIG names .*nope, which is not a file"):
        find_kubeconfig()


def test_cli_config_is_private_and_read_by_the_cli_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "config.yaml"
    path.write_text("old: true\n")
    os.chmod(path, 0o644)
    written = write_cli_config(tmp_path, "http://127.0.0.1:18080", "tok-123")
    assert written == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client_module = pytest.importorskip("scheduler.cli.client", reason="the API client is another module")
    monkeypatch.setenv("WAVECD_CONFIG", str(path))
    monkeypatch.delenv("WAVECD_SERVER", raising=False)
    monkeypatch.delenv("WAVECD_AUTH_TOKEN", raising=False)
    connection = client_module.Connection.resolve()
    assert (connection.server, connection.token) == ("http://127.0.0.1:18080", "tok-123")


def test_progress_view_shows_waves_results_and_the_current_step(redis_client: redis.Redis):
    store = AppStore(redis_client)
    store.write_unfenced("shop", "status", {
        "sync": {"status": "OutOfSync", "revision": "0123456789abcdef"},
        "health": {"status": "Progressing"},
        "resources": [
            {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web", "status": "OutOfSync",
             "health": {"status": "Missing"}},
            {"group": "", "kind": "Secret", "namespace": "shop", "name": "creds", "status": "Synced"},
            {"group": "", "kind": "Namespace", "namespace": "", "name": "shop", "status": "Synced"},
        ]})
    store.write_unfenced("shop", "operation", {
        "id": "op1", "phase": "Running", "message": "",
        "syncResult": {"resources": [{"group": "", "kind": "Secret", "namespace": "shop", "name": "creds",
                                      "message": "secret/creds created"}]},
        "progress": {"seq": 3, "step": 1, "stage": "health", "steps": [
            {"phase": "Sync", "wave": -1, "objects": [
                {"group": "", "kind": "Namespace", "namespace": "", "name": "shop", "action": "apply"}]},
            {"phase": "Sync", "wave": 2, "objects": [
                {"group": "", "kind": "Secret", "namespace": "shop", "name": "creds", "action": "apply"}]},
            {"phase": "Sync", "wave": 5, "objects": [
                {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web", "action": "apply"}]},
        ]}})
    view = AppView.read(store, "shop")
    assert [(r["wave"], r["kind"], r["sync"], r["health"]) for r in view.resources] == [
        ("-1", "Namespace", "Synced", ""), ("2", "Secret", "Synced", ""), ("5", "Deployment", "OutOfSync", "Missing")]
    assert view.resources[1]["message"] == "secret/creds created"
    assert view.step == "wave 2 (Sync, step 2/3)"
    assert view.summary() == ("shop: OutOfSync/Progressing revision 01234567, operation Running at wave 2 "
                              "(Sync, step 2/3)")
    assert not view.synced_healthy(None)
    assert view.table().row_count == 3

    store.write_unfenced("shop", "status", {"sync": {"status": "Synced", "revision": "0123456789abcdef"},
                                            "health": {"status": "Healthy"}})
    store.write_unfenced("shop", "operation", {"id": "op1", "phase": "Succeeded"})
    done = AppView.read(store, "shop")
    assert done.synced_healthy("0123456789abcdef") and not done.synced_healthy("fedcba")
    # A status older than this run (Redis kept from an earlier one) does not count.
    assert not done.synced_healthy("0123456789abcdef", since="2000-01-01T00:00:00Z")  # no reconciledAt
    store.write_unfenced("shop", "status", {"sync": {"status": "Synced", "revision": "0123456789abcdef"},
                                            "health": {"status": "Healthy"}, "reconciledAt": "2030-01-01T00:00:00Z"})
    fresh = AppView.read(store, "shop")
    assert fresh.synced_healthy("0123456789abcdef", since="2029-12-31T23:59:59Z")
    assert not fresh.synced_healthy("0123456789abcdef", since="2030-01-01T00:00:01Z")
    # Shown with a start after its last reconcile, the status says it is not this run's yet.
    fresh.since = "2030-01-01T00:00:01Z"
    assert fresh.summary() == ("shop: Synced/Healthy revision 01234567, operation Succeeded (as last seen before "
                               "this start; reconciling)")
    fresh.since = "2029-12-31T23:59:59Z"
    assert fresh.summary() == "shop: Synced/Healthy revision 01234567, operation Succeeded"
    done.since = "2030-01-01T00:00:01Z"
    assert not done.stale  # never reconciled: nothing old to flag


def test_the_cli_offers_up_serve_and_sandbox():
    import subprocess

    result = subprocess.run([sys.executable, "-c", "from scheduler.cli import main; main()", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for verb in ("up", "serve", "sandbox"):
        assert f" {verb} " in result.stdout
