"""The admin's webhooks page: endpoints added (secret shown once), watched, retried, disabled."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.runtime import Runtime, request_meta, runtime
from portal.staff.access import Permission, require
from portal.staff.models import StaffAccount
from portal.templating import render
from portal.webhooks import admin
from portal.webhooks.models import WebhookEndpoint

PAGE = "/staff/admin/webhooks"
NOTICES = {
    "disabled": "Webhook disabled. Nothing more is sent to it.",
    "already": "That webhook was disabled already.",
    "retry": "It will be tried again within a few seconds.",
    "not-failing": "That webhook is not failing: nothing to retry.",
}


async def _form(request: Request) -> dict[str, str]:
    """The form's fields; never raises on bad bodies."""
    try:
        form = await request.form(max_files=0, max_fields=10)
    except Exception:
        return {}
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _show(
    request: Request,
    rt: Runtime,
    me: StaffAccount,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    secret: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with transaction(rt.engine, read_only=True) as db:
        rows = admin.all_endpoints(db)
    context: dict[str, Any] = {
        "me": me,
        "endpoints": rows,
        "errors": errors or {},
        "values": values or {},
        "secret": secret,  # (endpoint name, secret) right after adding or rotating
        "notice": None if errors else NOTICES.get(request.query_params.get("done", "")),
    }
    response = render(request, "staff/admin/webhooks.html", context, status_code=status_code)
    if secret is not None:
        response.headers["Cache-Control"] = "no-store"  # the page carries a secret
    return response


async def webhooks_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    return await run_in_threadpool(_show, request, rt, me)


async def add_webhook(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    form = await _form(request)
    values = {"url": form.get("url", "")[:2100], "name": form.get("name", "")[:200]}
    errors = _check(values, allow_any_http=rt.settings.demo)
    if errors:
        return await run_in_threadpool(
            _show, request, rt, me, errors=errors, values=values, status_code=422
        )
    meta = request_meta(request)

    def work() -> tuple[str, str]:
        with transaction(rt.engine) as db:
            endpoint, secret = admin.create(
                db, url=values["url"], name=values["name"], actor=Actor("staff", me.id),
                meta=meta, now=utcnow(), allow_any_http=rt.settings.demo,
            )  # fmt: skip
            return endpoint.name, secret

    try:
        created = await run_in_threadpool(work)
    except admin.WebhookError as exc:  # the name is taken
        return await run_in_threadpool(
            _show, request, rt, me, errors={"name": str(exc)}, values=values, status_code=422
        )
    # Shown on this response only (no redirect): the secret is not shown again.
    return await run_in_threadpool(_show, request, rt, me, secret=created)


def _check(values: dict[str, str], *, allow_any_http: bool) -> dict[str, str]:
    """Each field's problem, next to the field."""
    try:
        url = admin.clean_url(values["url"], allow_any_http=allow_any_http)
    except admin.WebhookError as exc:
        return {"url": str(exc)}
    try:
        admin.clean_name(values["name"], url)
    except admin.WebhookError as exc:
        return {"name": str(exc)}
    return {}


def _act(request: Request) -> tuple[Runtime, str]:
    return runtime(request), request.path_params["endpoint_id"][:32]


async def disable_webhook(request: Request) -> Response:
    rt, endpoint_id = _act(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    await _form(request)  # the body is read for the CSRF token only
    meta = request_meta(request)

    def work() -> bool | None:
        with transaction(rt.engine) as db:
            endpoint = db.get(WebhookEndpoint, endpoint_id)
            if endpoint is None:
                return None
            return admin.disable(db, endpoint, actor=Actor("staff", me.id), meta=meta, now=utcnow())

    changed = await run_in_threadpool(work)
    if changed is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return RedirectResponse(f"{PAGE}?done={'disabled' if changed else 'already'}", status_code=303)


async def retry_webhook(request: Request) -> Response:
    rt, endpoint_id = _act(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    await _form(request)
    meta = request_meta(request)

    def work() -> bool | None:
        with transaction(rt.engine) as db:
            endpoint = db.get(WebhookEndpoint, endpoint_id)
            if endpoint is None:
                return None
            actor = Actor("staff", me.id)
            return admin.retry_now(db, endpoint, actor=actor, meta=meta, now=utcnow())

    changed = await run_in_threadpool(work)
    if changed is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return RedirectResponse(f"{PAGE}?done={'retry' if changed else 'not-failing'}", status_code=303)


async def rotate_webhook_secret(request: Request) -> Response:
    rt, endpoint_id = _act(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    await _form(request)
    meta = request_meta(request)

    def work() -> tuple[str, str] | None:
        with transaction(rt.engine) as db:
            endpoint = db.get(WebhookEndpoint, endpoint_id)
            if endpoint is None:
                return None
            actor = Actor("staff", me.id)
            secret = admin.rotate_secret(db, endpoint, actor=actor, meta=meta, now=utcnow())
            return endpoint.name, secret

    try:
        rotated = await run_in_threadpool(work)
    except admin.WebhookError as exc:
        return await run_in_threadpool(
            _show, request, rt, me, errors={"endpoint": str(exc)}, status_code=409
        )
    if rotated is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return await run_in_threadpool(_show, request, rt, me, secret=rotated)


routes = [
    Route(PAGE, webhooks_page, methods=["GET"]),
    Route(PAGE, add_webhook, methods=["POST"]),
    Route(f"{PAGE}/{{endpoint_id:str}}/disable", disable_webhook, methods=["POST"]),
    Route(f"{PAGE}/{{endpoint_id:str}}/retry", retry_webhook, methods=["POST"]),
    Route(f"{PAGE}/{{endpoint_id:str}}/rotate", rotate_webhook_secret, methods=["POST"]),
]
