"""`python -m rolegen.lab.emulator --port N --kubeconfig PATH --context NAME`: serve until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import Emulator, EmulatorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolegen.lab.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this emulator to this path")
    parser.add_argument("--context", default="emulator", help="context/cluster/user name in the kubeconfig")
    parser.add_argument("--namespace", default="default", help="namespace of the kubeconfig context")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator = Emulator(port=args.port, context=args.context)
    try:
        url = emulator.start()
    except EmulatorError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    try:
        if args.kubeconfig:
            emulator.write_kubeconfig(args.kubeconfig, args.namespace)
        print(f"serving {url} (context {args.context})", flush=True)
        stop.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
