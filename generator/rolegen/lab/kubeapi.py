"""The lab's own API client (node agent, volume provisioner, site set-up): plain JSON over HTTP(S) to one
site's API server, with the lab's admin client certificate on TLS. rolegen itself never uses this; it goes
through kubectl (rolegen.kubectl)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class KubeApi:
    def __init__(self, url: str, namespace: str, tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.tls = tls

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=5, context=self.tls) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            exc.close()
            raise ApiError(exc.code, text) from None
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
