"""Start/stop an emulator from Python and write a kubeconfig that points at it."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .api import Api
from .errors import EmulatorError
from .server import EmulatorHTTPServer
from .store import Store


def kubeconfig_dict(url: str, context: str, namespace: str = "default") -> dict[str, Any]:
    """An insecure (plain http, no credentials) kubeconfig with one cluster/user/context named `context`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                   "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


class Emulator:
    """One emulated API server on 127.0.0.1.

    >>> with Emulator(port=0, context="site-a") as emu:
    ...     emu.write_kubeconfig(tmp_path / "kubeconfig")
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", context: str = "emulator",
                 max_events: int = 5000) -> None:
        self.host, self.port, self.context = host, port, context
        self.store = Store(max_events=max_events)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise EmulatorError("the emulator is not running", "call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def open_connections(self) -> int:
        """Client connections currently held (idle keep-alive ones and watches included)."""
        if self._server is None:
            return 0
        with self._server.connections_lock:
            return len(self._server.connections)

    def start(self) -> str:
        if self._server is not None:
            return self.url
        self.store.closed = False  # restarting after stop(): same objects, watches allowed again
        try:
            self._server = EmulatorHTTPServer((self.host, self.port), Api(self.store))
        except OSError as e:
            raise EmulatorError(f"cannot listen on {self.host}:{self.port}: {e.strerror}",
                                "choose another port, or port 0 for any free one") from e
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"k8s-emulator-{self.context}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.store.close()  # ends running watches
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return kubeconfig_dict(self.url, self.context, namespace)

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        path.chmod(0o644)  # members running as another uid must read it
        return path

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
