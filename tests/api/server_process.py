"""The API as a deployment runs it: `uvicorn --factory scheduler.api:create_app` in a process of its own.

The hostile-client tests need what an in-process server cannot give: the server's own memory, read from
/proc, and an event loop that no test thread shares. Requests go over raw sockets where a test must
control exactly what is sent (a declared 128 MiB body, a chunked stream) and see when the answer comes.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.redis import free_port


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    port: int
    base: str

    def peak_rss_bytes(self) -> int:
        """VmHWM: the most resident memory the process ever had (so a spike that was freed still shows)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def reset_peak_rss(self) -> None:
        """Start VmHWM again from the current resident size (Linux's clear_refs, value 5)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def wait_until_body_consumed(self, sock: socket.socket, timeout: float = 60) -> None:
        """Wait until the server process has read from the kernel every byte sent on `sock`.

        Read from /proc/net/tcp: nothing left in the client's send queue, nothing in the server's receive
        queue. uvicorn reads only as fast as the application consumes (flow control), so from then on
        the request's handler has the whole body.
        """
        client_port = sock.getsockname()[1]
        deadline = time.monotonic() + timeout
        while True:
            queues = _tcp_queues()
            sending = queues.get((client_port, self.port), (0, 0))[0]
            unread = queues.get((self.port, client_port), (0, 0))[1]
            if sending == 0 and unread == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the server left {sending + unread} body bytes unread for {timeout} s")
            time.sleep(0.005)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=60)


def _tcp_queues() -> dict[tuple[int, int], tuple[int, int]]:
    """(local port, remote port) -> (send queue, receive queue) of the IPv4 TCP sockets, from /proc."""
    queues = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, tx_rx = fields[1], fields[2], fields[4]
        tx, rx = (int(value, 16) for value in tx_rx.split(":"))
        queues[(int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))] = (tx, rx)
    return queues


@contextmanager
def api_process(redis_url: str, home: Path, **env: str) -> Iterator[ServerProcess]:
    """Run the API in a child process with `WAVECD_*` settings; stop it afterwards."""
    port = free_port()
    environ = {**os.environ, "WAVECD_REDIS_URL": redis_url, "WAVECD_HOME": str(home),
               "WAVECD_API_OPEN_READS": "false", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "scheduler.api:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--lifespan", "off"],
        env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API process exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API process did not answer /healthz")
            time.sleep(0.05)
        yield ServerProcess(proc.pid, port, base)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@dataclass(frozen=True)
class Answer:
    status: int
    head: str
    body: bytes
    body_bytes_sent: int


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def read_answer(sock: socket.socket) -> tuple[int, str, bytes]:
    """Read one HTTP response (Content-Length framed, as the API answers) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return _status(head), head.decode("latin-1"), body


def push_body(sock: socket.socket, head: bytes, total: int, *, chunked: bool = False,
              piece: bytes = b"x" * 65536) -> Answer:
    """Send `head`, then up to `total` body bytes, stopping as soon as the server answers.

    Waits on the socket (select) for either room to write or an answer to read, so a server that answers
    before the body is sent is seen at once, and one that reads everything gets everything.
    """
    sock.sendall(head)
    sent = 0
    finished = False
    while True:
        readable, writable, _ = select.select([sock], [] if finished else [sock], [], 60)
        if readable:
            break
        if not writable:
            raise AssertionError("the server neither read the body nor answered within 60 s")
        if sent >= total:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            finished = True
            continue
        data = piece[: total - sent]
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(data)
    status, text, body = read_answer(sock)
    return Answer(status, text, body, sent)
