"""Staff pages: actions on a client's invitation (resend, cancel, show the link), and the
board's CSV export (see `staff_export`). Each is a POST with the CSRF token, allowed by a
permission, and audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portal import audit, invitations
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.invitations import InvitationRefused
from portal.models import Client, Enrollment, Practice
from portal.routes import staff_export
from portal.runtime import Runtime, request_meta, runtime
from portal.staff.access import Permission, require
from portal.staff.models import StaffAccount
from portal.templating import render

# An action gets the session, the enrollment, the signed-in staff member and the request's
# evidence; it returns what the page needs, or raises InvitationRefused.
Action = Callable[[Session, Enrollment, StaffAccount, RequestMeta], Any]


class _Missing(Exception):
    pass


async def _run(request: Request, action: Action) -> tuple[StaffAccount, str, Any, str | None]:
    """Runs `action` in one transaction, rolled back when refused.
    Returns (me, enrollment id, what the action returned, the problem when refused)."""
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.INVITE)
    enrollment_id = request.path_params["enrollment_id"][:32]
    meta = request_meta(request)

    def work() -> tuple[Any, str | None]:
        try:
            with transaction(rt.engine) as db:
                enrollment = db.get(Enrollment, enrollment_id)
                if enrollment is None:
                    raise _Missing
                return action(db, enrollment, me, meta), None
        except InvitationRefused as exc:
            return None, str(exc)

    try:
        result, problem = await run_in_threadpool(work)
    except _Missing:
        result, problem = None, "missing"
    rt.wake_mail()
    return me, enrollment_id, result, problem


def _problem(request: Request, me: StaffAccount, enrollment_id: str, problem: str) -> Response:
    if problem == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    context = {
        "me": me,
        "title": "Nothing was changed",
        "problem": problem,
        "back": f"/staff/clients/{enrollment_id}#sec-invitation",
    }
    return render(request, "staff/actions/problem.html", context, status_code=422)


def _done(enrollment_id: str, note: str) -> Response:
    url = f"/staff/clients/{enrollment_id}?invitation={note}#sec-invitation"
    return RedirectResponse(url, status_code=303)


async def resend(request: Request) -> Response:
    rt = runtime(request)

    def action(db: Session, enrollment: Enrollment, me: StaffAccount, meta: RequestMeta) -> str:
        practice = db.get(Practice, 1)
        if practice is None:
            raise InvitationRefused("The practice's details are missing.")
        return invitations.resend_invitation(
            db, rt.services, practice, enrollment, actor=_actor(me), meta=meta, now=utcnow()
        )

    me, enrollment_id, _link, problem = await _run(request, action)
    return (
        _problem(request, me, enrollment_id, problem) if problem else _done(enrollment_id, "resent")
    )


async def cancel(request: Request) -> Response:
    def action(db: Session, enrollment: Enrollment, me: StaffAccount, meta: RequestMeta) -> bool:
        return invitations.cancel_invitation(
            db, enrollment, actor=_actor(me), meta=meta, now=utcnow()
        )

    me, enrollment_id, ended, problem = await _run(request, action)
    if problem:
        return _problem(request, me, enrollment_id, problem)
    return _done(enrollment_id, "cancelled" if ended else "links_cancelled")


async def show_link(request: Request) -> Response:
    """The link itself, to read out or paste into a message the practice sends. A POST, so
    that only a deliberate click shows it (and audits it); link previews never do."""
    rt = runtime(request)

    def action(
        db: Session, enrollment: Enrollment, me: StaffAccount, meta: RequestMeta
    ) -> dict[str, Any]:
        now = utcnow()
        link = invitations.invitation_link(
            db, rt.services, enrollment, actor=_actor(me), meta=meta, now=now
        )
        return {
            "link": link,
            "invitation": invitations.open_invitation(db, enrollment.id, now),
            "client": db.get(Client, enrollment.client_id),
            "enrollment": enrollment,
            "practice": db.get(Practice, 1),
        }

    me, enrollment_id, context, problem = await _run(request, action)
    if problem == "missing":
        return _problem(request, me, enrollment_id, problem)
    if problem:
        context = await run_in_threadpool(_page_basics, rt, enrollment_id, me, request)
    context.update(me=me, problem=problem)
    status = 422 if problem else 200
    return render(
        request, "staff/actions/invitation_link.html", context, status_code=status, block="link_box"
    )


def _page_basics(
    rt: Runtime, enrollment_id: str, me: StaffAccount, request: Request
) -> dict[str, Any]:
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        audit.record(
            db,
            _actor(me),
            "client.viewed",
            "enrollment",
            enrollment.id,
            request_meta(request),
            page="invitation_link",
        )
        return {
            "enrollment": enrollment,
            "client": db.get(Client, enrollment.client_id),
            "practice": db.get(Practice, 1),
            "link": None,
            "invitation": None,
        }


def _actor(me: StaffAccount) -> Actor:
    return Actor("staff", me.id)


PREFIX = "/staff/clients/{enrollment_id:str}/invitation"
routes: list[BaseRoute] = [
    Route(f"{PREFIX}/resend", resend, methods=["POST"]),
    Route(f"{PREFIX}/cancel", cancel, methods=["POST"]),
    Route(f"{PREFIX}/link", show_link, methods=["POST"]),
    *staff_export.routes,
]
