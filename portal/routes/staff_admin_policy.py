"""The admin's side of the staff policy: edit, preview, publish, and who has attested."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.routes.staff_auth import small_form
from portal.runtime import Runtime, request_meta, runtime
from portal.staff import attestations
from portal.staff.access import Permission, require
from portal.staff.models import ROLE_LABELS, StaffAccount
from portal.templating import render

PAGE = "/staff/admin/staff-policy"


def _context(rt: Runtime, me: StaffAccount, source: str | None) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        version = attestations.current(db)
        rows = attestations.roster(db, version)
        if source is None:
            source = version.source_markdown if version else attestations.default_source()
        return {
            "me": me,
            "practice": db.get(Practice, 1),
            "version": version,
            "roster": rows,
            "missing": [row for row in rows if row.attested is None],
            "roles": ROLE_LABELS,
            "source": source,
            "preview": None,
            "errors": {},
            "published": None,
        }


async def policy_admin(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    context = await run_in_threadpool(_context, rt, me, None)
    published = request.query_params.get("published", "")
    context["published"] = published if published.isdigit() and len(published) < 8 else None
    return render(request, "staff/admin/staff_policy.html", context)


async def policy_publish(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    form = await small_form(request)
    source = form.get("source", "")
    action = form.get("action", "")
    meta = request_meta(request)

    def work() -> tuple[Any, str | None]:
        """(what to show or the published version number, the refusal)."""
        try:
            with transaction(rt.engine) as db:
                practice = db.get(Practice, 1)
                if practice is None:
                    return None, "Fill in the practice's details first."
                if action == "preview":
                    return attestations.render(source, practice), None
                if action != "publish":
                    return None, "Choose Preview or Publish."
                version = attestations.publish(
                    db, source, practice, actor=Actor("staff", me.id), meta=meta, now=utcnow()
                )
                return version.version, None
        except attestations.StaffPolicyError as exc:
            return None, str(exc)

    result, problem = await run_in_threadpool(work)
    if action == "publish" and problem is None:
        return RedirectResponse(f"{PAGE}?published={result}", status_code=303)
    # A preview, or a refusal: the text comes back as typed (capped) so nothing is lost.
    context = await run_in_threadpool(_context, rt, me, source[: attestations.MAX_SOURCE + 1])
    context["preview"] = result
    if problem:
        context["errors"] = {"source": problem}
    return render(
        request, "staff/admin/staff_policy.html", context, status_code=422 if problem else 200
    )


routes = [
    Route(PAGE, policy_admin, methods=["GET"]),
    Route(PAGE, policy_publish, methods=["POST"]),
]
