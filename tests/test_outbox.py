"""Mail goes through the outbox: a failing SMTP server delays mail, never loses it."""

from __future__ import annotations

import asyncio

from helpers import invite, post_form
from sqlmodel import select
from starlette.testclient import TestClient

from portal.app import create_app
from portal.db import transaction
from portal.mail_catcher import MailCatcher, free_port
from portal.mailer import deliver_due
from portal.models import Practice
from portal.outbox import MailStatus, OutboxMessage, counts
from portal.runtime import Runtime
from portal.settings import Settings


def rows(rt: Runtime) -> list[OutboxMessage]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[arg-type]


def deliver_with(rt: Runtime, **overrides: object) -> tuple[int, int]:
    settings = rt.settings.model_copy(update=overrides)
    return asyncio.run(deliver_due(rt.engine, settings))


def test_mail_is_written_with_the_event_and_delivered(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    [row] = rows(rt)
    assert row.status == MailStatus.PENDING
    assert deliver_with(rt) == (1, 0)
    mail.wait_for(1)
    [row] = rows(rt)
    assert row.status == MailStatus.SENT and row.sent_at is not None
    # Delivered mail is not sent again.
    assert deliver_with(rt) == (0, 0)
    assert len(mail.mails) == 1


def test_smtp_down_delays_mail_then_delivers_it(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    assert deliver_with(rt, smtp_port=free_port()) == (0, 1)
    [row] = rows(rt)
    assert row.status == MailStatus.PENDING
    assert row.attempts == 1
    assert row.last_error and "Connect" in row.last_error  # the error class, no address
    assert deliver_with(rt) == (1, 0)  # backoff is 0 in tests: due again at once
    assert mail.wait_for(1)[0].envelope_to == ["jordan@example.com"]


def test_temporary_refusal_is_retried_with_backoff(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    mail.reject("451 4.3.0 Try again later")
    assert deliver_with(rt, mail_backoff_seconds=3600) == (0, 1)
    [row] = rows(rt)
    assert row.attempts == 1 and row.status == MailStatus.PENDING
    assert row.last_error == "SMTPDataError 451"
    mail.reject(None)
    # Not due yet: the backoff holds it back.
    assert deliver_with(rt) == (0, 0)
    [row] = rows(rt)
    assert row.status == MailStatus.PENDING


def test_temporary_failures_never_give_up(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    dead_port = free_port()
    for _ in range(12):
        deliver_with(rt, smtp_port=dead_port)
    [row] = rows(rt)
    assert row.status == MailStatus.PENDING and row.attempts == 12
    assert deliver_with(rt) == (1, 0)
    mail.wait_for(1)


def test_permanent_refusal_is_marked_failed_and_kept(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    mail.reject("550 5.1.1 No such user")
    assert deliver_with(rt) == (0, 1)
    [row] = rows(rt)
    assert row.status == MailStatus.FAILED and row.body_text  # kept, for the admin to see
    with transaction(rt.engine) as db:
        assert counts(db)["failed"] == 1


def test_a_message_that_cannot_be_built_does_not_block_the_others(
    rt: Runtime, mail: MailCatcher
) -> None:
    invite(rt, email="first@example.com")
    invite(rt, email="second@example.com")
    with transaction(rt.engine) as db:
        first = db.exec(select(OutboxMessage).order_by(OutboxMessage.id)).first()  # type: ignore[arg-type]
        assert first is not None
        first.subject = "Broken\r\nBcc: someone@example.com"
        db.add(first)
    assert deliver_with(rt) == (1, 1)
    assert [m.envelope_to for m in mail.wait_for(1)] == [["second@example.com"]]
    statuses = [row.status for row in rows(rt)]
    assert statuses == [MailStatus.FAILED, MailStatus.SENT]


def test_sent_mail_keeps_no_body(rt: Runtime, mail: MailCatcher) -> None:
    invite(rt)
    deliver_with(rt)
    [row] = rows(rt)
    assert row.status == MailStatus.SENT
    assert row.body_text == "" and row.body_html is None and row.attachment is None


def test_pages_work_while_smtp_is_down(settings: Settings, mail: MailCatcher) -> None:
    down = settings.model_copy(update={"smtp_port": free_port(), "mail_in_process": True})
    app = create_app(down)
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(name="Harbor Light Counseling"))
    invite(rt, email="known@example.com")
    with TestClient(app, base_url="http://testserver") as client:
        response = post_form(client, "/link", {"email": "known@example.com"})
        assert response.status_code == 200
    assert {row.status for row in rows(rt)} == {MailStatus.PENDING}
    assert len(rows(rt)) == 2
    rt.engine.dispose()
