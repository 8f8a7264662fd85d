"""The lab's own API client (node agent, volume provisioner, site set-up): plain JSON over HTTP(S) to one
site's API server, with the lab's admin client certificate on TLS. rolegen itself never uses this; it goes
through kubectl (rolegen.cluster.kubectl)."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class KubeApi:
    """One kept-alive connection per thread: the node agent and the provisioner poll several times a second,
    and a TLS handshake per request cost a lab more CPU than everything else it does while idle."""

    def __init__(self, url: str, namespace: str, tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.tls = tls
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, so close() ends them all

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        """Close this thread's connection; its next request opens a new one."""
        conn.close()
        self._local.conn = None
        with self._lock:
            self._open.discard(conn)

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        key = (self.url, id(self.tls))
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and (fresh or getattr(self._local, "key", None) != key):
            self._drop(conn)
            conn = None
        if conn is None:
            parts = urllib.parse.urlsplit(self.url)
            conn = (http.client.HTTPSConnection(parts.netloc, timeout=5, context=self.tls)
                    if parts.scheme == "https" else http.client.HTTPConnection(parts.netloc, timeout=5))
            self._local.conn, self._local.key = conn, key
            with self._lock:
                self._open.add(conn)
        return conn

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            reused = conn.sock is not None  # kept alive since an earlier request: the server may have closed it
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                if reused and not attempt and not isinstance(exc, TimeoutError):
                    continue  # once, on a new connection (a reset, an EOF in TLS, a closed idle connection)
                if isinstance(exc, OSError):
                    raise
                raise OSError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status >= 400:
            raise ApiError(resp.status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else None

    def path(self, kind: str, name: str | None = None) -> str:
        group = "/apis/apps/v1" if kind == "statefulsets" else "/api/v1"
        if kind in ("nodes", "persistentvolumes", "namespaces"):
            base = f"{group}/{kind}"
        else:
            base = f"{group}/namespaces/{self.namespace}/{kind}"
        return f"{base}/{name}" if name else base

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", self.path(kind, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def list(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", self.path(kind))["items"]
        return items

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.path(kind), obj)
        return result

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self.request("PATCH", self.path(kind, name), patch, "application/merge-patch+json")

    def delete(self, kind: str, name: str, options: dict[str, Any] | None = None) -> None:
        try:
            self.request("DELETE", self.path(kind, name), options)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def ensure_namespace(self) -> None:
        try:
            self.request("POST", "/api/v1/namespaces", {"metadata": {"name": self.namespace}})
        except ApiError as exc:
            if exc.status != 409:
                raise
