"""HTTP helper for the emulator conformance tests (a plain module so test files can import it)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CONTEXT = "lab-test"


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str


class Http:
    """Minimal client for conformance tests: one connection per request, always closed."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def __call__(self, method: str, path: str, body: Any = None,
                 content_type: str = "application/json", raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=data, headers={"Content-Type": content_type,
                                                             "Accept": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            ctype = resp.getheader("Content-Type", "")
            parsed = json.loads(payload) if ctype.startswith("application/json") and payload else payload
            return Reply(resp.status, parsed, ctype)
        finally:
            conn.close()

    def watch(self, path: str, max_events: int = 1000, timeout: float = 10,
              during: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Open a watch, run `during` once the stream is open, and collect events until the server ends
        the stream or `max_events` arrived."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        events: list[dict[str, Any]] = []
        resp: http.client.HTTPResponse | None = None
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            if during is not None:
                during()
            while len(events) < max_events:
                line = resp.readline()
                if not line:
                    break
                events.append(json.loads(line))
        finally:
            if resp is not None:
                resp.close()
            conn.close()
        return events
