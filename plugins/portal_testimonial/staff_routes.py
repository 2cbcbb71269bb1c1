"""Staff recording a testimonial consent the client withdrew in person."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Enrollment, Practice
from portal.runtime import request_meta, runtime
from portal.staff.access import Permission, require
from portal.templating import render
from portal_testimonial.in_person import withdraw_in_person

NOT_CONFIRMED = "Tick the box to confirm the client withdrew their consent in person."
NOTHING = "The client never gave testimonial consent, so there is nothing to withdraw."
ALREADY = "There is no consent in force to withdraw: the decision is already No."


async def withdraw(request: Request) -> Response:
    rt = runtime(request)
    # Whoever the client tells at the practice records it: the front desk too.
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.RECORD_PAPER)
    enrollment_id = request.path_params["enrollment_id"][:32]
    try:
        async with request.form(max_files=0, max_fields=20) as form:
            confirmed = form.get("confirm") == "yes"
    except Exception:  # unreadable: treated as unconfirmed, and said so
        confirmed = False
    meta = request_meta(request)

    def work() -> tuple[str | None, Practice | None]:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return "missing", practice
            if not confirmed:
                return NOT_CONFIRMED, practice
            outcome = withdraw_in_person(
                db, enrollment, actor=Actor("staff", me.id), meta=meta, now=utcnow()
            )
            if outcome is None:
                return NOTHING, practice
            return (None if outcome.recorded else ALREADY), practice

    problem, practice = await run_in_threadpool(work)
    if problem == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    back = f"/staff/clients/{enrollment_id}"
    if problem:
        context = {"me": me, "problem": problem, "back": back, "practice": practice}
        return render(request, "testimonial/staff_problem.html", context, status_code=422)
    return RedirectResponse(f"{back}?testimonial_withdrawn=1#sec-testimonial", status_code=303)


routes = [
    Route("/staff/clients/{enrollment_id:str}/testimonial/withdraw", withdraw, methods=["POST"]),
]
