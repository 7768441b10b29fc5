"""`python -m tests.controlplane start|stop|kubeconfig --dir DIR`: the launcher from a shell (scripts/kube.sh)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.controlplane.launcher import KUBE_VERSION, ControlPlane, ControlPlaneError, binary_dir


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane")
    parser.add_argument("action", choices=["start", "stop", "kubeconfig"])
    parser.add_argument("--dir", required=True, type=Path, help="where data, logs, certificates and kubeconfig go")
    parser.add_argument("--version", default=KUBE_VERSION)
    args = parser.parse_args()
    plane = ControlPlane(args.dir.resolve(), binary_dir(args.version))
    if args.action == "stop":
        plane.stop()
        return 0
    if args.action == "start":
        try:
            plane.start()
        except ControlPlaneError as exc:
            print(f"control plane: {exc}", file=sys.stderr)
            return 1
    print(plane.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
