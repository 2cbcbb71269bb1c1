"""The admin's staff page: accounts, roles, disabling, and requiring two-step sign-in."""

from __future__ import annotations

from functools import partial
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
from portal.staff import accounts, passwords
from portal.staff.access import Permission, require
from portal.staff.models import ROLE_LABELS, Role, StaffAccount
from portal.templating import render
from portal.validation import clean_email, clean_name

PAGE = "/staff/admin/staff"
# Success notices by key: the page never echoes text from the URL.
NOTICES = {
    "created": "Account created. Give the person their initial password in person or by phone.",
    "role": "Role changed.",
    "same_role": "That account already has that role.",
    "disabled": "Account disabled. Its sessions have ended.",
    "enabled": "Account enabled. The person can sign in again.",
    "totp_on": "Two-step sign-in is now required for every staff account.",
    "totp_off": "Two-step sign-in is now optional.",
}


def _page_context(rt: Runtime, me: StaffAccount) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        return {
            "me": me,
            "practice": db.get(Practice, 1),
            "accounts": accounts.all_accounts(db),
            "last_sign_ins": accounts.last_sign_ins(db),
        }


def _show(
    request: Request,
    rt: Runtime,
    me: StaffAccount,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = _page_context(rt, me)
    notice = NOTICES.get(request.query_params.get("done", ""))
    context.update(
        errors=errors or {},
        values=values or {},
        roles=ROLE_LABELS,
        notice=None if errors else notice,
    )
    return render(request, "staff/admin/accounts.html", context, status_code=status_code)


async def accounts_page(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    return await run_in_threadpool(_show, request, rt, me)


def _check_new_account(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Every problem with the add-account form at once (accounts.create stops at the first)."""
    name, name_error = clean_name(form.get("name"), label="name")
    email, email_error = clean_email(form.get("email"))
    role = form.get("role", "")
    role_error = None if role in {r.value for r in Role} else "Choose a role."
    password = form.get("password", "")
    password_error = (
        passwords.problem(password, email=email, name=name)
        if password
        else "Choose an initial password (at least 12 characters)."
    )
    errors = {
        key: message
        for key, message in {
            "name": name_error,
            "email": email_error,
            "role": role_error,
            "password": password_error,
        }.items()
        if message
    }
    return errors, {"name": name, "email": email, "role": role if not role_error else ""}


async def create_account(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    form = await small_form(request)
    errors, values = _check_new_account(form)
    meta = request_meta(request)

    def work() -> dict[str, str]:
        try:
            with transaction(rt.engine) as db:
                accounts.create(
                    db,
                    email=values["email"],
                    name=values["name"],
                    role=values["role"],
                    password=form.get("password", ""),
                    actor=Actor("staff", me.id),
                    meta=meta,
                    now=utcnow(),
                )
        except accounts.AccountError as exc:
            return {exc.field: str(exc)}
        return {}

    if not errors:
        errors = await run_in_threadpool(work)
    if errors:
        return await run_in_threadpool(
            partial(_show, request, rt, me, errors=errors, values=values, status_code=422)
        )
    return RedirectResponse(f"{PAGE}?done=created", status_code=303)


async def change_role(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    account_id = request.path_params["account_id"][:32]
    form = await small_form(request)
    role = form.get("role", "")[:40]
    meta = request_meta(request)

    def work() -> str:
        with transaction(rt.engine) as db:
            account = db.get(StaffAccount, account_id)
            if account is None:
                return "missing"
            changed = accounts.set_role(
                db, account, role, actor=Actor("staff", me.id), meta=meta, now=utcnow()
            )
            return "role" if changed else "same_role"

    return await _act(request, rt, me, work, demoted_self=account_id == me.id)


async def change_disabled(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    account_id = request.path_params["account_id"][:32]
    form = await small_form(request)
    disable = form.get("disabled") == "yes"
    meta = request_meta(request)

    def work() -> str:
        with transaction(rt.engine) as db:
            account = db.get(StaffAccount, account_id)
            if account is None:
                return "missing"
            if disable == (not account.active):
                return "disabled" if disable else "enabled"  # already so: nothing to record
            if disable and account.id != me.id:  # disabling oneself is refused anyway
                accounts.ensure_an_admin_remains(db, account, disabling=True)
            accounts.set_disabled(
                db, account, disable, actor=Actor("staff", me.id), meta=meta, now=utcnow()
            )
            return "disabled" if disable else "enabled"

    return await _act(request, rt, me, work)


async def require_totp(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.MANAGE_STAFF)
    form = await small_form(request)
    required = form.get("required") == "on"
    meta = request_meta(request)

    def work() -> str:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            if practice is None:
                raise accounts.AccountError("Fill in the practice's details first.")
            if required and not me.totp_secret:
                # Otherwise the next page would send the admin to set it up, mid-task.
                raise accounts.AccountError(
                    "Turn on two-step sign-in for your own account first (My account), "
                    "then require it for everyone."
                )
            accounts.set_require_totp(
                db, practice, required, actor=Actor("staff", me.id), meta=meta
            )
            return "totp_on" if required else "totp_off"

    return await _act(request, rt, me, work)


async def _act(
    request: Request, rt: Runtime, me: StaffAccount, work: Any, *, demoted_self: bool = False
) -> Response:
    """Run a change; answer with the page and the reason when it is refused."""
    try:
        outcome = await run_in_threadpool(work)
    except accounts.AccountError as exc:
        errors = {"__all__": str(exc)}
        return await run_in_threadpool(
            partial(_show, request, rt, me, errors=errors, status_code=422)
        )
    if outcome == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    if demoted_self and outcome == "role":
        # The admin gave up their own admin role: the admin pages are no longer theirs.
        return RedirectResponse("/staff/", status_code=303)
    return RedirectResponse(f"{PAGE}?done={outcome}", status_code=303)


routes = [
    Route(PAGE, accounts_page, methods=["GET"]),
    Route(PAGE, create_account, methods=["POST"]),
    Route(f"{PAGE}/totp", require_totp, methods=["POST"]),
    Route(f"{PAGE}/{{account_id:str}}/role", change_role, methods=["POST"]),
    Route(f"{PAGE}/{{account_id:str}}/disabled", change_disabled, methods=["POST"]),
]
