"""The admin's mail page: what is queued, sent and failing and why, with a retry."""

from __future__ import annotations

import asyncio
import re

from helpers import invite, make_staff, post_form, staff_sign_in
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction
from portal.mail_catcher import MailCatcher, free_port
from portal.mailer import deliver_due
from portal.outbox import Mail, MailStatus, OutboxMessage, enqueue
from portal.runtime import Runtime

PAGE = "/staff/admin/mail"


def sign_in_admin(client: TestClient, rt: Runtime) -> None:
    email = make_staff(rt, "admin", name="Dana Whitfield")
    assert staff_sign_in(client, email).status_code == 303


def deliver_with(rt: Runtime, **overrides: object) -> tuple[int, int]:
    return asyncio.run(deliver_due(rt.engine, rt.settings.model_copy(update=overrides)))


def rows(rt: Runtime) -> list[OutboxMessage]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(col(AuditEvent.action) == action)))


def row_html(page: str, message_id: int | None) -> str:
    match = re.search(rf'<tr id="mail-{message_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for message {message_id}"
    return match.group(1)


def test_therapists_and_front_desk_cannot_see_or_retry_mail(
    client: TestClient, rt: Runtime
) -> None:
    invite(rt)
    for role in ["therapist", "front_desk"]:
        staff_sign_in(client, make_staff(rt, role))
        assert client.get(PAGE).status_code == 403
        [row] = rows(rt)
        assert post_form(client, f"{PAGE}/{row.id}/retry", {}).status_code == 403
        assert post_form(client, f"{PAGE}/retry-failed", {}).status_code == 403
    assert events(rt, "mail.retried") == []


def test_the_page_shows_queued_failing_failed_and_sent_mail_and_why(
    client: TestClient, rt: Runtime, mail: MailCatcher
) -> None:
    invite(rt, "Avery Chen", "avery@example.com")
    deliver_with(rt)  # sent
    invite(rt, "Morgan Ellis", "morgan@example.com")
    deliver_with(rt, smtp_port=free_port(), mail_backoff_seconds=3600)  # failing, will retry
    invite(rt, "Sam Okafor", "sam@example.com")
    mail.reject("550 5.1.1 No such user")
    deliver_with(rt)  # refused for good
    mail.reject(None)
    invite(rt, "Riley Park", "riley@example.com")  # queued, never tried
    sent, failing, failed, queued = rows(rt)
    assert (sent.status, failing.status, failed.status) == ("sent", "pending", "failed")

    sign_in_admin(client, rt)
    page = client.get(PAGE)
    assert page.status_code == 200
    text = page.text
    for label in ["Queued: <strong>1", "Failing, will retry: <strong>1", "Sent: <strong>1"]:
        assert label in text
    assert "Failed for good: <strong>1" in text
    assert "Retry all 1 failed" in text

    assert "avery@example.com" in row_html(text, sent.id) and "Sent" in row_html(text, sent.id)
    failing_row = row_html(text, failing.id)
    assert "morgan@example.com" in failing_row and "Failing, will retry" in failing_row
    assert "ConnectionRefusedError" in failing_row or "Connect" in failing_row
    assert "next try" in failing_row and "Retry now" in failing_row
    failed_row = row_html(text, failed.id)
    assert "Failed for good" in failed_row and "SMTPDataError 550" in failed_row
    assert "invitation" in failed_row
    assert "Retry now" not in row_html(text, sent.id)
    # Newest first, and no message body anywhere (a body holds the client's link).
    assert text.index(f'id="mail-{queued.id}"') < text.index(f'id="mail-{sent.id}"')
    assert queued.body_text and queued.body_text.splitlines()[0] not in text
    assert "/i/" not in text
    [viewed] = events(rt, "mail.viewed")
    assert "@" not in str(viewed.detail)


def test_filter_by_status(client: TestClient, rt: Runtime, mail: MailCatcher) -> None:
    invite(rt, "Avery Chen", "avery@example.com")
    deliver_with(rt)
    invite(rt, "Morgan Ellis", "morgan@example.com")
    sign_in_admin(client, rt)
    sent_only = client.get(f"{PAGE}?status=sent").text
    assert "avery@example.com" in sent_only and "morgan@example.com" not in sent_only
    queued_only = client.get(f"{PAGE}?status=queued").text
    assert "morgan@example.com" in queued_only and "avery@example.com" not in queued_only
    assert "No messages here (Failed for good)" in client.get(f"{PAGE}?status=failed").text
    # Unknown filters and cursors fall back to everything.
    for query in ["status=<script>", "after=abc", "after=-5", "after=" + "9" * 10_000]:
        response = client.get(f"{PAGE}?{query}")
        assert response.status_code == 200
        assert "<script>" not in response.text.split("<main", 1)[1]


def test_pages_are_keyset_pages_newest_first(client: TestClient, rt: Runtime) -> None:
    with transaction(rt.engine) as db:
        for n in range(60):
            enqueue(db, Mail("invitation", f"client{n:02d}@example.com", "Subject", "Body"))
    sign_in_admin(client, rt)
    first = client.get(PAGE).text
    assert "client59@example.com" in first and "client10@example.com" in first
    assert "client09@example.com" not in first
    older = re.search(r'href="(/staff/admin/mail\?status=&amp;after=\d+)"', first)
    assert older, "no link to older messages"
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert "client09@example.com" in second and "client00@example.com" in second
    assert "client10@example.com" not in second
    assert "Older messages" not in second


def test_retry_now_makes_a_failed_message_due_and_it_is_delivered(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    invite(rt, "Morgan Ellis", "morgan@example.com")
    mail.reject("550 5.1.1 No such user")
    assert deliver_with(rt, mail_backoff_seconds=3600) == (0, 1)
    mail.reject(None)
    [row] = rows(rt)
    assert row.status == MailStatus.FAILED
    assert deliver_mail() == (0, 0)  # failed for good: delivery leaves it alone

    sign_in_admin(client, rt)
    response = post_form(client, f"{PAGE}/{row.id}/retry", {"status": "failed"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?status=failed&retried=1"
    assert "1 message will be tried again now" in client.get(response.headers["location"]).text
    [row] = rows(rt)
    assert row.status == MailStatus.PENDING and row.attempts == 1
    [event] = events(rt, "mail.retried")
    assert event.subject_id == str(row.id)
    assert event.detail == {"purpose": "invitation", "status_before": "failed", "attempts": 1}

    assert deliver_mail() == (1, 0)
    assert mail.wait_for(1)[0].envelope_to == ["morgan@example.com"]
    [row] = rows(rt)
    assert row.status == MailStatus.SENT
    # A sent message cannot be retried (it would go out twice).
    again = post_form(client, f"{PAGE}/{row.id}/retry", {})
    assert again.headers["location"].endswith("not_retried=1")
    assert len(events(rt, "mail.retried")) == 1


def test_retry_now_on_a_message_waiting_out_its_backoff(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail
) -> None:  # type: ignore[no-untyped-def]
    invite(rt)
    assert deliver_with(rt, smtp_port=free_port(), mail_backoff_seconds=3600) == (0, 1)
    assert deliver_mail() == (0, 0)  # not due for an hour
    sign_in_admin(client, rt)
    [row] = rows(rt)
    assert post_form(client, f"{PAGE}/{row.id}/retry", {}).status_code == 303
    assert deliver_mail() == (1, 0)
    mail.wait_for(1)


def test_retry_all_failed(client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail) -> None:  # type: ignore[no-untyped-def]
    invite(rt, "Avery Chen", "avery@example.com")
    invite(rt, "Morgan Ellis", "morgan@example.com")
    mail.reject("550 5.1.1 No such user")
    assert deliver_with(rt) == (0, 2)
    mail.reject(None)
    invite(rt, "Sam Okafor", "sam@example.com")  # pending: not touched by "retry all failed"
    sign_in_admin(client, rt)
    response = post_form(client, f"{PAGE}/retry-failed", {"status": ""})
    assert response.headers["location"] == f"{PAGE}?status=&retried=2"
    assert len(events(rt, "mail.retried")) == 2
    assert deliver_mail() == (3, 0)
    assert sorted(m.envelope_to[0] for m in mail.wait_for(3)) == [
        "avery@example.com",
        "morgan@example.com",
        "sam@example.com",
    ]
    nothing = post_form(client, f"{PAGE}/retry-failed", {})
    assert nothing.headers["location"].endswith("retried=0")
    assert "There was nothing to retry" in client.get(nothing.headers["location"]).text


def test_retry_of_an_unknown_message(client: TestClient, rt: Runtime) -> None:
    sign_in_admin(client, rt)
    assert post_form(client, f"{PAGE}/abc/retry", {}).status_code == 404
    assert post_form(client, f"{PAGE}/{'9' * 10_000}/retry", {}).status_code == 404
    missing = post_form(client, f"{PAGE}/12345/retry", {"status": "<b>"})
    assert missing.headers["location"] == f"{PAGE}?status=&not_retried=1"
    assert events(rt, "mail.retried") == []
