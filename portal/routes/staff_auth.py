"""Staff sign-in (password, then an optional one-time code), sign-out and own account."""

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
from portal.runtime import Runtime, request_meta, runtime
from portal.staff import accounts, passwords, sessions, throttle, totp
from portal.staff.access import NotSignedIn, current_staff
from portal.staff.models import StaffAccount
from portal.templating import render
from portal.tokens import Purpose, TokenError

DEVICE_COOKIE = "portal_staff_device"
DEVICE_DAYS = 90
TOTP_SECONDS = 300
BAD_LOGIN = "That email and password don't match an active staff account."


def safe_next(value: str | None) -> str:
    """Only ever redirect within the staff side (no open redirect)."""
    if value and value.startswith("/staff/") and "//" not in value and "\\" not in value:
        return value[:500]
    return "/staff/"


async def small_form(request: Request) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:
        return {}
    # A NUL is never typed, and PostgreSQL text cannot hold one: such a field counts as not sent
    # (a look-up with it, as sign-in makes before any validation, would be a 500).
    return {k: v for k, v in form.items() if isinstance(v, str) and "\x00" not in k + v}


def known_accounts(rt: Runtime, request: Request) -> set[str]:
    raw = request.cookies.get(DEVICE_COOKIE, "")
    if not raw:
        return set()
    try:
        data = rt.tokens.verify(Purpose.STAFF_DEVICE, raw, DEVICE_DAYS * 86400)
    except TokenError:
        return set()
    ids = data.get("a", [])
    return {str(i) for i in ids} if isinstance(ids, list) else set()


