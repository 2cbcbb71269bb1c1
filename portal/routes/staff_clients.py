"""The staff side's client pages: the consent board, one client's page, inviting a client."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import audit, invitations
from portal.audit import Actor, AuditEvent
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime, request_meta, runtime
from portal.staff import invitation_section, mrn_section
from portal.staff.access import Permission, can, require
from portal.staff.board import (
    STATUSES,
    BoardColumn,
    BoardFilter,
    BoardPanel,
    BoardQuery,
    ClientSection,
    search,
)
from portal.staff.models import Role, StaffAccount
from portal.templating import is_htmx, render
from portal.validation import clean_email, clean_name

TIMELINE_LIMIT = 200


def columns(rt: Runtime) -> list[BoardColumn]:
    found = [c for group in rt.pm.hook.portal_board_columns(settings=rt.settings) for c in group]
    return sorted(found, key=lambda c: c.order)


def board_filters(rt: Runtime) -> list[BoardFilter]:
    return [f for group in rt.pm.hook.portal_board_filters(settings=rt.settings) for f in group]


def board_panels(rt: Runtime) -> list[BoardPanel]:
    found = [p for group in rt.pm.hook.portal_board_panels(settings=rt.settings) for p in group]
    return sorted(found, key=lambda p: p.order)


def sections(rt: Runtime) -> list[ClientSection]:
    found = [s for group in rt.pm.hook.portal_client_sections(settings=rt.settings) for s in group]
    built_in = [invitation_section.SECTION, mrn_section.SECTION]
    return sorted([*found, *built_in], key=lambda s: s.order)


async def board(request: Request) -> Response:
    rt = runtime(request)
    extra = board_filters(rt)
    query = BoardQuery.from_params(request.query_params, [f.key for f in extra])
    cols = columns(rt)
    # A live search swaps only the results: the panels above them are not rendered.
    results_only = is_htmx(request)
    meta = request_meta(request)

    def work() -> tuple[StaffAccount, dict[str, Any]]:
        me = require(rt.engine, rt.settings, request, Permission.VIEW_CLIENTS)
        # Read-only (on SQLite no write lock while the page is built); the audit event
        # is then written alone, a short write, before anything is shown.
        with transaction(rt.engine, read_only=True) as db:
            page = search(db, query, cols, extra)
            shown_panels = []
            for panel in [] if results_only else board_panels(rt):
                panel_context = panel.context(db)
                if panel_context is not None:
                    shown_panels.append((panel, panel_context))
            context = {
                "page": page,
                "practice": db.get(Practice, 1),
                "therapists": therapists(db),
                "panels": shown_panels,
            }
        audit.record_alone(
            rt.engine, Actor("staff", me.id), "board.viewed", "board", "clients", meta,
            rows=len(page.rows),
        )  # fmt: skip
        return me, context

    me, context = await rt.in_db_thread(work)
    context.update(
        me=me,
        query=query,
        columns=cols,
        statuses={**STATUSES, **{f.key: f.label for f in extra}},
        can_invite=can(me, Permission.INVITE),
        can_export=can(me, Permission.EXPORT),
    )
    return render(request, "staff/board.html", context, block="results")


async def client_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.VIEW_CLIENTS)
    return await render_client_page(request, me)


async def render_client_page(
    request: Request, me: StaffAccount, extra: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """The client's page; `extra` reaches every section (a form's errors and entries)."""
    rt = runtime(request)
    enrollment_id = request.path_params["enrollment_id"][:32]
    secs = sections(rt)

    def work() -> dict[str, Any] | None:
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return None
            client = db.get(Client, enrollment.client_id)
            assert client is not None
            audit.record(
                db,
                Actor("staff", me.id),
                "client.viewed",
                "enrollment",
                enrollment.id,
                request_meta(request),
            )
            shown = [{"section": s, **s.context(db, enrollment, client)} for s in secs]
            events = db.exec(
                select(AuditEvent)
                .where(col(AuditEvent.enrollment_id) == enrollment.id)
                .order_by(col(AuditEvent.id).desc())
                .limit(TIMELINE_LIMIT)
            ).all()
            staff_names = {a.id: a.name for a in db.exec(select(StaffAccount))}
            return {
                "enrollment": enrollment,
                "client": client,
                "sections": shown,
                "timeline": [(event, _who(event.actor, staff_names)) for event in events],
                "practice": db.get(Practice, 1),
            }

    context = await run_in_threadpool(work)
    if context is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    context.update(
        me=me, statuses=STATUSES, permissions={p.value for p in Permission if can(me, p)}
    )
    context.update(extra or {})
    # Each section renders with the page's context plus what its own loader returned.
    env = rt.templates.env
    base = {
        **context,
        "request": request,
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
    }
    for shown in context["sections"]:
        template = env.get_template(shown["section"].template)
        shown["html"] = Markup(template.render({**base, **shown}))  # noqa: S704 (autoescaped)
    return render(request, "staff/client.html", context, status_code=status_code)


def therapists(db: Session) -> dict[str, str]:
    """Active therapists by id, for the board's filter and the invitation form."""
    rows = db.exec(
        select(StaffAccount)
        .where(col(StaffAccount.role) == Role.THERAPIST)
        .where(col(StaffAccount.disabled_at).is_(None))
        .order_by(col(StaffAccount.name))
    )
    return {row.id: row.name for row in rows}


