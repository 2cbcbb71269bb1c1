"""Publishing a new policy version asks every client who signed an earlier one to sign again:
by email (real SMTP) where they allowed it, with a link to a short flow that shows what
changed; completing it again is recorded and sends a new receipt."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    add_client,
    make_staff,
    onboard,
    open_link,
    post_form,
    publish_default,
    staff_sign_in,
    submit_step,
)
from sqlmodel import col, select
from starlette.testclient import TestClient
from test_cli import run  # noqa: F401  (the fixture)
from test_signature_step import choose, sign

from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher
from portal.models import Client, Enrollment, EnrollmentStatus, Practice
from portal.outbox import OutboxMessage
from portal.runtime import Runtime
from portal_policy import campaign, campaign_progress, signed_records
from portal_policy.models import PolicyCampaign, PolicyCampaignRecipient, PolicyVersion
from portal_policy.publishing import publish_new_version
from portal_policy.rendering import default_policy_source
from portal_signature import service as signature_service

TITLE = "Social Media and Communications Policy"
NEW_SECTION = "\n## Video sessions\n\nSessions online use a secure video service.\n"


def new_source(extra: str = "") -> str:
    changed = default_policy_source().replace(
        "not a way to get help in a crisis.", "never a way to get help in a crisis."
    )
    assert changed != default_policy_source()
    return changed + NEW_SECTION + extra


def run_step(rt: Runtime, enrollment_id: str, key: str, form: dict[str, str]) -> None:
    """Submit a step's form for a client directly, as the handler sees it."""
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, enrollment_id)
        practice = db.get(Practice, 1)
        assert row is not None and practice is not None
        client_row = db.get(Client, row.client_id)
        assert client_row is not None
        ctx = rt.step_context(db, practice, client_row, row, RequestMeta(), utcnow())
        spec = rt.wizard.get(key)
        assert spec is not None
        outcome = spec.handler.submit(ctx, form, "save")
        assert outcome.ok, outcome.errors


def publish_as_cli(rt: Runtime, source: str) -> tuple[PolicyVersion, PolicyCampaign | None]:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        return publish_new_version(
            db,
            rt.services,
            source,
            practice,
            actor=Actor("cli", "t"),
            meta=RequestMeta(),
            now=utcnow(),
        )