def _signed_in(rt: Runtime, request: Request, key: str, account_id: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    secure = rt.settings.secure_cookies
    response.set_cookie(
        sessions.COOKIE, key, httponly=True, secure=secure, samesite="strict", path="/"
    )
    known = sorted(known_accounts(rt, request) | {account_id})[-10:]
    response.set_cookie(
        DEVICE_COOKIE,
        rt.tokens.sign(Purpose.STAFF_DEVICE, {"a": known}),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    return response


async def login_page(request: Request) -> Response:
    context = {"values": {"next": safe_next(request.query_params.get("next"))}, "errors": {}}
    return render(request, "staff/login.html", context)


async def login(request: Request) -> Response:
    rt = runtime(request)
    form = await small_form(request)
    email = form.get("email", "").strip()[:254]
    password = form.get("password", "")
    target = safe_next(form.get("next"))
    meta = request_meta(request)
    known = known_accounts(rt, request)

    def work() -> tuple[str, Any]:
        with transaction(rt.engine) as db:
            now = utcnow()
            account = accounts.by_email(db, email) if email else None
            verdict = throttle.check(
                db,
                email=email,
                ip=meta.ip,
                now=now,
                known_device=account is not None and account.id in known,
            )
            if not verdict.allowed:
                return "throttled", verdict.retry_after_seconds
            ok = passwords.verify(account.password_hash if account else None, password)
            if account is None or not ok or not account.active:
                throttle.record_failure(db, email=email, ip=meta.ip, now=now)
                audit.record(
                    db,
                    Actor("anonymous", meta.ip or "unknown"),
                    "staff.sign_in_failed",
                    "staff_account",
                    account.id if account else "unknown",
                    meta,
                )
                return "failed", None
            if passwords.needs_rehash(account.password_hash):
                account.password_hash = passwords.hash_password(password)
                db.add(account)
            if account.totp_secret:
                # "s": the last code step used; a sign-in moves it, so the token works once.
                payload = {"a": account.id, "s": account.totp_last_step}
                token = rt.tokens.sign(Purpose.STAFF_TOTP, payload)
                return "totp", token
            return "ok", _start(db, rt, request, account, meta)

    kind, payload = await run_in_threadpool(work)
    if kind == "throttled":
        minutes = max(1, round(payload / 60))
        context = {
            "values": {"email": email, "next": target},
            "errors": {
                "__all__": f"Too many failed sign-ins. Try again in about "
                f"{minutes} minute{'s' if minutes != 1 else ''}."
            },
        }
        return render(
            request,
            "staff/login.html",
            context,
            status_code=429,
            headers={"Retry-After": str(payload)},
        )
    if kind == "failed":
        context = {"values": {"email": email, "next": target}, "errors": {"__all__": BAD_LOGIN}}
        return render(request, "staff/login.html", context, status_code=401)
    if kind == "totp":
        return render(request, "staff/totp.html", {"token": payload, "next": target, "errors": {}})
    key, account_id = payload
    return _signed_in(rt, request, key, account_id, target)


def _start(
    db: Any, rt: Runtime, request: Request, account: StaffAccount, meta: Any
) -> tuple[str, str]:
    # Whatever session this browser brought ends here: after a sign-in only the new key works
    # (no session fixation, and no earlier account left signed in underneath).
    sessions.end(db, request.cookies.get(sessions.COOKIE), utcnow(), "replaced")
    key = sessions.start(db, account, meta, utcnow(), rt.settings.staff_absolute_hours)
    audit.record(
        db, Actor("staff", account.id), "staff.signed_in", "staff_account", account.id, meta
    )
    return key, account.id


async def login_code(request: Request) -> Response:
    rt = runtime(request)
    form = await small_form(request)
    token, code = form.get("token", "")[:512], form.get("code", "")[:20]
    target = safe_next(form.get("next"))
    meta = request_meta(request)

    def work() -> tuple[str, Any]:
        try:
            data = rt.tokens.verify(Purpose.STAFF_TOTP, token, TOTP_SECONDS)
        except TokenError:
            return "expired", None
        with transaction(rt.engine) as db:
            now = utcnow()
            account = db.get(StaffAccount, str(data.get("a", "")))
            if account is None or not account.active:
                return "expired", None
            if data.get("s") != account.totp_last_step:  # replayed after a sign-in
                return "expired", None
            verdict = throttle.check(
                db, email=account.email, ip=meta.ip, now=now, known_device=False
            )
            if not verdict.allowed:
                return "expired", None
            if not accounts.accept_code(db, account, code, now):
                throttle.record_failure(db, email=account.email, ip=meta.ip, now=now)
                audit.record(
                    db,
                    Actor("staff", account.id),
                    "staff.code_failed",
                    "staff_account",
                    account.id,
                    meta,
                )
                return "wrong", None
            return "ok", _start(db, rt, request, account, meta)

    kind, payload = await run_in_threadpool(work)
    context: dict[str, Any]
    if kind == "expired":
        context = {
            "values": {"next": target},
            "errors": {
                "__all__": "That took too long, or too many codes were wrong. Please sign in again."
            },
        }
        return render(request, "staff/login.html", context, status_code=401)
    if kind == "wrong":
        context = {
            "token": token,
            "next": target,
            "errors": {"code": "That code isn't right. Use the newest code in your app."},
        }
        return render(request, "staff/totp.html", context, status_code=401)
    key, account_id = payload
    return _signed_in(rt, request, key, account_id, target)


async def logout(request: Request) -> Response:
    rt = runtime(request)

    def work() -> None:
        with transaction(rt.engine) as db:
            now = utcnow()
            active = sessions.lookup(
                db, request.cookies.get(sessions.COOKIE), now, rt.settings.staff_idle_minutes
            )
            if active is not None:
                sessions.end(db, request.cookies.get(sessions.COOKIE), now)
                audit.record(
                    db,
                    Actor("staff", active.account.id),
                    "staff.signed_out",
                    "staff_account",
                    active.account.id,
                    request_meta(request),
                )

    await run_in_threadpool(work)
    response = RedirectResponse("/staff/login?signed_out=1", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


async def account_page(request: Request) -> Response:
    rt = runtime(request)
    account = await run_in_threadpool(current_staff, rt.engine, rt.settings, request)
    if account is None:
        raise NotSignedIn
    return render(request, "staff/account.html", _account_context(rt, account, {}, {}))


def _account_context(
    rt: Runtime, account: StaffAccount, errors: dict[str, str], values: dict[str, str]
) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        practice = db.get(Practice, 1)
    secret = values.get("secret") or totp.new_secret()
    return {
        "me": account,
        "practice": practice,
        "errors": errors,
        "values": values,
        "totp_secret": secret,
        "totp_uri": totp.provisioning_uri(secret, account.email, practice.name if practice else ""),
    }


async def account_submit(request: Request) -> Response:
    rt = runtime(request)
    form = await small_form(request)
    action = form.get("action", "")
    meta = request_meta(request)
    account = await run_in_threadpool(current_staff, rt.engine, rt.settings, request)
    if account is None:
        raise NotSignedIn

    def work() -> tuple[str, dict[str, str]]:
        try:
            with transaction(rt.engine) as db:
                me = db.get(StaffAccount, account.id)
                assert me is not None
                now = utcnow()
                if action == "password":
                    if form.get("new_password", "") != form.get("repeat_password", ""):
                        return "error", {"repeat_password": "The two new passwords differ."}
                    accounts.change_password(
                        db,
                        me,
                        current=form.get("current_password", ""),
                        new=form.get("new_password", ""),
                        meta=meta,
                        now=now,
                    )
                    return "password", {}
                if action == "totp":
                    accounts.enable_totp(
                        db,
                        me,
                        form.get("secret", "")[:64],
                        form.get("code", ""),
                        meta=meta,
                        now=now,
                    )
                    return "totp", {}
                return "error", {"__all__": "Unknown action."}
        except accounts.AccountError as exc:
            return "error", {exc.field: str(exc)}

    kind, errors = await run_in_threadpool(work)
    if kind == "password":
        # The change ended every session; sign in again with the new password.
        response = RedirectResponse("/staff/login?password_changed=1", status_code=303)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response
    if kind == "totp":
        return RedirectResponse("/staff/account?totp=on", status_code=303)
    values = {"secret": form.get("secret", "")[:64]} if action == "totp" else {}
    context = await run_in_threadpool(_account_context, rt, account, errors, values)
    return render(request, "staff/account.html", context, status_code=422)


routes = [
    Route("/staff/login", login_page, methods=["GET"]),
    Route("/staff/login", login, methods=["POST"]),
    Route("/staff/login/code", login_code, methods=["POST"]),
    Route("/staff/logout", logout, methods=["POST"]),
    Route("/staff/account", account_page, methods=["GET"]),
    Route("/staff/account", account_submit, methods=["POST"]),
]
