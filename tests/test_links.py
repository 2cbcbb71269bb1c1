"""Invitation and resume links, as a client meets them in a browser."""

from __future__ import annotations

from datetime import timedelta

from helpers import invite, open_link, post_form
from sqlalchemy import update
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.invitations import resume_link
from portal.mail_catcher import MailCatcher
from portal.models import Enrollment, EnrollmentStatus, Invitation
from portal.runtime import Runtime


def path_of(link: str) -> str:
    return link.removeprefix("http://testserver")


def test_invitation_email_carries_a_working_link(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    _, link = invite(rt, name="Jordan Rivers", email="jordan@example.com")
    assert deliver_mail() == (1, 0)
    [message] = mail.wait_for(1)
    assert message.envelope_to == ["jordan@example.com"]
    assert "Harbor Light Counseling" in message.subject
    assert link in message.text
    assert open_link(client, link).headers["location"] == "/onboarding"


def test_opening_the_link_does_not_use_it_up(client: TestClient, rt: Runtime) -> None:
    _, link = invite(rt)
    # Mail scanners fetch links: a GET shows a button and changes nothing.
    for _ in range(3):
        page = client.get(path_of(link))
        assert page.status_code == 200
        assert "Begin" in page.text
    assert open_link(client, link).status_code == 303


def test_second_use_gets_a_friendly_page(client: TestClient, rt: Runtime) -> None:
    _, link = invite(rt)
    assert open_link(client, link).status_code == 303
    again = post_form(client, path_of(link), {}, headers={"accept": "text/html"})
    assert again.status_code == 410
    assert "already been used" in again.text
    assert "Traceback" not in again.text
    assert client.get(path_of(link)).status_code == 410


def test_expired_link(client: TestClient, rt: Runtime) -> None:
    enrollment, link = invite(rt)
    with transaction(rt.engine) as db:
        db.execute(
            update(Invitation)
            .where(Invitation.enrollment_id == enrollment.id)  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    page = client.get(path_of(link))
    assert page.status_code == 410
    assert "expired" in page.text
    assert post_form(client, path_of(link), {}).status_code == 410


def test_tampered_link(client: TestClient, rt: Runtime) -> None:
    _, link = invite(rt)
    tampered = path_of(link)[:-3] + "abc"
    page = client.get(tampered)
    assert page.status_code == 404
    assert "couldn't open this link" in page.text
    assert client.get("/i/" + "x" * 5000).status_code == 404


def test_progress_needs_the_session(client: TestClient, rt: Runtime) -> None:
    page = client.get("/onboarding/policy")
    assert page.status_code == 401
    assert "open your link again" in page.text


def test_resume_link_brings_the_client_back(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    enrollment, link = invite(rt)
    open_link(client, link)
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None and row.status == EnrollmentStatus.IN_PROGRESS
        resume = resume_link(rt.services, row)
    other_browser = TestClient(app, base_url="http://testserver", follow_redirects=False)
    # A resume link works more than once (it is not an invitation), each time from a button.
    for _ in range(2):
        assert other_browser.get(path_of(resume)).status_code == 200
        assert open_link(other_browser, resume).headers["location"] == "/onboarding"
        assert other_browser.get("/onboarding").status_code == 303


def test_finish_later_emails_a_resume_link(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    _, link = invite(rt, email="later@example.com")
    open_link(client, link)
    response = post_form(client, "/onboarding/later", {})
    assert response.status_code == 200
    assert "emailed you a link" in response.text
    deliver_mail()
    messages = mail.wait_for(2)
    resume = [m for m in messages if "continue" in m.subject]
    assert resume and "/r/" in resume[0].text


def test_request_new_link_does_not_reveal_who_is_a_client(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    invite(rt, email="known@example.com")
    deliver_mail()
    mail.wait_for(1)
    known = post_form(client, "/link", {"email": "known@example.com"})
    unknown = post_form(client, "/link", {"email": "stranger@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    deliver_mail()
    mails = mail.wait_for(2)
    assert [m.envelope_to for m in mails][-1] == ["known@example.com"]


def test_request_new_link_validates_the_address(client: TestClient) -> None:
    response = post_form(client, "/link", {"email": "not an address<script>"})
    assert response.status_code == 422
    assert "doesn&#39;t look right" in response.text
    assert "<script>" not in response.text
    assert "not an address&lt;script&gt;" in response.text


def test_link_use_is_audited_without_personal_data(client: TestClient, rt: Runtime) -> None:
    enrollment, link = invite(rt, name="Jordan Rivers", email="jordan@example.com")
    open_link(client, link)
    with transaction(rt.engine) as db:
        events = db.exec(select(AuditEvent).where(AuditEvent.subject_id == enrollment.id)).all()
    assert {e.action for e in events} >= {"client.invited", "invitation.used"}
    for event in events:
        flat = str(event.model_dump())
        assert "Jordan" not in flat and "jordan@example.com" not in flat


def test_asking_again_and_again_sends_one_link(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    invite(rt, email="known@example.com")
    for _ in range(5):
        assert post_form(client, "/link", {"email": "known@example.com"}).status_code == 200
    deliver_mail()
    mails = mail.wait_for(2)
    assert sum("continue" in m.subject for m in mails) == 1
