"""The process behind `rolegen lab up`: keeps both sites running until SIGTERM, then stops everything.
It owns the member processes, so faults (`rolegen lab kill|cut|...`, drills) reach it through the control
socket (rolegen_lab.control.channel) in the lab root.

python -m rolegen_lab.control.daemon --root DIR --env-dir DIR [--k8s-bin DIR] [--witness]
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import traceback
from pathlib import Path

from rolegen_lab.control.channel import PID_FILE, SOCKET_FILE, ControlServer
from rolegen_lab.lab import Lab

ERROR_FILE = "error.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rolegen_lab.control.daemon")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--env-dir", type=Path, required=True)
    parser.add_argument("--k8s-bin", type=Path, default=None)
    parser.add_argument("--witness", action="store_true", help="also the witness site (a third control plane)")
    parser.add_argument("--automatic", action="store_true", help="automatic failover: the witness and its guards")
    parser.add_argument("--sync", action="store_true", help="automatic failover with cross-site synchronous commit")
    parser.add_argument("--guard-pods", action="store_true", help="the standby guards as the chart's Pods")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / PID_FILE).write_text(f"{os.getpid()}\n")
    lab = Lab(args.root, args.env_dir, k8s_bin=args.k8s_bin, witness=args.witness, automatic=args.automatic,
              replication="sync" if args.sync else "async", standby_guards="pod" if args.guard_pods else "process")
    server: ControlServer | None = None
    try:
        server = ControlServer(args.root / SOCKET_FILE, lab)  # before state.json: `lab up` returns on that file
        lab.up()
        stop.wait()
    except BaseException as exc:  # reported to `rolegen lab up`, which prints it
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        (args.root / ERROR_FILE).write_text(f"{message}\n\n{traceback.format_exc()}")
        return 1
    finally:
        if server is not None:
            server.close()
        lab.down()
        (args.root / PID_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
