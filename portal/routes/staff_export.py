"""The consent board as a CSV download, with the board's filters (`q`, `status`, `sort`).

A GET like the board itself: it changes nothing but the audit log, and the staff session
cookie is SameSite=strict, so another site cannot start a download with it.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from portal import audit
from portal.audit import Actor
from portal.db import utcnow
from portal.routes.staff_clients import board_filters, columns
from portal.runtime import request_meta, runtime
from portal.staff import export
from portal.staff.access import Permission, require
from portal.staff.board import BoardQuery


async def export_csv(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.EXPORT)
    # The whole filtered list, whichever page the board showed.
    extra = board_filters(rt)
    query = dataclasses.replace(
        BoardQuery.from_params(request.query_params, [f.key for f in extra]), after=""
    )
    meta = request_meta(request)

    def finish(db: Session, rows: int, complete: bool) -> None:
        # The filters, not the search text: it may be a client's name.
        audit.record(
            db,
            Actor("staff", me.id),
            "board.exported",
            "board",
            "clients",
            meta,
            rows=rows,
            complete=complete,
            status=query.status,
            sort=query.sort,
            searched=bool(query.q),
        )

    name = f"clients-{utcnow():%Y-%m-%d}.csv"
    return StreamingResponse(
        export.stream(rt.engine, query, columns(rt), finish),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


routes: list[BaseRoute] = [Route("/staff/export.csv", export_csv, methods=["GET"])]
