"""HTTP routing (stdlib `http.server`, HTTP/1.1 keep-alive) and the watch stream."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import resources
from .api import Api, Route, parse_body, status_body
from .selectors import SelectorError, selects
from .store import Obj, StoreError

log = logging.getLogger(__name__)

BOOKMARK_INTERVAL = 5.0  # seconds of quiet before a bookmark, when the client allows bookmarks
DEFAULT_WATCH_TIMEOUT = 1800.0
_TRUE = ("true", "True", "1")


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections or streaming watches."""
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _route(parts: list[str]) -> Route | None:
    """`parts` of /api/v1/... or /apis/<g>/<v>/... after the group-version prefix; `group, version`
    are the first two elements."""
    group, version, rest = parts[0], parts[1], parts[2:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and resources.lookup(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    res = resources.lookup(group, version, rest[0])
    if res is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub not in ("", "status", "scale") or (sub == "scale" and not res.scale) or (
            sub == "status" and not res.status):
        return None
    if (not res.namespaced and namespace) or (res.namespaced and name and not namespace):
        return None
    return Route(res, namespace, name, sub)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, err: StoreError, route: Route | None = None) -> None:
        self._send(err.code, status_body(err.reason, err.code, err.message, route.name if route else "",
                                         route.res.plural if route else ""))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routing -------------------------------------------------------------------------------
    @staticmethod
    def _discovery(parts: list[str]) -> Any:
        if parts in (["version"], ["version", ""]):
            return resources.SERVER_VERSION
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return b"ok"
        if parts == ["api"]:
            return resources.api_versions()
        if parts == ["apis"]:
            return resources.api_group_list()
        if parts == ["api", "v1"]:
            return resources.resource_list("", "v1")
        if parts[0] == "apis" and len(parts) == 2:
            return resources.api_group(parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            return resources.resource_list(parts[1], parts[2])
        if parts == ["openapi", "v3"]:
            return resources.openapi_v3_root()
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            gv = parts[3:] if parts[2] == "api" else parts[3:5]
            return resources.openapi_v3_document("" if parts[2] == "api" else gv[0], gv[-1])
        return None

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.split("/") if p]
        raw = self._body()  # always drain it, or the next request on this connection is garbage
        if not parts:
            self._send(200, {"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version"]})
            return
        if method == "GET":
            doc = self._discovery(parts)
            if doc is not None:
                self._send(200, doc, "text/plain" if isinstance(doc, bytes) else "application/json")
                return
        watch_path = False
        if parts[0] == "api" and len(parts) > 2 and parts[2] == "watch":
            parts, watch_path = parts[:2] + parts[3:], True
        elif parts[0] == "apis" and len(parts) > 3 and parts[3] == "watch":
            parts, watch_path = parts[:3] + parts[4:], True
        if parts[0] not in ("api", "apis") or len(parts) < 3:
            self._error(StoreError("NotFound", 404, "the server could not find the requested resource"))
            return
        gv = ["", parts[1]] if parts[0] == "api" else parts[1:3]
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        route = _route(gv + rest) if len(gv) == 2 else None
        if route is None:
            self._error(StoreError("NotFound", 404, "the server could not find the requested resource"))
            return
        try:
            self._handle(method, route, query, raw, watch_path)
        except StoreError as e:
            self._error(e, route)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # an emulator bug: answer like an apiserver would, keep serving
            log.exception("internal error on %s %s", method, self.path)
            self._error(StoreError("InternalError", 500, f"emulator error: {e!r}"), route)

    def _handle(self, method: str, route: Route, query: dict[str, str], raw: bytes, watch_path: bool) -> None:
        api, content_type = self.server.api, self.headers.get("Content-Type", "application/json")
        body = parse_body(raw, content_type)
        if method == "GET" and (watch_path or query.get("watch") in _TRUE):
            if route.name:  # the deprecated /watch/.../<name> form
                fs = f"metadata.name={route.name}"
                query["fieldSelector"] = f"{query['fieldSelector']},{fs}" if query.get("fieldSelector") else fs
            self._watch(route, query)
        elif method == "GET":
            self._send(200, api.read(route) if route.name else api.list(route, query))
        elif method == "POST" and not route.name:
            dry = api._dry(query)
            self._send(200 if dry else 201, api.create(route, body, query))
        elif method == "PUT" and route.name:
            self._send(200, api.replace(route, body, query))
        elif method == "PATCH" and route.name:
            self._send(200, api.patch(route, body, content_type, query))
        elif method == "DELETE" and route.name:
            self._send(200, api.delete(route, body, query))
        elif method == "DELETE":
            self._send(200, api.delete_collection(route, body, query))
        else:
            raise StoreError("MethodNotAllowed", 405, f"{method} is not supported here")

    # -- watch ---------------------------------------------------------------------------------
    def _chunk(self, event: Obj) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """True when the watcher hung up (readable with EOF), so idle watches do not linger until
        their timeout; a client never sends anything on a watch connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _watch(self, route: Route, query: dict[str, str]) -> None:
        try:
            pred = selects(query.get("labelSelector"), query.get("fieldSelector"))
        except SelectorError as e:
            raise StoreError("BadRequest", 400, str(e)) from None
        store, res, ns = self.server.api.store, route.res, route.namespace or None
        key = (res.group, res.plural)
        rv_param = query.get("resourceVersion", "")
        initial = query.get("sendInitialEvents") in _TRUE
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        deadline = time.monotonic() + timeout
        if not rv_param.isdigit() and rv_param != "":
            raise StoreError("BadRequest", 400, f"invalid resourceVersion {rv_param!r}")
        if not initial and rv_param not in ("", "0"):
            store.events_after(int(rv_param), key, ns)  # a 410 Gone is answered before the stream starts
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

        def bookmark(rv: int, extra: dict[str, str] | None = None) -> Obj:
            meta: Obj = {"resourceVersion": str(rv)}
            if extra:
                meta["annotations"] = extra
            return {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                   "metadata": meta}}

        if initial or rv_param in ("", "0"):
            items, cursor = store.list(res, ns)
            for obj in items:
                if pred(obj):
                    self._chunk({"type": "ADDED", "object": obj})
            if initial:
                self._chunk(bookmark(cursor, {"k8s.io/initial-events-end": "true"}))
        else:
            cursor = int(rv_param)
        last_sent = time.monotonic()
        while not store.closed and time.monotonic() < deadline:
            try:
                events, seen = store.events_after(cursor, key, ns)
            except StoreError as e:  # compacted under a running watch
                self._chunk({"type": "ERROR", "object": status_body(e.reason, e.code, e.message)})
                break
            for ev in events:
                cursor = ev.rv
                now_in, was_in = pred(ev.obj), ev.old is not None and pred(ev.old)
                kind = ev.type
                if kind == "MODIFIED" and now_in and not was_in:
                    kind = "ADDED"
                elif kind == "MODIFIED" and was_in and not now_in:
                    kind = "DELETED"
                elif not (now_in or (kind == "DELETED" and was_in)):
                    continue
                self._chunk({"type": kind, "object": ev.obj})
                last_sent = time.monotonic()
            cursor = max(cursor, seen)  # everything up to `seen` was examined, matching or not
            if not events:
                if self._client_gone():
                    self.close_connection = True
                    return
                if bookmarks and time.monotonic() - last_sent >= BOOKMARK_INTERVAL:
                    self._chunk(bookmark(max(cursor, store.rv)))
                    last_sent = time.monotonic()
                store.wait(cursor, min(1.0, BOOKMARK_INTERVAL, max(0.0, deadline - time.monotonic())))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
