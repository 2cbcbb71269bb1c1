"""The admin's mail page: what is queued, sent and failing, and why; retry one or all."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import audit
from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.routes.staff_auth import small_form
from portal.runtime import request_meta, runtime
from portal.staff import mail_admin
from portal.staff.access import Permission, require
from portal.templating import render

PAGE = "/staff/admin/mail"
MAX_ID = 2**63 - 1


def _int(raw: str | None) -> int | None:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def _state(raw: str | None) -> str:
    return raw if raw in mail_admin.FILTERS else ""


async def mail_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.VIEW_MAIL)
    state = _state(request.query_params.get("status"))
    after = _int(request.query_params.get("after"))

    def work() -> dict[str, Any]:
        with transaction(rt.engine) as db:
            shown = mail_admin.page(db, state, after)
            # The list shows clients' addresses: looking at it is recorded like any other view.
            audit.record(
                db,
                Actor("staff", me.id),
                "mail.viewed",
                "outbox",
                "messages",
                request_meta(request),
                status=state or "all",
                rows=len(shown.rows),
            )
            return {
                "practice": db.get(Practice, 1),
                "page": shown,
                "counts": mail_admin.summary(db),
            }

    context = await run_in_threadpool(work)
    retried = request.query_params.get("retried", "")
    context.update(
        me=me,
        state=state,
        after=after,
        filters=mail_admin.FILTERS,
        retried=int(retried)
        if retried.isascii() and retried.isdigit() and len(retried) < 8
        else None,
        not_retried=request.query_params.get("not_retried") == "1",
    )
    return render(request, "staff/admin/mail.html", context)


async def retry_one(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.VIEW_MAIL)
    message_id = _int(request.path_params["message_id"])
    form = await small_form(request)
    back = _back(form)
    if message_id is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    meta = request_meta(request)

    def work() -> bool:
        with transaction(rt.engine) as db:
            return mail_admin.retry(
                db, message_id, actor=Actor("staff", me.id), meta=meta, now=utcnow()
            )

    if not await run_in_threadpool(work):
        return RedirectResponse(f"{back}&not_retried=1", status_code=303)
    rt.wake_mail()
    return RedirectResponse(f"{back}&retried=1", status_code=303)


async def retry_failed(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.VIEW_MAIL)
    form = await small_form(request)
    meta = request_meta(request)

    def work() -> int:
        with transaction(rt.engine) as db:
            return mail_admin.retry_all_failed(
                db, actor=Actor("staff", me.id), meta=meta, now=utcnow()
            )

    count = await run_in_threadpool(work)
    if count:
        rt.wake_mail()
    return RedirectResponse(f"{_back(form)}&retried={count}", status_code=303)


def _back(form: dict[str, str]) -> str:
    """The list the button was pressed on, rebuilt from known values only."""
    return f"{PAGE}?status={_state(form.get('status'))}"


routes = [
    Route(PAGE, mail_page, methods=["GET"]),
    Route(f"{PAGE}/retry-failed", retry_failed, methods=["POST"]),
    Route(f"{PAGE}/{{message_id:str}}/retry", retry_one, methods=["POST"]),
]
