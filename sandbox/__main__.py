"""`python -m sandbox`: run the Kubernetes API emulator as its own process.

Several worker processes (and the benchmark scripts) share one emulator this way; it prints its URL
and serves until interrupted.
"""

from __future__ import annotations

import argparse
import signal
import threading

from sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="WaveCD's Kubernetes API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--simulate-controllers", action="store_true",
                        help="roll out workloads, complete Jobs, bind PVCs, ... as controllers would")
    parser.add_argument("--rollout-seconds", type=float, default=2.0,
                        help="how long a simulated roll-out takes (default 2)")
    parser.add_argument("--kubeconfig-out", default=None, help="write a kubeconfig for this server here")
    args = parser.parse_args(argv)
    server = SandboxServer(args.host, args.port, simulate_controllers=args.simulate_controllers,
                           rollout_seconds=args.rollout_seconds)
    server.start()
    if args.kubeconfig_out:
        server.write_kubeconfig(args.kubeconfig_out)
    print(f"sandbox serving on {server.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