def events(rt: Runtime, action: str, enrollment_id: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    if enrollment_id:
        query = query.where(AuditEvent.enrollment_id == enrollment_id)
    with transaction(rt.engine) as db:
        return list(db.exec(query.order_by(col(AuditEvent.id))))


def recipients(rt: Runtime) -> dict[str, PolicyCampaignRecipient]:
    with transaction(rt.engine) as db:
        return {r.enrollment_id: r for r in db.exec(select(PolicyCampaignRecipient))}


def board_cell(page: str, name: str) -> str:
    row = page.split(name, 1)[1].split("</tr>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))


def test_the_campaign_end_to_end(
    client: TestClient,
    rt: Runtime,
    mail: MailCatcher,
    deliver_mail: Callable[[], Any],
) -> None:
    publish_default(rt)
    jordan = add_client(rt, "Jordan Rivers", "jordan@example.com", allow_email="jr@example.com")
    sam = add_client(rt, "Sam Okafor", "sam@example.com")  # allowed no email
    avery = add_client(rt, "Avery Chen", "avery@example.com", until="sign")  # never signed
    deliver_mail()
    mail.clear()

    # The admin publishes version 2 from the browser.
    assert staff_sign_in(client, make_staff(rt, "admin", name="Alex Moreno")).status_code == 303
    assert "2 clients have signed an earlier version" in client.get("/staff/policy").text
    published = post_form(
        client,
        "/staff/policy/publish",
        {"source": new_source(), "base_version": "1", "confirm": "yes"},
    )
    assert published.status_code == 303

    # Only the client who allowed email is emailed, at the address they allowed.
    assert deliver_mail() == (1, 0)
    [notice] = mail.wait_for(1)
    assert notice.envelope_to == ["jr@example.com"]
    assert notice.subject == f"Harbor Light Counseling: We've updated our {TITLE}"
    assert "You signed version 1; the current version is 2." in notice.text
    assert "- New section: Video sessions" in notice.text
    assert "- Changed: What our social media is for" in notice.text
    link = re.search(r"http://testserver/r/\S+", notice.text)
    assert link, notice.text

    with transaction(rt.engine) as db:
        [started] = db.exec(select(PolicyCampaign)).all()
        assert (started.policy_version, started.clients_notified) == (2, 1)
        assert started.clients_not_emailed == 1
    asked = recipients(rt)
    assert set(asked) == {jordan, sam} and avery not in asked
    assert asked[jordan].emailed and not asked[sam].emailed
    requested = events(rt, "policy.reacknowledgement_requested")
    assert sorted(e.enrollment_id or "" for e in requested) == sorted([jordan, sam])
    for event in requested:
        assert "@" not in str(event.detail) and "Rivers" not in str(event.detail)

    policy_page = client.get("/staff/policy").text
    assert "<strong>0 of 2</strong> clients have signed version 2; 2 outstanding." in policy_page
    board = client.get("/staff/").text
    assert "Must re-acknowledge: signed v1, current v2" in board_cell(board, "Jordan Rivers")
    assert "Must re-acknowledge: signed v1, current v2" in board_cell(board, "Sam Okafor")
    assert "Not signed" in board_cell(board, "Avery Chen")

    # The client follows the link: the policy step first, with what changed since v1.
    assert open_link(client, link.group(0)).status_code == 303
    assert client.get("/onboarding").headers["location"] == "/onboarding/policy"
    page = client.get("/onboarding/policy").text
    assert "What changed since version 1" in page
    assert "<strong>New section:</strong> Video sessions" in page
    assert "<strong>Removed:</strong> <del>- not a way to get help in a crisis.</del>" in page
    assert "<strong>Added:</strong> <ins>- never a way to get help in a crisis.</ins>" in page
    assert client.get("/onboarding/done").headers["location"] == "/onboarding"
    moved = submit_step(client, "policy", {"policy_version": "2"})
    assert moved.headers["location"] == "/onboarding/sign"
    assert "updated its policy to version 2" in client.get("/onboarding/sign").text
    choose(client, party="individual")
    assert sign(client, "Jordan Rivers").headers["location"] == "/onboarding/done"
    assert client.get("/onboarding/done").status_code == 200

    # Completing again is recorded, once, and the new receipt goes to the allowed address.
    assert [e.action for e in events(rt, "onboarding.reopened", jordan)] == ["onboarding.reopened"]
    [again] = events(rt, "onboarding.reacknowledged", jordan)
    assert again.actor == f"client:{jordan}"
    assert [e.detail["policy_version"] for e in events(rt, "receipt.emailed", jordan)] == [1, 2]
    assert deliver_mail() == (1, 0)
    receipt = mail.wait_for(2)[1]
    assert receipt.envelope_to == ["jr@example.com"]
    assert receipt.subject == "Harbor Light Counseling: your signed acknowledgement"
    assert "version 2" in receipt.text and receipt.attachments()
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, jordan)
        assert row is not None and row.status == EnrollmentStatus.COMPLETE
        state = signature_service.latest_signed(db, jordan)
        assert state is not None and state.ack.policy_version == 2

    board = client.get("/staff/").text
    assert "Signed v2" in board_cell(board, "Jordan Rivers")
    assert "Must re-acknowledge" in board_cell(board, "Sam Okafor")
    policy_page = client.get("/staff/policy").text
    assert "<strong>1 of 2</strong> clients have signed version 2; 1 outstanding." in policy_page
    assert re.search(r"Emailed</th><td>1<", policy_page)
    assert re.search(
        r"Allowed no email \(tell them in person or by phone\)</th><td>1<", policy_page
    )


def test_answers_changed_after_completion_send_no_second_receipt(
    client: TestClient, rt: Runtime, deliver_mail: Callable[[], Any]
) -> None:
    publish_default(rt)
    enrollment = add_client(rt, "Jordan Rivers", "jordan@example.com", allow_email="jr@example.com")
    with transaction(rt.engine) as db:
        ctx_enrollment = db.get(Enrollment, enrollment)
        practice = db.get(Practice, 1)
        assert ctx_enrollment is not None and practice is not None
        client_row = db.get(Client, ctx_enrollment.client_id)
        assert client_row is not None
        ctx = rt.step_context(db, practice, client_row, ctx_enrollment, RequestMeta(), utcnow())
        testimonial = rt.wizard.get("testimonial")
        assert testimonial is not None
        outcome = rt.wizard.submit(ctx, testimonial, {"choice": "no"}, "form-1")
        assert outcome is not None and outcome.ok
    assert events(rt, "onboarding.reacknowledged") == []
    assert events(rt, "onboarding.reopened") == []
    assert len(events(rt, "receipt.emailed")) == 1


def test_the_campaign_walks_clients_in_batches(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaign, "BATCH_SIZE", 2)
    publish_default(rt)
    emailed = [
        add_client(rt, f"Client {n}", f"c{n}@example.com", allow_email=f"allowed{n}@example.com")
        for n in "ABC"
    ]
    quiet = [add_client(rt, f"Client {n}", f"c{n}@example.com") for n in "DE"]
    cancelled = add_client(rt, "Client F", "cf@example.com", allow_email="f@example.com")
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, cancelled)
        assert row is not None
        row.status = EnrollmentStatus.CANCELLED
        db.add(row)
    add_client(rt, "Client G", "cg@example.com", until="sign")
    # Chose who signs but nobody signed yet: an acknowledgement, not a signed one.
    unsigned = add_client(rt, "Client H", "ch@example.com", until="sign")
    run_step(rt, unsigned, "sign", {"phase": "who", "party": "individual", "action": "save"})

    _, started = publish_as_cli(rt, new_source())
    assert started is not None
    assert (started.clients_notified, started.clients_not_emailed) == (3, 2)
    asked = recipients(rt)
    assert set(asked) == {*emailed, *quiet}
    assert {r.signed_version for r in asked.values()} == {1}
    with transaction(rt.engine) as db:
        queued = db.exec(select(OutboxMessage).where(OutboxMessage.purpose == "policy_update"))
        assert sorted(m.to_addr for m in queued) == [f"allowed{n}@example.com" for n in "ABC"]
        progress = campaign_progress.progress(db, started)
    assert (progress.asked, progress.resigned, progress.outstanding) == (5, 0, 5)
    assert len(events(rt, "policy.reacknowledgement_requested")) == 5
    [summary] = events(rt, "policy.campaign_started")
    assert summary.detail == {"version": 2, "notified": 3, "not_emailed": 2}


