"""The staff-facing social media policy: the admin publishes, each staff member attests."""

from __future__ import annotations

import re

import pytest
from helpers import make_staff, post_form, staff_sign_in
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import Actor, AuditEvent
from portal.db import transaction, utcnow
from portal.runtime import Runtime
from portal.staff import accounts, attestations
from portal.staff.attestations import StaffAttestation, StaffPolicyVersion

ADMIN_PAGE = "/staff/admin/staff-policy"
PAGE = "/staff/staff-policy"
SHORT = (
    "# Staff Policy\n\nFor everyone at {{ practice_name }}.\n\n## Accounts\n\nKeep them apart.\n"
)


def sign_in(client: TestClient, rt: Runtime, role: str, name: str) -> str:
    email = make_staff(rt, role, name=name)
    assert staff_sign_in(client, email).status_code == 303
    return email


def other(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def versions(rt: Runtime) -> list[StaffPolicyVersion]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(StaffPolicyVersion).order_by(col(StaffPolicyVersion.version))))


def rows(rt: Runtime) -> list[StaffAttestation]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(StaffAttestation).order_by(col(StaffAttestation.id))))


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(col(AuditEvent.action) == action)))


def publish(client: TestClient, source: str) -> None:
    response = post_form(client, ADMIN_PAGE, {"action": "publish", "source": source})
    assert response.status_code == 303, response.text


def attest(client: TestClient, name: str, **overrides: str):  # type: ignore[no-untyped-def]
    page = client.get(PAGE).text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version, "no attestation form on the page"
    data = {"version": version.group(1), "confirm": "yes", "typed_name": name, **overrides}
    return post_form(client, PAGE, data)


def test_the_default_staff_policy_covers_what_it_must(rt: Runtime) -> None:
    source = attestations.default_source()
    for topic in [
        "## Separate accounts",
        "## No therapeutic relationships online",
        "endorse",
        "opinions are your",
        "## Reporting concerns",
        "## Consequences",
    ]:
        assert topic in source
    with transaction(rt.engine) as db:
        version = attestations.publish_default_staff_policy(db, Actor("system", "demo"), utcnow())
    assert version.version == 1 and "Harbor Light Counseling" in version.html
    assert "{{" not in version.text and len(version.toc) >= 6
    [event] = events(rt, "staff_policy.published")
    assert event.actor == "system:demo" and event.detail["version"] == 1


def test_the_admin_publishes_the_default_from_the_editor(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, "admin", "Dana Whitfield")
    page = client.get(ADMIN_PAGE)
    assert page.status_code == 200
    assert "No staff policy is published yet" in page.text
    assert "## Separate accounts" in page.text  # the default text waits in the editor
    response = post_form(
        client, ADMIN_PAGE, {"action": "publish", "source": attestations.default_source()}
    )
    assert response.headers["location"] == f"{ADMIN_PAGE}?published=1"
    shown = client.get(response.headers["location"]).text
    assert "Version 1 is published" in shown and "0 of 1 active staff have attested" in shown
    [version] = versions(rt)
    assert version.published_by.startswith("staff:")
    assert len(events(rt, "staff_policy.published")) == 1
    identical = post_form(
        client, ADMIN_PAGE, {"action": "publish", "source": attestations.default_source()}
    )
    assert identical.status_code == 422 and "identical to version 1" in identical.text
    assert len(versions(rt)) == 1


def test_preview_stores_nothing_and_html_stays_text(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, "admin", "Dana Whitfield")
    source = SHORT + "\n<script>alert(1)</script> <b>bold</b>\n"
    response = post_form(client, ADMIN_PAGE, {"action": "preview", "source": source})
    assert response.status_code == 200
    assert "Preview (not published)" in response.text
    assert "For everyone at Harbor Light Counseling." in response.text
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;" in response.text
    assert versions(rt) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "The policy is empty"),
        ("# Title\n\nNo sections at all.", "no sections"),
        ("# T\n\n## S\n\n{{ practice_nickname }}", "Unknown placeholder"),
        ("# T\n\n## S\n\n" + "x" * 100_001, "too long"),
    ],
)
def test_a_bad_text_is_explained_and_not_published(
    client: TestClient, rt: Runtime, source: str, message: str
) -> None:
    sign_in(client, rt, "admin", "Dana Whitfield")
    for action in ["preview", "publish"]:
        response = post_form(client, ADMIN_PAGE, {"action": action, "source": source})
        assert response.status_code == 422
        assert message in response.text and 'id="err-source"' in response.text
    assert versions(rt) == []


def test_unknown_action_and_missing_fields(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, "admin", "Dana Whitfield")
    assert post_form(client, ADMIN_PAGE, {}).status_code == 422
    odd = post_form(client, ADMIN_PAGE, {"action": "<b>x</b>", "source": SHORT})
    assert odd.status_code == 422 and "Choose Preview or Publish" in odd.text
    assert versions(rt) == []


def test_front_desk_cannot_publish(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, "front_desk", "Pat Kim")
    assert client.get(ADMIN_PAGE).status_code == 403
    response = post_form(client, ADMIN_PAGE, {"action": "publish", "source": SHORT})
    assert response.status_code == 403
    assert versions(rt) == []
    # Every role reads the staff policy page itself.
    assert client.get(PAGE).status_code == 200


