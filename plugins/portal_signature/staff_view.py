"""Acknowledgements on the staff side: the board column, the client-page section, and the
therapist's countersignature."""

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
from portal_signature import esign, service
from portal_signature.models import Acknowledgement
from portal_signature.parties import role_label


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    current = policy_service.current(db)
    acks = db.exec(
        select(Acknowledgement).where(col(Acknowledgement.enrollment_id).in_(enrollment_ids))
    ).all()
    by_enrollment: dict[str, list[Acknowledgement]] = {}
    for ack in acks:
        by_enrollment.setdefault(ack.enrollment_id, []).append(ack)
    cells: dict[str, Cell] = {}
    for enrollment_id in enrollment_ids:
        signed = (
            service.latest_signed(db, enrollment_id) if enrollment_id in by_enrollment else None
        )
        if signed is None:
            cells[enrollment_id] = Cell("Not signed", "missing")
        elif current is not None and signed.ack.policy_version < current.version:
            cells[enrollment_id] = Cell(
                f"Must re-acknowledge: signed v{signed.ack.policy_version}, "
                f"current v{current.version}",
                "warn",
            )
        elif signed.countersignature_pending:
            cells[enrollment_id] = Cell(
                f"Signed v{signed.ack.policy_version}; countersignature pending", "warn"
            )
        else:
            cells[enrollment_id] = Cell(f"Signed v{signed.ack.policy_version}, countersigned", "ok")
    return cells


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    state = service.latest_signed(db, enrollment.id) or service.latest(db, enrollment.id)
    current = policy_service.current(db)
    return {
        "ack_state": state,
        "ack_signatures": [
            (role_label(slot.role, slot.relationship), signature)
            for slot, signature in (state.signatures() if state else [])
        ],
        "ack_outdated": bool(state and current and state.ack.policy_version < current.version),
        "current_policy": current,
    }


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
