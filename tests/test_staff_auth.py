"""Staff sign-in: roles, second factor, throttling, and sessions that really end."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
import pytest
from helpers import STAFF_PASSWORD, make_staff, post_form, staff_sign_in
from sqlalchemy import update
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime
from portal.staff import throttle
from portal.staff.models import StaffAccount, StaffSession


def test_nobody_without_a_session_sees_the_staff_side(client: TestClient) -> None:
    for path in ["/staff/", "/staff/clients/abc", "/staff/invite", "/staff/account"]:
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/staff/login")


def test_sign_in_and_out(client: TestClient, rt: Runtime) -> None:
    email = make_staff(rt)
    response = staff_sign_in(client, email)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert client.get("/staff/").status_code == 200
    key = client.cookies["portal_staff"]
    assert post_form(client, "/staff/logout", {}).status_code == 303
    # The old cookie no longer works, even if someone kept it.
    client.cookies.set("portal_staff", key)
    assert client.get("/staff/").status_code == 303


def test_wrong_password_is_refused_without_saying_which_part(
    client: TestClient, rt: Runtime
) -> None:
    email = make_staff(rt)
    wrong = staff_sign_in(client, email, "not the password")
    unknown = staff_sign_in(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "don&#39;t match" in wrong.text and "don&#39;t match" in unknown.text
    assert 'value="nobody@example.com"' in unknown.text  # entries kept
    with transaction(rt.engine) as db:
        failures = db.exec(select(AuditEvent).where(AuditEvent.action == "staff.sign_in_failed"))
        assert all("nobody@example.com" not in str(e.model_dump()) for e in failures)


def test_session_cookie_is_secure_over_https(settings, mail) -> None:  # type: ignore[no-untyped-def]
    from portal.app import create_app

    app = create_app(settings.model_copy(update={"base_url": "https://portal.example"}))
    rt = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(name="Harbor Light Counseling"))
    email = make_staff(rt)
    with TestClient(app, base_url="https://portal.example", follow_redirects=False) as client:
        client.get("/staff/login")
        response = post_form_https(client, email)
        assert "Secure" in response.headers["set-cookie"]
        assert "strict-transport-security" in response.headers
    rt.engine.dispose()


def post_form_https(client: TestClient, email: str):  # type: ignore[no-untyped-def]
    token = client.cookies["__Host-portal_csrf"]
    return client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": STAFF_PASSWORD}
    )


def test_password_change_ends_every_session(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    email = make_staff(rt)
    other = TestClient(app, base_url="http://testserver", follow_redirects=False)
    staff_sign_in(other, email)
    staff_sign_in(client, email)
    new = "a much better passphrase 42"
    response = post_form(
        client,
        "/staff/account",
        {
            "action": "password",
            "current_password": STAFF_PASSWORD,
            "new_password": new,
            "repeat_password": new,
        },
    )
    assert response.headers["location"] == "/staff/login?password_changed=1"
    assert other.get("/staff/").status_code == 303
    assert client.get("/staff/").status_code == 303
    assert staff_sign_in(client, email, new).status_code == 303


def test_weak_new_password_is_refused_and_nothing_changes(client: TestClient, rt: Runtime) -> None:
    email = make_staff(rt)
    staff_sign_in(client, email)
    response = post_form(
        client,
        "/staff/account",
        {
            "action": "password",
            "current_password": STAFF_PASSWORD,
            "new_password": "short",
            "repeat_password": "short",
        },
    )
    assert response.status_code == 422 and "at least 12 characters" in response.text
    assert client.get("/staff/").status_code == 200


def test_disabling_an_account_ends_its_sessions_at_once(client: TestClient, rt: Runtime) -> None:
    from portal.audit import Actor, RequestMeta
    from portal.staff import accounts

    email = make_staff(rt)
    staff_sign_in(client, email)
    assert client.get("/staff/").status_code == 200
    with transaction(rt.engine) as db:
        account = accounts.by_email(db, email)
        assert account is not None
        accounts.set_disabled(
            db, account, True, actor=Actor("staff", "admin"), meta=RequestMeta(), now=utcnow()
        )
    assert client.get("/staff/").status_code == 303
    assert staff_sign_in(client, email).status_code == 401


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_timeouts(client: TestClient, rt: Runtime, column: str) -> None:
    email = make_staff(rt)
    staff_sign_in(client, email)
    past = utcnow() - timedelta(hours=13)
    with transaction(rt.engine) as db:
        db.execute(update(StaffSession).values({column: past}))
    assert client.get("/staff/").status_code == 303
    with transaction(rt.engine) as db:
        reasons = {row.ended_reason for row in db.exec(select(StaffSession))}
    assert reasons == {"idle_timeout" if column == "last_seen_at" else "absolute_timeout"}


def test_a_session_is_touched_at_most_once_a_minute(client: TestClient, rt: Runtime) -> None:
    """Pages read the session without writing; a minute on, one request moves last-seen."""
    email = make_staff(rt)
    staff_sign_in(client, email)

    def last_seen() -> datetime:
        with transaction(rt.engine) as db:
            return db.exec(select(StaffSession)).one().last_seen_at

    first = last_seen()
    assert client.get("/staff/").status_code == 200
    assert last_seen() == first  # within the minute: nothing written
    earlier = utcnow() - timedelta(minutes=5)
    with transaction(rt.engine) as db:
        db.execute(update(StaffSession).values(last_seen_at=earlier))
    assert client.get("/staff/").status_code == 200
    touched = last_seen()
    assert touched > earlier + timedelta(minutes=4)  # touched, still signed in
    assert client.get("/staff/").status_code == 200
    assert last_seen() == touched  # and not again within the minute


def enable_totp(client: TestClient) -> str:
    page = client.get("/staff/account").text
    secret = page.split('name="secret" value="', 1)[1].split('"', 1)[0]
    response = post_form(
        client,
        "/staff/account",
        {"action": "totp", "secret": secret, "code": pyotp.TOTP(secret).now()},
    )
    assert response.headers["location"] == "/staff/account?totp=on"
    return secret


def test_sign_in_with_a_second_factor(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    email = make_staff(rt)
    staff_sign_in(client, email)
    secret = enable_totp(client)
    fresh = TestClient(app, base_url="http://testserver", follow_redirects=False)
    step_one = staff_sign_in(fresh, email)
    assert step_one.status_code == 200 and "6-digit code" in step_one.text
    assert "portal_staff=" not in step_one.headers.get("set-cookie", "")
    token = step_one.text.split('name="token" value="', 1)[1].split('"', 1)[0]
    wrong = post_form(fresh, "/staff/login/code", {"token": token, "code": "000000"})
    assert wrong.status_code == 401 and "isn&#39;t right" in wrong.text
    # The code used to turn TOTP on was burned; wait for a fresh step only if needed.
    code = pyotp.TOTP(secret).at(utcnow().timestamp() + 30)
    ok = post_form(fresh, "/staff/login/code", {"token": token, "code": code})
    assert ok.status_code == 303
    assert fresh.get("/staff/").status_code == 200
    # The same code cannot be used again.
    again = TestClient(app, base_url="http://testserver", follow_redirects=False)
    token2 = staff_sign_in(again, email).text.split('name="token" value="', 1)[1].split('"')[0]
    assert post_form(again, "/staff/login/code", {"token": token2, "code": code}).status_code == 401


def test_practice_can_require_a_second_factor(client: TestClient, rt: Runtime) -> None:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        practice.require_staff_totp = True
        db.add(practice)
    email = make_staff(rt)
    staff_sign_in(client, email)
    response = client.get("/staff/")
    assert response.headers["location"] == "/staff/account?setup=1"
    enable_totp(client)
    assert client.get("/staff/").status_code == 200


def test_failures_throttle_a_stranger_but_not_the_real_user(
    client: TestClient, rt: Runtime, app
) -> None:  # type: ignore[no-untyped-def]
    email = make_staff(rt)
    # The real user signed in on this browser before: it carries the known-device cookie.
    staff_sign_in(client, email)
    post_form(client, "/staff/logout", {})
    stranger = TestClient(app, base_url="http://testserver", follow_redirects=False)
    for _ in range(throttle.PER_ACCOUNT):
        assert staff_sign_in(stranger, email, "guess").status_code == 401
    locked = staff_sign_in(stranger, email, STAFF_PASSWORD)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    # The real user's browser is not locked out by the stranger's failures.
    assert staff_sign_in(client, email).status_code == 303


def test_an_address_with_many_failures_is_throttled(client: TestClient, rt: Runtime) -> None:
    with transaction(rt.engine) as db:
        for i in range(throttle.PER_ADDRESS):
            throttle.record_failure(db, email=f"x{i}@example.com", ip="testclient", now=utcnow())
    email = make_staff(rt)
    assert staff_sign_in(client, email).status_code == 429


def test_cli_staff_add_reads_the_password_from_stdin(settings) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from portal import cli as cli_module
    from portal.cli_support import open_runtime

    cli_module._add_plugin_commands()
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_SECRET_KEYS": settings.key_list[0]}
    open_runtime.cache_clear()
    result = CliRunner().invoke(
        cli_module.cli,
        ["staff", "add", "dana@example.com", "--role", "admin", "--name", "Dana Whitfield"],
        input="a long enough passphrase\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    open_runtime.cache_clear()
    weak = CliRunner().invoke(
        cli_module.cli,
        ["staff", "add", "x@example.com", "--role", "therapist"],
        input="short\n",
        env=env,
    )
    assert weak.exit_code == 1 and "at least 12" in weak.output
    open_runtime.cache_clear()
    from portal.db import make_engine

    engine = make_engine(settings)
    with transaction(engine) as db:
        account = db.exec(select(StaffAccount)).one()
        assert account.role == "admin" and account.password_hash.startswith("$argon2")
    engine.dispose()