def test_a_staff_member_attests(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    admin = other(app)
    sign_in(admin, rt, "admin", "Dana Whitfield")
    publish(admin, SHORT)
    email = sign_in(client, rt, "therapist", "Lee Moreno")
    page = client.get(PAGE).text
    assert "You have not attested to the staff policy yet" in page
    assert "For everyone at Harbor Light Counseling." in page
    assert "I have read the Staff Policy (version 1) and will follow it." in page
    response = attest(client, "  lee   MORENO ")
    assert response.headers["location"] == f"{PAGE}?attested=1"
    done = client.get(response.headers["location"]).text
    assert "Thank you. You attested to version 1 on" in done
    assert 'name="confirm"' not in done and "not attested" not in done
    [row] = rows(rt)
    with transaction(rt.engine) as db:
        account = accounts.by_email(db, email)
    assert account is not None and row.account_id == account.id
    assert row.version == 1 and row.typed_name == "lee MORENO"
    assert row.content_hash == versions(rt)[0].content_hash
    assert row.statement == "I have read the Staff Policy (version 1) and will follow it."
    assert row.ip == "testclient"
    [event] = events(rt, "staff_policy.attested")
    assert event.subject_id == account.id and event.detail["version"] == 1
    assert "Lee" not in str(event.detail)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"confirm": ""}, "confirm", "Tick the box"),
        ({"confirm": "maybe"}, "confirm", "Tick the box"),
        ({"typed_name": ""}, "typed_name", "Type your full name"),
        ({"typed_name": "Someone Else"}, "typed_name", "as your account has it: Lee Moreno"),
        ({"typed_name": "<b>Lee</b>" * 2_000}, "typed_name", "as your account has it"),
        ({"version": "abc"}, "__all__", "A newer version"),
    ],
)
def test_a_bad_attestation_is_explained_and_not_stored(
    client: TestClient, rt: Runtime, app, overrides: dict[str, str], field: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    admin = other(app)
    sign_in(admin, rt, "admin", "Dana Whitfield")
    publish(admin, SHORT)
    sign_in(client, rt, "therapist", "Lee Moreno")
    response = attest(client, "Lee Moreno", **overrides)
    assert response.status_code == 422
    assert message in response.text
    if field != "__all__":
        assert f'id="err-{field}"' in response.text
    assert "<b>Lee</b>" not in response.text
    assert rows(rt) == [] and events(rt, "staff_policy.attested") == []


def test_attesting_twice_counts_once(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    admin = other(app)
    sign_in(admin, rt, "admin", "Dana Whitfield")
    publish(admin, SHORT)
    sign_in(client, rt, "therapist", "Lee Moreno")
    data = {"version": "1", "confirm": "yes", "typed_name": "Lee Moreno"}
    assert post_form(client, PAGE, data).status_code == 303
    # The form sent again (a double click) shows the same outcome and stores nothing more.
    again = post_form(client, PAGE, data)
    assert again.headers["location"] == f"{PAGE}?attested=1"
    assert len(rows(rt)) == 1 and len(events(rt, "staff_policy.attested")) == 1


def test_a_version_published_while_reading_must_be_read_first(
    client: TestClient, rt: Runtime, app
) -> None:  # type: ignore[no-untyped-def]
    admin = other(app)
    sign_in(admin, rt, "admin", "Dana Whitfield")
    publish(admin, SHORT)
    sign_in(client, rt, "therapist", "Lee Moreno")
    client.get(PAGE)
    publish(admin, SHORT + "\n## Reviews\n\nDo not reply to reviews.\n")
    stale = post_form(client, PAGE, {"version": "1", "confirm": "yes", "typed_name": "Lee Moreno"})
    assert stale.status_code == 422 and "A newer version (version 2)" in stale.text
    assert "Do not reply to reviews." in stale.text
    assert rows(rt) == []


def test_nothing_to_attest_before_a_policy_is_published(client: TestClient, rt: Runtime) -> None:
    sign_in(client, rt, "front_desk", "Pat Kim")
    page = client.get(PAGE)
    assert page.status_code == 200 and "has not published a staff policy yet" in page.text
    response = post_form(client, PAGE, {"version": "1", "confirm": "yes", "typed_name": "Pat Kim"})
    assert response.status_code == 422 and "No staff policy has been published yet" in response.text
    assert rows(rt) == []


def test_the_admin_sees_who_has_and_has_not_attested(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, rt, "admin", "Dana Whitfield")
    publish(client, SHORT)
    lee = other(app)
    sign_in(lee, rt, "therapist", "Lee Moreno")
    assert attest(lee, "Lee Moreno").status_code == 303
    make_staff(rt, "front_desk", name="Pat Kim")
    gone = make_staff(rt, "front_desk", "gone@harborlight.example", name="Gone Away")
    with transaction(rt.engine) as db:
        account = accounts.by_email(db, gone)
        assert account is not None
        accounts.set_disabled(
            db,
            account,
            True,
            actor=Actor("cli", "test"),
            meta=None,
            now=utcnow(),  # type: ignore[arg-type]
        )
    page = client.get(ADMIN_PAGE).text
    assert "1 of 3 active staff have attested" in page
    assert "Still to attest: Dana Whitfield, Pat Kim." in page
    assert "Gone Away" not in page  # disabled accounts are not asked
    table = page.split('<table class="attestations">', 1)[1].split("</table>", 1)[0]
    # Those still to attest come first.
    assert table.index("Pat Kim") < table.index("Lee Moreno")
    assert table.count("Not yet") == 2 and table.count("Attested ") == 1

    # A new version: everyone must attest again, and the page says what they last attested to.
    publish(client, SHORT + "\n## Reviews\n\nDo not reply to reviews.\n")
    page = client.get(ADMIN_PAGE).text
    assert "0 of 3 active staff have attested" in page
    assert "attested to version 1 on" in page
    lee_page = lee.get(PAGE).text
    assert "A new version of the staff policy (version 2) has been published" in lee_page
    assert attest(lee, "Lee Moreno").status_code == 303
    assert [row.version for row in rows(rt)] == [1, 2]  # the first attestation is kept
