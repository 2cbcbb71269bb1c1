"""The admin's policy page: practice details, the Markdown editor with its live preview and the
difference from the published version, publishing, and the re-acknowledgement campaign."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime, request_meta, runtime
from portal.staff.access import Permission, require
from portal.staff.models import StaffAccount
from portal.templating import is_htmx, render
from portal_policy import campaign_progress, draft, practice_form, service
from portal_policy.publishing import publish_new_version
from portal_policy.rendering import PLACEHOLDERS, PolicyTemplateError, default_policy_source

PAGE = "policy/staff_policy.html"
CONFIRM_MISSING = "Tick the box to confirm you reviewed the changes and want to publish them."


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=30)
    except Exception:  # a malformed body is shown as an empty form, never a 500
        return {}
    try:
        return {key[:50]: value for key, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()


async def _me(rt: Runtime, request: Request) -> StaffAccount:
    return await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.EDIT_POLICY)


def page_context(
    db: Session,
    *,
    source: str | None = None,
    details: dict[str, str] | None = None,
    details_errors: dict[str, str] | None = None,
    editor_errors: dict[str, str] | None = None,
    counts: bool = True,
) -> dict[str, Any]:
    """Everything the page shows; `counts=False` skips the client counts, which the live
    preview's fragment (sent as the admin types) does not show."""
    practice = db.get(Practice, 1)
    current = service.current(db)
    if source is None:
        source = current.source_markdown if current else default_policy_source()
    latest = campaign_progress.latest(db)
    return {
        "practice": practice,
        "current": current,
        "next_version": (current.version if current else 0) + 1,
        "draft": draft.evaluate(source, practice, current),
        "details": details if details is not None else practice_form.values_of(practice),
        "details_errors": details_errors or {},
        "detail_fields": practice_form.FIELDS,
        "editor_errors": editor_errors or {},
        "placeholders": sorted(PLACEHOLDERS),
        "would_ask": campaign_progress.signed_count(db) if current and counts else 0,
        "progress": (
            campaign_progress.progress(db, latest, _who(db, latest.started_by))
            if latest and counts
            else None
        ),
    }


def _who(db: Session, actor: str) -> str:
    kind, _, ident = actor.partition(":")
    if kind == "staff":
        account = db.get(StaffAccount, ident)
        return account.name if account else "a staff member"
    return "the command line" if kind == "cli" else "the portal"


async def policy_page(request: Request) -> Response:
    rt = runtime(request)
    me = await _me(rt, request)

    def work() -> dict[str, Any]:
        with transaction(rt.engine, read_only=True) as db:
            return page_context(db)

    context = await run_in_threadpool(work)
    context["me"] = me
    return render(request, PAGE, context)


async def save_details(request: Request) -> Response:
    rt = runtime(request)
    me = await _me(rt, request)
    values, errors = practice_form.clean(await _form(request))

    def work() -> dict[str, Any] | None:
        with transaction(rt.engine) as db:
            if errors:
                return page_context(db, details=values, details_errors=errors)
            practice_form.save(
                db,
                db.get(Practice, 1),
                values,
                actor=Actor("staff", me.id),
                meta=request_meta(request),
                now=utcnow(),
            )
            return None

    context = await run_in_threadpool(work)
    if context is None:
        return RedirectResponse("/staff/policy?saved=details#details", status_code=303)
    context["me"] = me
    return render(request, PAGE, context, status_code=422)


async def preview(request: Request) -> Response:
    """The live preview (an htmx fragment), or the whole page for the no-JavaScript button."""
    rt = runtime(request)
    me = await _me(rt, request)
    source = draft.normalise((await _form(request)).get("source", ""))
    fragment = is_htmx(request)

    def work() -> dict[str, Any]:
        with transaction(rt.engine, read_only=True) as db:
            return page_context(db, source=source, counts=not fragment)

    context = await run_in_threadpool(work)
    context["me"] = me
    return render(request, PAGE, context, block="preview")


async def publish(request: Request) -> Response:
    rt = runtime(request)
    me = await _me(rt, request)
    form = await _form(request)
    source = draft.normalise(form.get("source", ""))
    confirmed = form.get("confirm") == "yes"
    base_version = form.get("base_version", "")

    def work() -> tuple[int | None, dict[str, Any] | None]:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            current = service.current(db)
            errors = _publish_errors(draft.evaluate(source, practice, current), base_version)
            if not confirmed:
                errors["confirm"] = CONFIRM_MISSING
            if errors or practice is None:
                return None, page_context(db, source=source, editor_errors=errors)
            try:
                version, _ = publish_new_version(
                    db,
                    rt.services,
                    source,
                    practice,
                    actor=Actor("staff", me.id),
                    meta=request_meta(request),
                    now=utcnow(),
                )
            except PolicyTemplateError as exc:
                return None, page_context(db, source=source, editor_errors={"source": str(exc)})
            return version.version, None

    try:
        number, context = await run_in_threadpool(work)
    except IntegrityError:
        # Two admins published at the same moment: the version number is unique, one wins.
        number, context = None, await run_in_threadpool(_raced, rt, source)
    if context is not None:
        context["me"] = me
        return render(request, PAGE, context, status_code=422)
    rt.wake_mail()
    return RedirectResponse(f"/staff/policy?published={number}#campaign", status_code=303)


def _publish_errors(evaluated: draft.Draft, base_version: str) -> dict[str, str]:
    if evaluated.problem:
        return {"source": evaluated.problem}
    current = evaluated.changes.since_version if evaluated.changes else None
    if base_version != str(current or 0):
        return {
            "source": f"Version {current} was published while you were editing. "
            "Check the changes from it below, then publish again."
        }
    return {}


def _raced(rt: Runtime, source: str) -> dict[str, Any]:
    message = "Someone else published a version at the same moment. Check the changes, then retry."
    with transaction(rt.engine, read_only=True) as db:
        return page_context(db, source=source, editor_errors={"source": message})


routes = [
    Route("/staff/policy", policy_page, methods=["GET"]),
    Route("/staff/policy/details", save_details, methods=["POST"]),
    Route("/staff/policy/preview", preview, methods=["POST"]),
    Route("/staff/policy/publish", publish, methods=["POST"]),
]
