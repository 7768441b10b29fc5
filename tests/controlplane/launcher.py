"""Starts and stops a real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager
and our stand-in kubelet, from the binaries `scripts/kube.sh build` made.

The emulator is our fast model; this is the judge. No Docker: each part is a plain process in its own session
(so a stop reaches its children too), on free loopback ports, with its data, certificates, logs and the
kubeconfig in one directory. `python -m tests.controlplane start|stop|env` is the command-line face of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.controlplane.pki import Pki, make_pki

KUBE_VERSION = "v1.36.3"
NODE_NAME = "wavecd-node"
SERVICE_CIDR = "10.96.0.0/16"  # room for thousands of Services (benchmarks)

# Controllers a kubelet-less test cluster must not run: node lifecycle would taint and evict our stand-in node
# whose heartbeat it does not expect; the rest manage clouds, volumes attached by a real kubelet, or node CIDRs.
DISABLED_CONTROLLERS = ("node-lifecycle-controller", "cloud-node-lifecycle-controller",
                        "persistentvolume-attach-detach-controller", "node-ipam-controller", "service-lb-controller",
                        "node-route-controller", "persistentvolume-expander-controller", "taint-eviction-controller")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached; the message says which part and why."""


def cache_root() -> Path:
    base = os.environ.get("WAVECD_KUBE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wavecd")
    return Path(base)


def binary_dir(version: str = KUBE_VERSION) -> Path:
    return cache_root() / f"kube-{version}" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ControlPlane:
    """One control plane in `directory`; `start()` returns once the API answers and the node is Ready."""

    directory: Path
    bin_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def _pids_file(self) -> Path:
        return self.directory / "pids.json"

    def start(self, timeout: float = 120.0) -> ControlPlane:
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            if not (self.bin_dir / name).is_file():
                raise ControlPlaneError(f"{self.bin_dir / name} is missing: run `scripts/kube.sh build` first")
        if self._pids_file.exists():
            self.stop()
        for sub in ("etcd", "logs", "pki"):
            shutil.rmtree(self.directory / sub, ignore_errors=True)
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        pki = make_pki(self.directory / "pki")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig(self.kubeconfig, server, pki)
        pids: dict[str, int] = {}
        try:
            pids["etcd"] = self._spawn("etcd", [
                str(self.bin_dir / "etcd"), "--name", "wavecd", "--data-dir", str(self.directory / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-cluster", f"wavecd=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync", "--log-level", "warn",
            ])
            self._record(pids)
            pids["kube-apiserver"] = self._spawn("kube-apiserver", [
                str(self.bin_dir / "kube-apiserver"),
                "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(api_port),
                "--tls-cert-file", str(pki.server_cert), "--tls-private-key-file", str(pki.server_key),
                "--client-ca-file", str(pki.ca_cert),
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(pki.sa_pub),
                "--service-account-signing-key-file", str(pki.sa_key),
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--authorization-mode", "Node,RBAC", "--allow-privileged=true",
                "--endpoint-reconciler-type", "none", "--profiling=false", "-v", "0",
            ])
            self._record(pids)
            self._wait_ready(server, pki, timeout)
            pids["kube-controller-manager"] = self._spawn("kube-controller-manager", [
                str(self.bin_dir / "kube-controller-manager"),
                "--kubeconfig", str(self.kubeconfig), "--leader-elect=false", "--secure-port", "0",
                "--use-service-account-credentials=false",
                "--service-account-private-key-file", str(pki.sa_key), "--root-ca-file", str(pki.ca_cert),
                "--controllers", ",".join(["*", *(f"-{c}" for c in DISABLED_CONTROLLERS)]),
                "--concurrent-gc-syncs", "10", "--profiling=false", "-v", "0",
            ])
            self._record(pids)
            pids["kubelet"] = self._spawn("kubelet", [
                sys.executable, "-m", "tests.controlplane.kubelet", "--kubeconfig", str(self.kubeconfig),
                "--node", NODE_NAME,
            ], cwd=Path(__file__).resolve().parents[2])
            self._record(pids)
            self._wait_settled(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops every part (SIGTERM to its process group, SIGKILL after 10 s); safe to call twice."""
        try:
            pids: dict[str, int] = json.loads(self._pids_file.read_text())
        except (OSError, ValueError):
            return
        for pid in reversed(list(pids.values())):
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid in pids.values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
        self._pids_file.unlink(missing_ok=True)

    def _spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> int:
        log = open(self.directory / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        with log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=cwd)
        return proc.pid

    def _record(self, pids: dict[str, int]) -> None:
        self._pids_file.write_text(json.dumps(pids))

    def _check_alive(self) -> None:
        pids: dict[str, int] = json.loads(self._pids_file.read_text())
        for name, pid in pids.items():
            if not _alive(pid):
                tail = (self.directory / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                raise ControlPlaneError(f"{name} exited during start; the end of its log:\n{tail}")

    def _wait_ready(self, server: str, pki: Pki, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"kube-apiserver at {server} not ready within {timeout:.0f}s")
            time.sleep(0.2)

    def _wait_settled(self, timeout: float) -> None:
        """Waits for what a workload needs: the node Ready and the default ServiceAccount made by the controllers."""
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._check_alive()
                try:
                    node = core.read_node(NODE_NAME)
                    ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
                    core.read_namespaced_service_account("default", "default")
                    if ready:
                        return
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"node {NODE_NAME} or the default ServiceAccount missing after "
                                            f"{timeout:.0f}s; see {self.directory / 'logs'}")
                time.sleep(0.2)
        finally:
            api.close()

    @staticmethod
    def _write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "wavecd-real",
            "clusters": [{"name": "wavecd-real", "cluster": {"server": server,
                                                              "certificate-authority": str(pki.ca_cert)}}],
            "users": [{"name": "wavecd-admin", "user": {"client-certificate": str(pki.admin_cert),
                                                         "client-key": str(pki.admin_key)}}],
            "contexts": [{"name": "wavecd-real", "context": {"cluster": "wavecd-real", "user": "wavecd-admin"}}],
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
