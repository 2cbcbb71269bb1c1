"""Acknowledgements on the staff side: the board column, the client-page section, and the
therapist's countersignature. Paper acknowledgements count as signed here (see `paper`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import request_meta, runtime
from portal.staff.access import Permission, require
from portal.staff.board import Cell
from portal.templating import render
from portal_policy import service as policy_service
from portal_policy.models import PolicyVersion
from portal_signature import discussion, esign, paper, service
from portal_signature.parties import role_label


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    current = policy_service.current_number(db)
    latest_signed = service.latest_signed_summaries(db, enrollment_ids)
    on_paper = paper.newest_versions(db, enrollment_ids)
    cells: dict[str, Cell] = {}
    for enrollment_id in enrollment_ids:
        signed = latest_signed.get(enrollment_id)
        sheet = on_paper.get(enrollment_id)
        # Whichever covers the newer policy version counts; online wins a tie.
        if sheet is not None and (signed is None or sheet > signed.policy_version):
            cells[enrollment_id] = _cell(sheet, current, "on paper", None)
        elif signed is not None:
            cells[enrollment_id] = _cell(
                signed.policy_version, current, "", signed.countersignature_pending
            )
        else:
            cells[enrollment_id] = Cell("Not signed", "missing")
    return cells


def _cell(version: int, current: int | None, how: str, countersign_pending: bool | None) -> Cell:
    signed = f"Signed v{version}" + (f" {how}" if how else "")
    if current is not None and version < current:
        return Cell(f"Must re-acknowledge: signed v{version}, current v{current}", "warn")
    if countersign_pending:
        return Cell(f"{signed}; countersignature pending", "warn")
    if countersign_pending is None:
        return Cell(signed, "ok")
    return Cell(f"{signed}, countersigned", "ok")


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    state = service.latest_signed(db, enrollment.id) or service.latest(db, enrollment.id)
    current = policy_service.current(db)
    papers = paper.for_enrollment(db, enrollment.id)
    signed_versions = [p.row.policy_version for p in papers]
    if state is not None and state.complete:
        signed_versions.append(state.ack.policy_version)
    best = max(signed_versions, default=None)
    return {
        "ack_state": state,
        "ack_signatures": [
            (role_label(slot.role, slot.relationship), signature)
            for slot, signature in (state.signatures() if state else [])
        ],
        "ack_signed_version": best,
        "ack_outdated": bool(best is not None and current and best < current.version),
        "current_policy": current,
        "paper_records": papers,
        "policy_discussions": discussion.for_enrollment(db, enrollment.id),
        "policy_versions": published_versions(db),
    }


def published_versions(db: Session) -> list[tuple[int, str]]:
    """(version, title), newest first, for the staff forms' version choice."""
    rows = db.exec(
        select(PolicyVersion.version, PolicyVersion.title).order_by(
            col(PolicyVersion.version).desc()
        )
    ).all()
    return [(version, title) for version, title in rows]


async def countersign(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.COUNTERSIGN)
    enrollment_id = request.path_params["enrollment_id"][:32]
    try:
        form = await request.form(max_files=0, max_fields=20)
        typed = " ".join(str(form.get("typed_name", ""))[:200].split())
        confirmed = form.get("confirm") == "yes"
    except Exception:
        typed, confirmed = "", False
    meta = request_meta(request)

    def work() -> str | None:
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return "missing"
            state = service.latest_signed(db, enrollment.id)
            if state is None or state.therapist_slot is None:
                return "The client has not signed yet, so there is nothing to countersign."
            if not state.countersignature_pending:
                return "Already countersigned."
            if enrollment.therapist_id and enrollment.therapist_id != me.id and me.role != "admin":
                return "Only the client's own therapist (or the practice admin) can countersign."
            if not confirmed:
                return "Tick the box to confirm you countersign this acknowledgement."
            if typed.casefold() != me.name.casefold():
                return f"Type your name exactly as your account has it: {me.name}"
            policy = db.get(PolicyVersion, state.ack.policy_version_id)
            practice = db.get(Practice, 1)
            assert policy is not None and practice is not None
            try:
                service.sign(
                    db,
                    state,
                    state.therapist_slot,
                    policy,
                    typed_name=typed,
                    disclosure=esign.disclosure(practice),
                    actor=Actor("staff", me.id),
                    meta=meta,
                    now=utcnow(),
                )
            except service.AlreadySigned:
                return "Already countersigned."
            return None

    problem = await run_in_threadpool(work)
    if problem == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    target = f"/staff/clients/{enrollment_id}"
    if problem:
        context = {"me": me, "problem": problem, "back": target}
        return render(request, "signature/countersign_problem.html", context, status_code=422)
    return RedirectResponse(f"{target}?countersigned=1", status_code=303)


routes = [
    Route("/staff/clients/{enrollment_id:str}/countersign", countersign, methods=["POST"]),
]
