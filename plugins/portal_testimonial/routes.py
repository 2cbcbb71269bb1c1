"""Withdrawing testimonial consent through the link in the client's receipt.

No client session is needed: the code is the capability. A GET only shows; mail scanners
open links, so the withdrawal itself is a POST from the confirm button.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import request_meta, runtime
from portal.templating import render
from portal_testimonial import service
from portal_testimonial.choices import decision_words, is_consent
from portal_testimonial.models import TestimonialDecision


def _describe(decision: TestimonialDecision) -> dict[str, Any]:
    # Only the choice and the date: the page shows no name, in case the link is forwarded.
    return {
        "consents": is_consent(decision.choice),
        "words": decision_words(decision.choice, decision.placements),
        "kind": decision.kind,
        "since": decision.created_at,
    }


def _unknown(request: Request, practice: Practice | None) -> Response:
    context = {"practice": practice, "decision": None}
    return render(request, "testimonial/withdraw.html", context, status_code=404)


async def show(request: Request) -> Response:
    rt = runtime(request)
    code = request.path_params["code"]

    def work() -> tuple[dict[str, Any] | None, Practice | None]:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            origin = service.by_code(db, code)
            if origin is None:
                return None, practice
            latest = service.current(db, origin.enrollment_id)
            return (_describe(latest) if latest else None), practice

    decision, practice = await run_in_threadpool(work)
    if decision is None:
        return _unknown(request, practice)
    context = {"practice": practice, "decision": decision, "action": request.url.path}
    return render(request, "testimonial/withdraw.html", context)


async def confirm(request: Request) -> Response:
    rt = runtime(request)
    code = request.path_params["code"]

    def work() -> tuple[dict[str, Any] | None, bool, Practice | None]:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            outcome = service.withdraw_outcome(db, code, request_meta(request), utcnow())
            if outcome is None:
                return None, False, practice
            return _describe(outcome.decision), outcome.recorded, practice

    decision, recorded, practice = await run_in_threadpool(work)
    if decision is None:
        return _unknown(request, practice)
    context = {"practice": practice, "decision": decision, "recorded": recorded}
    return render(request, "testimonial/withdrawn.html", context)


routes = [
    Route("/testimonial/withdraw/{code:str}", show, methods=["GET"]),
    Route("/testimonial/withdraw/{code:str}", confirm, methods=["POST"]),
]
