"""/api/v1/changes: the incremental-sync feed an EHR polls with a cursor.

Each entry says that a client's record changed (and which of its records); the EHR then reads
the client. The feed never serves an entry beyond the safe horizon (see portal/changes.py), so
a cursor once handed out is never overtaken by a late commit: polling from it misses nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal import audit, changes
from portal.api import params
from portal.api.auth import api_meta, authenticate
from portal.api.keys import Scope
from portal.api.records import iso
from portal.audit import Actor
from portal.db import transaction
from portal.runtime import runtime

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def entry(change: changes.ClientChange) -> dict[str, Any]:
    return {
        "cursor": changes.position_of(change).encode(),
        "client_id": change.client_id,
        "changed_at": iso(change.changed_at),
        "records": [name for name in change.tables.split(",") if name],
        "client_url": f"/api/v1/clients/{change.client_id}",
    }


async def list_changes(request: Request) -> Response:
    rt = runtime(request)
    query = request.query_params
    params.only(query, {"after", "since", "limit"})
    limit = params.limit(query, DEFAULT_LIMIT, MAX_LIMIT)
    since = params.instant(query, "since")
    after = None
    if "after" in query:
        if since is not None:
            raise params.bad_request("Give either 'after' (a cursor) or 'since', not both.")
        after = changes.Position.decode(query["after"])
        if after is None:
            raise params.bad_request("'after' is not a cursor this API returned.")
    meta = api_meta(request)

    def work() -> dict[str, Any]:
        with transaction(rt.engine, read_only=True) as db:
            key = authenticate(rt.engine, request, Scope.CLIENTS_READ, db)
            start = after
            if start is None:
                start = changes.first_at_or_after(db, since) if since else changes.START
            rows = changes.read(db, start, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        last = changes.position_of(rows[-1]) if rows else start
        audit.record_alone(
            rt.engine, Actor("api", key.name), "api.changes_read", "api_key", key.id, meta,
            count=len(rows),
        )  # fmt: skip
        return {
            "changes": [entry(row) for row in rows],
            "next_cursor": last.encode(),
            "has_more": more,
        }

    return JSONResponse(await rt.in_db_thread(work))
