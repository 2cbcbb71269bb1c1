"""Invitation and resume links, and asking for a new link. A GET never uses a link up:
mail scanners open links too, so the client confirms with a button (a POST)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import client_sessions, invitations
from portal.db import transaction, utcnow
from portal.invitations import LinkCheck, LinkStatus
from portal.models import Client, Practice
from portal.routes.journey import set_session_cookie
from portal.runtime import request_meta, runtime
from portal.templating import render
from portal.validation import clean_email

PROBLEM_STATUS = {
    LinkStatus.USED: 410,
    LinkStatus.EXPIRED: 410,
    LinkStatus.CANCELLED: 410,
    LinkStatus.INVALID: 404,
}


def _problem(request: Request, kind: str, check: LinkCheck, practice: Practice | None) -> Response:
    context = {"kind": kind, "status": check.status.value, "practice": practice}
    return render(request, "links/problem.html", context, status_code=PROBLEM_STATUS[check.status])


async def _landing(request: Request, kind: str) -> Response:
    rt = runtime(request)
    token = request.path_params["token"]

    def work() -> tuple[LinkCheck, dict[str, Any]]:
        with transaction(rt.engine, read_only=True) as db:
            now = utcnow()
            if kind == "invitation":
                check = invitations.check_invitation(db, rt.services, token, now)
            else:
                check = invitations.check_resume(db, rt.services, token)
            practice = db.get(Practice, 1)
            first_name = ""
            if check.enrollment is not None:
                client = db.get(Client, check.enrollment.client_id)
                first_name = client.full_name.split()[0] if client else ""
            return check, {"practice": practice, "first_name": first_name}

    check, context = await run_in_threadpool(work)
    if check.status is not LinkStatus.OK:
        return _problem(request, kind, check, context["practice"])
    context.update(kind=kind, action=request.url.path)
    return render(request, "links/landing.html", context)


async def _accept(request: Request, kind: str) -> Response:
    rt = runtime(request)
    token = request.path_params["token"]

    def work() -> tuple[LinkCheck, str | None, Practice | None]:
        with transaction(rt.engine) as db:
            now = utcnow()
            meta = request_meta(request)
            if kind == "invitation":
                check, key = invitations.accept_invitation(db, rt.services, token, meta, now)
            else:
                check, key = invitations.accept_resume(db, rt.services, token, meta, now)
            if key is not None:
                # The session this browser brought (planted, or someone else's on a shared
                # device) ends: after a link, only the new key works.
                client_sessions.end(db, request.cookies.get(client_sessions.COOKIE), now)
            return check, key, db.get(Practice, 1)

    check, key, practice = await run_in_threadpool(work)
    if key is None:
        return _problem(request, kind, check, practice)
    response = RedirectResponse("/onboarding", status_code=303)
    set_session_cookie(response, rt, key)
    return response


async def invitation_landing(request: Request) -> Response:
    return await _landing(request, "invitation")


async def invitation_accept(request: Request) -> Response:
    return await _accept(request, "invitation")


async def resume_landing(request: Request) -> Response:
    return await _landing(request, "resume")


async def resume_accept(request: Request) -> Response:
    return await _accept(request, "resume")


async def request_link_form(request: Request) -> Response:
    return render(request, "links/request.html", {"values": {}, "errors": {}})


async def request_link(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await request.form(max_files=0, max_fields=20)
        raw = form.get("email")
    except Exception:
        raw = None
    email, error = clean_email(raw if isinstance(raw, str) else "")
    if error:
        context = {"values": {"email": email}, "errors": {"email": error}}
        return render(request, "links/request.html", context, status_code=422, block="form")

    def work() -> None:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            if practice is not None:
                invitations.request_new_link(
                    db, rt.services, practice, email, request_meta(request)
                )

    await run_in_threadpool(work)
    rt.wake_mail()
    return render(request, "links/requested.html", {}, block="form")


routes = [
    Route("/i/{token:str}", invitation_landing, methods=["GET"]),
    Route("/i/{token:str}", invitation_accept, methods=["POST"]),
    Route("/r/{token:str}", resume_landing, methods=["GET"]),
    Route("/r/{token:str}", resume_accept, methods=["POST"]),
    Route("/link", request_link_form, methods=["GET"]),
    Route("/link", request_link, methods=["POST"]),
]