def _who(actor: str, staff_names: dict[str, str]) -> str:
    kind, _, ident = actor.partition(":")
    if kind == "staff":
        return staff_names.get(ident, "staff")
    return {
        "client": "the client",
        "cli": "command line",
        "system": "the portal",
        "anonymous": "someone not signed in",
    }.get(kind, kind)


async def invite_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.INVITE)
    # A therapist inviting is preselected as the client's therapist.
    values = {"therapist": me.id if me.role == Role.THERAPIST else ""}
    context = {
        "me": me,
        "values": values,
        "errors": {},
        "therapists": await run_in_threadpool(_therapists, rt),
    }
    return render(request, "staff/invite.html", context)


def _therapists(rt: Runtime) -> dict[str, str]:
    with transaction(rt.engine, read_only=True) as db:
        return therapists(db)


async def invite(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.INVITE)
    try:
        form = await request.form(max_files=0, max_fields=20)
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
    except Exception:
        raw = {}
    name, name_error = clean_name(raw.get("name"), label="client's full name")
    email, email_error = clean_email(raw.get("email"))
    known = await run_in_threadpool(_therapists, rt)
    therapist = raw.get("therapist", "")
    therapist_error = (
        None if not therapist or therapist in known else "Choose a therapist from the list."
    )
    errors = {
        k: v
        for k, v in {"name": name_error, "email": email_error, "therapist": therapist_error}.items()
        if v
    }
    if errors:
        values = {"name": name, "email": email, "therapist": therapist}
        context = {"me": me, "values": values, "errors": errors, "therapists": known}
        return render(request, "staff/invite.html", context, status_code=422)

    def work() -> str:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            assert practice is not None
            enrollment, _ = invitations.invite(
                db,
                rt.services,
                practice,
                full_name=name,
                email=email,
                therapist_id=therapist or None,
                actor=Actor("staff", me.id),
                meta=request_meta(request),
                now=utcnow(),
            )
            return enrollment.id

    enrollment_id = await run_in_threadpool(work)
    rt.wake_mail()
    return RedirectResponse(f"/staff/clients/{enrollment_id}?invited=1", status_code=303)


routes = [
    Route("/staff/", board, methods=["GET"]),
    Route("/staff/clients/{enrollment_id:str}", client_page, methods=["GET"]),
    Route("/staff/invite", invite_page, methods=["GET"]),
    Route("/staff/invite", invite, methods=["POST"]),
]
