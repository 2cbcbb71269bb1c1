"""Staff set or clear a client's EHR record number from the client page."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal import identifiers
from portal.audit import Actor
from portal.db import transaction
from portal.models import Client, Enrollment
from portal.routes.staff_clients import render_client_page
from portal.runtime import request_meta, runtime
from portal.staff.access import Permission, require
from portal.templating import render

TAKEN = "Another client already has this record number. Check the number in the EHR."


async def set_mrn(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.INVITE)
    enrollment_id = request.path_params["enrollment_id"][:32]
    form = await request.form()
    raw = str(form.get("mrn", ""))[:200]
    meta = request_meta(request)

    def work() -> str | None:
        """The outcome note, or None when there is no such client."""
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            client = db.get(Client, enrollment.client_id) if enrollment else None
            if client is None:
                return None
            identifiers.set_mrn(db, client, raw, actor=Actor("staff", me.id), meta=meta)
            return "saved" if client.mrn else "cleared"

    try:
        note = await run_in_threadpool(work)
    except (identifiers.InvalidMrn, identifiers.MrnTaken) as exc:
        message = TAKEN if isinstance(exc, identifiers.MrnTaken) else str(exc)
        extra = {"mrn_errors": {"mrn": message}, "mrn_values": {"mrn": raw}}
        return await render_client_page(request, me, extra, status_code=422)
    if note is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return RedirectResponse(f"/staff/clients/{enrollment_id}?mrn={note}#sec-ehr", status_code=303)


routes: list[BaseRoute] = [
    Route("/staff/clients/{enrollment_id:str}/mrn", set_mrn, methods=["POST"]),
]