def test_a_later_version_asks_again_from_what_each_client_signed(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail: Callable[[], Any]
) -> None:
    publish_default(rt)
    behind = add_client(rt, "Sam Okafor", "sam@example.com", allow_email="sam@inbox.example")
    publish_as_cli(rt, new_source())
    current = add_client(rt, "Jordan Rivers", "jo@example.com", allow_email="jr@example.com")
    # Sam began on version 2 (read it, chose who signs) but has not signed it.
    run_step(rt, behind, "policy", {"policy_version": "2"})
    run_step(rt, behind, "sign", {"phase": "who", "party": "individual", "action": "save"})
    deliver_mail()
    mail.clear()
    _, third = publish_as_cli(rt, new_source("\n## Texting\n\nWe do not text.\n"))
    assert third is not None and third.clients_notified == 2
    with transaction(rt.engine) as db:
        signed = {
            r.enrollment_id: r.signed_version
            for r in db.exec(
                select(PolicyCampaignRecipient).where(
                    PolicyCampaignRecipient.campaign_id == third.id
                )
            )
        }
    assert signed == {behind: 1, current: 2}
    # The batch reading agrees with portal_signature's own answer, one client at a time.
    with transaction(rt.engine) as db:
        for enrollment_id, version in signed_records.latest_signed_versions(
            db, [behind, current]
        ).items():
            state = signature_service.latest_signed(db, enrollment_id)
            assert state is not None and state.ack.policy_version == version
    assert deliver_mail() == (2, 0)
    by_address = {m.envelope_to[0]: m.text for m in mail.wait_for(2)}
    assert "- New section: Video sessions" in by_address["sam@inbox.example"]
    assert "- New section: Texting" in by_address["sam@inbox.example"]
    assert "Video sessions" not in by_address["jr@example.com"]
    assert "- New section: Texting" in by_address["jr@example.com"]
    # The page shows the latest campaign.
    assert staff_sign_in(client, make_staff(rt, "admin", name="Alex Moreno")).status_code == 303
    assert "Re-acknowledgement of version 3" in client.get("/staff/policy").text


def test_publishing_from_the_command_line_starts_the_campaign(
    run: Callable[..., Any],  # noqa: F811
    rt: Runtime,
    tmp_path: Path,
) -> None:
    publish_default(rt)
    add_client(rt, "Jordan Rivers", "jordan@example.com", allow_email="jr@example.com")
    add_client(rt, "Sam Okafor", "sam@example.com")
    source = tmp_path / "policy.md"
    source.write_text(new_source(), encoding="utf-8")
    result = run("policy", "publish", str(source))
    assert result.exit_code == 0, result.output
    assert "Published version 2" in result.output
    assert "Emailed 1 client(s)" in result.output and "1 allowed no email" in result.output
    assert len(recipients(rt)) == 2


def test_board_filters_and_campaign_progress(client: TestClient, rt: Runtime) -> None:
    """The board lists who must re-acknowledge and shows the campaign's progress."""
    from portal_policy import publishing
    from portal_policy.rendering import default_policy_source

    publish_default(rt)
    onboard(rt, "Sam Okafor", "sam@example.com", steps=None)
    onboard(rt, "Avery Chen", "avery@example.com", steps=0)
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        publishing.publish_new_version(
            db,
            rt.services,
            default_policy_source() + "\n\nA new paragraph.\n",
            practice,
            actor=Actor("staff", "admin"),
            meta=RequestMeta(),
            now=utcnow(),
        )
    staff_sign_in(client, make_staff(rt))
    board = client.get("/staff/").text
    assert "0 of 1 clients asked to re-acknowledge have signed it" in board
    must = client.get("/staff/?status=must_reack").text
    assert "Sam Okafor" in must and "Avery Chen" not in must
    unsigned = client.get("/staff/?status=not_signed").text
    assert "Avery Chen" in unsigned and "Sam Okafor" not in unsigned
