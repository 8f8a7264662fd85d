"""The lab's application: a tiny HTTP service in front of the database, run by the node agent for the Pods of the
lab's `web` StatefulSet (rolegen_lab.apps), a dependent of both sites. It reaches the database as a real one
would, through its site's `<release>-master` Service (the lab maps it to the site's proxy), with the app user of
the chart's Secret.

`POST /write/<id>`: inserts the id (with the site the instance runs at) in one transaction and answers 200 only
once the commit is acknowledged; 503 otherwise. `GET /ready`: 200 when the database behind the Service accepts
writes (the readiness probe: an instance is "serving" only then). Run: python -m rolegen_lab.app (environment:
APP_PORT, APP_SITE, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER, DATABASE_PASSWORD).
"""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

TABLE = "app_writes"
SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint PRIMARY KEY, site text NOT NULL, " \
         "at timestamptz NOT NULL DEFAULT clock_timestamp())"


def _connect() -> psycopg.Connection[Any]:
    env = os.environ
    return psycopg.connect(host=env["DATABASE_HOST"], port=int(env["DATABASE_PORT"]), dbname=env["DATABASE_NAME"],
                           user=env["DATABASE_USER"], password=env["DATABASE_PASSWORD"], connect_timeout=2,
                           autocommit=True)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:  # one line per request would drown the Pod's log
        return None

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/ready":
            self._answer(404, "not found\n")
            return
        try:
            with _connect() as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            self._answer(503, f"{exc}\n")
            return
        self._answer(503 if row is None or row[0] else 200, "ok\n")

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "write" or not parts[1].isdigit():
            self._answer(404, "not found\n")
            return
        try:
            with _connect() as conn:
                conn.execute(f"INSERT INTO {TABLE} (id, site) VALUES (%s, %s)", (int(parts[1]), os.environ["APP_SITE"]))
        except psycopg.Error as exc:
            self._answer(503, f"{exc}\n")
            return
        self._answer(200, "ok\n")


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the agent's graceful stop
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
