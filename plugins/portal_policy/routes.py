"""The public policy page: practices link it from their website."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import transaction
from portal.models import Practice
from portal.runtime import runtime
from portal.templating import render
from portal_policy import service
from portal_policy.models import PolicyVersion


async def public_policy(request: Request) -> Response:
    rt = runtime(request)
    raw = request.path_params.get("version")
    number = int(raw) if isinstance(raw, int) else None
    if number is not None and not 1 <= number <= 2**31 - 1:
        return render(request, "errors/not_found.html", {}, status_code=404)

    def work() -> tuple[PolicyVersion | None, PolicyVersion | None, Practice | None]:
        with transaction(rt.engine, read_only=True) as db:
            latest = service.current(db)
            shown = latest if number is None else service.by_number(db, number)
            return shown, latest, db.get(Practice, 1)

    shown, latest, practice = await run_in_threadpool(work)
    if shown is None and number is not None:
        return render(request, "errors/not_found.html", {}, status_code=404)
    context = {"policy": shown, "latest": latest, "practice": practice}
    return render(request, "policy/public.html", context)


routes = [
    Route("/policy", public_policy, methods=["GET"]),
    Route("/policy/v/{version:int}", public_policy, methods=["GET"]),
]
