"""The admin's staff page: accounts, roles, disabling, the last admin, two-step sign-in."""

from __future__ import annotations

import pyotp
import pytest
from helpers import STAFF_PASSWORD, make_staff, post_form, staff_sign_in
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime
from portal.staff import accounts
from portal.staff.models import StaffAccount

ADMIN = "admin@harborlight.example"
PAGE = "/staff/admin/staff"


def sign_in_admin(client: TestClient, rt: Runtime) -> StaffAccount:
    make_staff(rt, "admin", ADMIN, name="Dana Whitfield")
    assert staff_sign_in(client, ADMIN).status_code == 303
    return account(rt, ADMIN)


def account(rt: Runtime, email: str) -> StaffAccount:
    with transaction(rt.engine) as db:
        found = accounts.by_email(db, email)
        assert found is not None
        return found


def actions(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(col(AuditEvent.action) == action)))


def other_client(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


GOOD_NEW = {
    "name": "Robin Alvarez",
    "email": "robin@harborlight.example",
    "role": "therapist",
    "password": "a long initial passphrase",
}


@pytest.mark.parametrize("role", ["front_desk", "therapist"])
def test_only_admins_reach_the_admin_pages_and_their_actions(
    client: TestClient, rt: Runtime, role: str
) -> None:
    admin = make_staff(rt, "admin", ADMIN, name="Dana Whitfield")
    target = account(rt, admin)
    email = make_staff(rt, role)
    staff_sign_in(client, email)
    for path in [PAGE, "/staff/admin/mail", "/staff/admin/staff-policy"]:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Your role can" in response.text
    posts = {
        PAGE: GOOD_NEW,
        f"{PAGE}/{target.id}/role": {"role": "front_desk"},
        f"{PAGE}/{target.id}/disabled": {"disabled": "yes"},
        f"{PAGE}/totp": {"required": "on"},
        "/staff/admin/mail/1/retry": {},
        "/staff/admin/mail/retry-failed": {},
        "/staff/admin/staff-policy": {"action": "publish", "source": "# T\n\n## S\n\nText."},
    }
    for path, data in posts.items():
        assert post_form(client, path, data).status_code == 403, path
    unchanged = account(rt, admin)
    assert unchanged.role == "admin" and unchanged.active
    with transaction(rt.engine) as db:
        assert accounts.by_email(db, GOOD_NEW["email"]) is None
        practice = db.get(Practice, 1)
        assert practice is not None and not practice.require_staff_totp


def test_nobody_without_a_session_reaches_the_admin_pages(client: TestClient, rt: Runtime) -> None:
    for path in [PAGE, "/staff/admin/mail", "/staff/admin/staff-policy", "/staff/staff-policy"]:
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/login?next={path}"
    response = post_form(client, PAGE, GOOD_NEW)
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")


def test_the_list_shows_each_account(client: TestClient, rt: Runtime) -> None:
    sign_in_admin(client, rt)
    make_staff(rt, "therapist", "lee@harborlight.example", name="Lee Moreno")
    page = client.get(PAGE)
    assert page.status_code == 200
    text = page.text
    for expected in ["Dana Whitfield", ADMIN, "Lee Moreno", "lee@harborlight.example", "Never"]:
        assert expected in text
    # Dana's row carries today's sign-in; Lee never signed in.
    assert utcnow().strftime("%Y-%m-%d") in text
    assert 'value="therapist" selected' in text
    # An admin cannot disable their own account from here: no button for it.
    assert "Disable Dana Whitfield" not in text and "Disable Lee Moreno" in text


def test_add_an_account(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    admin = sign_in_admin(client, rt)
    response = post_form(client, PAGE, GOOD_NEW)
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?done=created"
    assert "Account created" in client.get(response.headers["location"]).text
    created = account(rt, GOOD_NEW["email"])
    assert created.role == "therapist" and created.name == "Robin Alvarez"
    [event] = actions(rt, "staff.created")[-1:]
    assert event.actor == f"staff:{admin.id}" and event.subject_id == created.id
    assert "robin" not in str(event.detail).lower()
    assert staff_sign_in(other_client(app), GOOD_NEW["email"], GOOD_NEW["password"]).is_redirect


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "x" * 10_000, "too long"),
        ("name", "<script>alert(1)</script>", "can&#39;t contain &lt; or &gt;"),
        ("name", "", "Please enter the name"),
        ("email", "not an email", "doesn&#39;t look right"),
        ("email", "a@" + "b" * 10_000 + ".com", "too long"),
        ("role", "superuser", "Choose a role"),
        ("role", "", "Choose a role"),
        ("password", "short", "at least 12"),
        ("password", "x" * 10_000, "at most 1024"),
        ("password", "", "Choose an initial password"),
    ],
)
def test_bad_new_account_input_is_explained_and_nothing_is_created(
    client: TestClient, rt: Runtime, field: str, value: str, message: str
) -> None:
    sign_in_admin(client, rt)
    response = post_form(client, PAGE, {**GOOD_NEW, field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'id="err-{field}"' in response.text
    assert "<script>alert" not in response.text
    assert GOOD_NEW["password"] not in response.text  # a password is never sent back
    with transaction(rt.engine) as db:
        assert len(accounts.all_accounts(db)) == 1


def test_missing_fields_and_a_taken_address(client: TestClient, rt: Runtime) -> None:
    sign_in_admin(client, rt)
    empty = post_form(client, PAGE, {})
    assert empty.status_code == 422
    for message in ["Please enter the name", "Please enter an email", "Choose a role"]:
        assert message in empty.text
    taken = post_form(client, PAGE, {**GOOD_NEW, "email": ADMIN.upper()})
    assert taken.status_code == 422 and "already a staff account" in taken.text
    assert 'value="Robin Alvarez"' in taken.text  # entries kept


def test_change_a_role(client: TestClient, rt: Runtime) -> None:
    admin = sign_in_admin(client, rt)
    lee = account(rt, make_staff(rt, "therapist", "lee@harborlight.example", name="Lee Moreno"))
    response = post_form(client, f"{PAGE}/{lee.id}/role", {"role": "front_desk"})
    assert response.headers["location"] == f"{PAGE}?done=role"
    assert account(rt, "lee@harborlight.example").role == "front_desk"
    [event] = actions(rt, "staff.role_changed")
    assert event.detail == {"role_before": "therapist", "role": "front_desk"}
    assert event.actor == f"staff:{admin.id}"
    same = post_form(client, f"{PAGE}/{lee.id}/role", {"role": "front_desk"})
    assert same.headers["location"] == f"{PAGE}?done=same_role"
    assert len(actions(rt, "staff.role_changed")) == 1
    bad = post_form(client, f"{PAGE}/{lee.id}/role", {"role": "x" * 10_000})
    assert bad.status_code == 422 and "Role must be one of" in bad.text
    assert post_form(client, f"{PAGE}/nosuchaccount/role", {"role": "admin"}).status_code == 404


def test_the_last_admin_cannot_demote_themselves(client: TestClient, rt: Runtime) -> None:
    admin = sign_in_admin(client, rt)
    response = post_form(client, f"{PAGE}/{admin.id}/role", {"role": "therapist"})
    assert response.status_code == 422 and "only active admin" in response.text
    assert account(rt, ADMIN).role == "admin"
    assert actions(rt, "staff.role_changed") == []
    # With a second active admin, stepping down works, and the admin pages are then closed.
    make_staff(rt, "admin", "second@harborlight.example", name="Sam Second")
    response = post_form(client, f"{PAGE}/{admin.id}/role", {"role": "therapist"})
    assert response.headers["location"] == "/staff/"
    assert client.get(PAGE).status_code == 403


def test_a_disabled_admin_does_not_count_as_the_other_admin(
    client: TestClient, rt: Runtime
) -> None:
    admin = sign_in_admin(client, rt)
    other = account(rt, make_staff(rt, "admin", "second@harborlight.example", name="Sam Second"))
    assert post_form(client, f"{PAGE}/{other.id}/disabled", {"disabled": "yes"}).is_redirect
    response = post_form(client, f"{PAGE}/{admin.id}/role", {"role": "front_desk"})
    assert response.status_code == 422 and "only active admin" in response.text


def test_disabling_ends_the_accounts_sessions_at_once(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    sign_in_admin(client, rt)
    email = make_staff(rt, "therapist", "lee@harborlight.example", name="Lee Moreno")
    lee_browser = other_client(app)
    staff_sign_in(lee_browser, email)
    assert lee_browser.get("/staff/").status_code == 200
    lee = account(rt, email)
    response = post_form(client, f"{PAGE}/{lee.id}/disabled", {"disabled": "yes"})
    assert response.headers["location"] == f"{PAGE}?done=disabled"
    # The next request of Lee's browser is sent to sign in; signing in again is refused.
    assert lee_browser.get("/staff/").status_code == 303
    assert staff_sign_in(lee_browser, email).status_code == 401
    assert len(actions(rt, "staff.disabled")) == 1
    page = client.get(PAGE).text
    assert "Enable Lee Moreno" in page
    enabled = post_form(client, f"{PAGE}/{lee.id}/disabled", {"disabled": "no"})
    assert enabled.headers["location"] == f"{PAGE}?done=enabled"
    assert len(actions(rt, "staff.enabled")) == 1
    assert staff_sign_in(lee_browser, email).status_code == 303


def test_an_admin_cannot_disable_themselves(client: TestClient, rt: Runtime) -> None:
    admin = sign_in_admin(client, rt)
    response = post_form(client, f"{PAGE}/{admin.id}/disabled", {"disabled": "yes"})
    assert response.status_code == 422 and "can&#39;t disable your own account" in response.text
    assert account(rt, ADMIN).active
    assert client.get(PAGE).status_code == 200


def enable_own_totp(client: TestClient) -> str:
    page = client.get("/staff/account").text
    secret = page.split('name="secret" value="', 1)[1].split('"', 1)[0]
    code = pyotp.TOTP(secret).now()
    response = post_form(
        client, "/staff/account", {"action": "totp", "secret": secret, "code": code}
    )
    assert response.headers["location"] == "/staff/account?totp=on"
    return secret


def require_totp(rt: Runtime) -> bool:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        return practice.require_staff_totp


def test_requiring_two_step_sign_in_for_everyone(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    sign_in_admin(client, rt)
    lee_email = make_staff(rt, "therapist", "lee@harborlight.example", name="Lee Moreno")
    lee_browser = other_client(app)
    staff_sign_in(lee_browser, lee_email)
    # The admin must have it first, or the next page would send them to set it up.
    refused = post_form(client, f"{PAGE}/totp", {"required": "on"})
    assert refused.status_code == 422 and "your own account first" in refused.text
    assert not require_totp(rt)
    enable_own_totp(client)
    response = post_form(client, f"{PAGE}/totp", {"required": "on"})
    assert response.headers["location"] == f"{PAGE}?done=totp_on"
    assert require_totp(rt)
    assert len(actions(rt, "practice.staff_totp_required")) == 1
    page = client.get(PAGE).text
    assert "Required" in page and "1 active account will be asked to set it up" in page
    # Lee, without a second factor, is sent to set one up before anything else.
    assert lee_browser.get("/staff/").headers["location"] == "/staff/account?setup=1"
    assert lee_browser.get("/staff/staff-policy").headers["location"] == "/staff/account?setup=1"
    response = post_form(client, f"{PAGE}/totp", {"required": "off"})
    assert response.headers["location"] == f"{PAGE}?done=totp_off"
    assert not require_totp(rt)
    assert len(actions(rt, "practice.staff_totp_optional")) == 1
    assert lee_browser.get("/staff/").status_code == 200


def test_the_new_account_signs_in_with_its_initial_password(
    client: TestClient, rt: Runtime, app
) -> None:  # type: ignore[no-untyped-def]
    sign_in_admin(client, rt)
    post_form(client, PAGE, {**GOOD_NEW, "role": "front_desk"})
    browser = other_client(app)
    assert staff_sign_in(browser, GOOD_NEW["email"], STAFF_PASSWORD).status_code == 401
    assert staff_sign_in(browser, GOOD_NEW["email"], GOOD_NEW["password"]).status_code == 303
    assert browser.get(PAGE).status_code == 403
