"""The practical limit: a bare Starlette app doing the same work as the portal, no more.

- `/ping`: no middleware, answering the very response the portal's `/healthz` answers: its
  body and every header the portal's middleware adds (security headers, no-store), set as
  constants. Writing those seven headers is uvicorn's work, the same for both; computing
  them per request is the middleware's, which the comparison measures. `/plain` answers
  "ok" with no header beyond length and type, for the figure without them.
- `/client/{id}`: the exact SQL the portal's `GET /api/v1/clients/{id}` runs, recorded from a
  real request (`record`) and replayed for another client (`Replayer`): every value a recorded
  query returned for the recorded client stands for the value the same query returns for the
  asked-for client, so ids read on the way (enrollment, acknowledgement, ...) follow. The rows
  are answered as JSON with the standard library, in a thread like the portal's endpoints.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from portal.middleware.security_headers import HEADERS, NO_STORE
from portal.routes.public import HEALTHY

# What the portal's middleware adds to `/healthz`, as fixed headers.
SAME_HEADERS = {**dict(HEADERS), NO_STORE[0].decode(): NO_STORE[1].decode()}
Statement = tuple[str, Any]  # SQL and its parameters (a tuple on SQLite, a dict on psycopg)


def record(engine: Engine, run: Any) -> list[dict[str, Any]]:
    """The statements `run()` sends through `engine`, with transaction boundaries.
    Their results are filled in by `Replayer.capture`."""
    recorded: list[dict[str, Any]] = []
    postgres = engine.dialect.name == "postgresql"

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        recorded.append({"sql": statement, "params": params, "rows": []})

    def begin(_conn: Any) -> None:
        if postgres:  # SQLite's BEGIN is a statement of the app's own, recorded above
            recorded.append({"sql": "BEGIN", "params": None, "rows": []})

    def end(kind: str) -> Any:
        return lambda _conn: recorded.append({"sql": kind, "params": None, "rows": []})

    hooks = [
        ("before_cursor_execute", before),
        ("begin", begin),
        ("commit", end("COMMIT")),
        ("rollback", end("ROLLBACK")),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        run()
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)
    return recorded


class Replayer:
    """Runs a recorded request's statements for another client on one DB-API connection."""

    def __init__(self, url: str, recording: dict[str, Any]) -> None:
        self.url = url
        self.statements: list[dict[str, Any]] = recording["statements"]
        self.subject: str = recording["client_id"]
        self.local = threading.local()
        self.postgres = url.startswith("postgresql")

    def _connection(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.postgres:
                import psycopg

                conn = psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)
            else:
                conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
            self.local.conn = conn
        return conn

    def capture(self) -> None:
        """Run the recording for its own client and keep what each query returned."""
        self.run(self.subject, keep=True)

    def run(self, client_id: str, keep: bool = False) -> list[list[Any]]:
        conn = self._connection()
        cursor = conn.cursor()
        same = {self.subject: client_id}
        out: list[list[Any]] = []
        for step in self.statements:
            sql, params = step["sql"], step["params"]
            if params is None:
                cursor.execute(sql)
                continue
            cursor.execute(sql, _substitute(params, same, sql.lstrip().startswith("INSERT")))
            if cursor.description is None:
                continue
            rows = cursor.fetchall()
            out.append(rows)
            if keep:
                step["rows"] = json.loads(json.dumps(rows, default=str))
            for was_row, now_row in zip(step["rows"], rows, strict=False):
                for was, now in zip(was_row, now_row, strict=False):
                    if isinstance(was, str) and len(was) >= 8:
                        same[was] = now if isinstance(now, str) else str(now)
        return out


def _substitute(params: Any, same: dict[str, str], fresh_hashes: bool) -> Any:
    def one(value: Any) -> Any:
        if isinstance(value, str):
            if value in same:
                return same[value]
            if fresh_hashes and len(value) == 64:  # an audit hash: unique per event
                return secrets.token_hex(32)
        return value

    if isinstance(params, dict):
        return {k: one(v) for k, v in params.items()}
    return tuple(one(v) for v in params)


def save_recording(url: str, client_id: str, statements: list[dict[str, Any]], path: Path) -> None:
    plain = json.loads(json.dumps(statements, default=_plain))  # as the bare app will read them
    replayer = Replayer(url, {"client_id": client_id, "statements": plain})
    replayer.capture()
    recording = {"client_id": client_id, "statements": replayer.statements}
    path.write_text(json.dumps(recording, default=str))


def _plain(value: Any) -> Any:
    # psycopg wraps JSON parameters (Json(obj)): the database is sent the JSON text.
    return json.dumps(value.obj) if hasattr(value, "obj") else str(value)


def create_bare_app(url: str, recording_path: Path) -> Starlette:
    replayer = Replayer(url, json.loads(recording_path.read_text()))

    async def ping(_request: Request) -> Response:
        return Response(HEALTHY, media_type="application/json", headers=SAME_HEADERS)

    async def plain(_request: Request) -> Response:
        return PlainTextResponse("ok")

    def client(request: Request) -> Response:
        rows = replayer.run(request.path_params["client_id"])
        if not rows or not rows[1]:
            return Response(status_code=404)
        return Response(json.dumps(rows, default=str), media_type="application/json")

    return Starlette(
        routes=[
            Route("/ping", ping),
            Route("/plain", plain),
            Route("/client/{client_id:str}", client),
        ],
    )


def app_from_environment() -> Starlette:
    """`uvicorn --factory bench.bare_app:app_from_environment` (see bench/server.py)."""
    return create_bare_app(os.environ["BENCH_DATABASE_URL"], Path(os.environ["BENCH_RECORDING"]))
