"""Every staff member's page for the staff policy: read the current version and attest to it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.db import transaction, utcnow
from portal.models import Practice
from portal.routes.staff_auth import small_form
from portal.runtime import Runtime, request_meta, runtime
from portal.settings import Settings
from portal.staff import attestations
from portal.staff.access import NotSignedIn, SecondFactorRequired, current_staff
from portal.staff.models import StaffAccount
from portal.templating import render

PAGE = "/staff/staff-policy"


def signed_in(engine: Engine, settings: Settings, request: Request) -> StaffAccount:
    """Any signed-in staff member, whatever the role (every role attests)."""
    account = current_staff(engine, settings, request)
    if account is None:
        raise NotSignedIn
    if request.state.staff_needs_totp:
        raise SecondFactorRequired
    return account


def _context(rt: Runtime, me: StaffAccount) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        version = attestations.current(db)
        latest = attestations.latest_attestation(db, me.id)
        return {
            "me": me,
            "practice": db.get(Practice, 1),
            "version": version,
            "latest": latest,
            "attested": latest
            if version and latest and latest.version == version.version
            else None,
            "statement": attestations.statement(version) if version else "",
            "errors": {},
            "values": {},
        }


async def staff_policy_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(signed_in, rt.engine, rt.settings, request)
    context = await run_in_threadpool(_context, rt, me)
    context["just_attested"] = request.query_params.get("attested") == "1"
    return render(request, "staff/staff_policy/page.html", context)


async def attest(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(signed_in, rt.engine, rt.settings, request)
    form = await small_form(request)
    typed = form.get("typed_name", "")[:500]
    meta = request_meta(request)

    def work() -> dict[str, str]:
        try:
            with transaction(rt.engine) as db:
                account = db.get(StaffAccount, me.id)
                assert account is not None
                attestations.attest(
                    db,
                    account,
                    version_number=form.get("version", "")[:12],
                    confirmed=form.get("confirm") == "yes",
                    typed_name=typed,
                    meta=meta,
                    now=utcnow(),
                )
        except attestations.AlreadyAttested:
            return {}  # sent twice (a double click): the first one counted
        except attestations.StaffPolicyError as exc:
            return {exc.field: str(exc)}
        return {}

    errors = await run_in_threadpool(work)
    if not errors:
        return RedirectResponse(f"{PAGE}?attested=1", status_code=303)
    context = await run_in_threadpool(_context, rt, me)
    context.update(
        errors=errors,
        values={"typed_name": " ".join(typed.split())[:120]},
        just_attested=False,
    )
    return render(request, "staff/staff_policy/page.html", context, status_code=422)


routes = [
    Route(PAGE, staff_policy_page, methods=["GET"]),
    Route(PAGE, attest, methods=["POST"]),
]
