"""The admin's API keys page: keys for EHR systems, created (shown once), listed and revoked."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.api import keys
from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.runtime import Runtime, request_meta, runtime
from portal.staff.access import Permission, require
from portal.staff.models import StaffAccount
from portal.templating import render

PAGE = "/staff/admin/api-keys"
NOTICES = {
    "revoked": "Key revoked. Calls with it are refused from now on.",
    "already": "That key was revoked already.",
}


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    """Single fields, and the scope checkboxes (which repeat); never raises on bad bodies."""
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:
        return {}, []
    single = {k: v for k, v in form.items() if isinstance(v, str)}
    scopes = [v for v in form.getlist("scope") if isinstance(v, str)]
    return single, scopes


def _show(
    request: Request,
    rt: Runtime,
    me: StaffAccount,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    created: tuple[keys.ApiKey, str] | None = None,
    status_code: int = 200,
) -> Response:
    with transaction(rt.engine, read_only=True) as db:
        rows = keys.all_keys(db)
    context: dict[str, Any] = {
        "me": me,
        "keys": rows,
        "scope_labels": keys.SCOPE_LABELS,
        "errors": errors or {},
        "values": values or {"scopes": []},
        "created": created,
        "notice": None if errors else NOTICES.get(request.query_params.get("done", "")),
    }
    response = render(request, "staff/admin/api_keys.html", context, status_code=status_code)
    if created is not None:
        # The page carries a secret: no cache may keep it.
        response.headers["Cache-Control"] = "no-store"
    return response


async def keys_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    return await run_in_threadpool(_show, request, rt, me)


async def create_key(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    form, scopes = await _form(request)
    values = {"name": form.get("name", "")[:200], "scopes": scopes[:10]}
    errors: dict[str, str] = {}
    try:
        keys.clean_name(form.get("name"))
    except keys.ApiKeyError as exc:
        errors["name"] = str(exc)
    try:
        keys.clean_scopes(scopes)
    except keys.ApiKeyError as exc:
        errors["scope"] = str(exc)
    if errors:
        return await run_in_threadpool(
            _show, request, rt, me, errors=errors, values=values, status_code=422
        )
    meta = request_meta(request)

    def work() -> tuple[keys.ApiKey, str]:
        with transaction(rt.engine) as db:
            return keys.create(
                db,
                name=form.get("name", ""),
                scopes=scopes,
                actor=Actor("staff", me.id),
                meta=meta,
                now=utcnow(),
            )

    try:
        created = await run_in_threadpool(work)
    except keys.ApiKeyError as exc:
        return await run_in_threadpool(
            _show, request, rt, me, errors={"name": str(exc)}, values=values, status_code=422
        )
    # Shown on this response only (no redirect): the secret exists nowhere else.
    return await run_in_threadpool(_show, request, rt, me, created=created)


async def revoke_key(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    await _form(request)  # the body is read for the CSRF token only
    key_id = request.path_params["key_id"]
    meta = request_meta(request)

    def work() -> bool | None:
        with transaction(rt.engine) as db:
            key = db.get(keys.ApiKey, key_id[:32])
            if key is None:
                return None
            return keys.revoke(db, key, actor=Actor("staff", me.id), meta=meta, now=utcnow())

    changed = await run_in_threadpool(work)
    if changed is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return RedirectResponse(f"{PAGE}?done={'revoked' if changed else 'already'}", status_code=303)


routes = [
    Route(PAGE, keys_page, methods=["GET"]),
    Route(PAGE, create_key, methods=["POST"]),
    Route(f"{PAGE}/{{key_id:str}}/revoke", revoke_key, methods=["POST"]),
]
