"""`wavecd serve` and `wavecd sandbox` on their own: each starts, answers, and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _wavecd(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-c", "from scheduler.cli import main; main()", *args],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("did not stop on SIGTERM") from None


def test_sandbox_command_serves_the_kubernetes_api_and_writes_a_kubeconfig(tmp_path: Path):
    kubeconfig = tmp_path / "kube" / "config"
    log = tmp_path / "sandbox.log"
    proc = _wavecd("sandbox", "--port", "0", "--simulate-controllers", "--kubeconfig-out", str(kubeconfig),
                   env=dict(os.environ), log=log)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"sandbox serving on (http://\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = found[1]
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
        namespaces = httpx.get(f"{url}/api/v1/namespaces", timeout=10)
        assert namespaces.status_code == 200 and namespaces.json()["kind"] == "NamespaceList"
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text()


def test_serve_command_runs_the_api_server(tmp_path: Path, redis_url: str):
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "WAVECD_REDIS_URL": redis_url, "WAVECD_HOME": str(tmp_path / "home"),
           "WAVECD_API_TOKEN": "serve-test-token"}
    proc = _wavecd("serve", "--host", "127.0.0.1", "--port", str(port), env=env, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert health.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/applications", timeout=5).status_code == 401
        listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/applications", timeout=5,
                           headers={"Authorization": "Bearer serve-test-token"})
        assert listed.status_code == 200
    finally:
        _stop(proc)


@pytest.mark.integration
def test_up_installs_the_application_and_appproject_crds(kube_env) -> None:
    """`wavecd up` makes `wavecd app ...` and `wavecd proj ...` work on a cluster that had neither CRD."""
    from kubernetes import client, config

    from scheduler.cli.run import ClusterSetup

    ClusterSetup(kube_env.kubeconfig, kube_env.context).install_crd()
    api = config.new_client_from_config(config_file=kube_env.kubeconfig, context=kube_env.context)
    try:
        ext = client.ApiextensionsV1Api(api)
        for name in ("applications.argoproj.io", "appprojects.argoproj.io"):
            crd = ext.read_custom_resource_definition(name)
            assert {c.type: c.status for c in crd.status.conditions or []}.get("Established") == "True", name
    finally:
        api.close()
