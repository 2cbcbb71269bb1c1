"""The receipt: a PDF of the signed acknowledgement, downloaded, regenerated and emailed."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import invite, open_link, submit_step
from pypdf import PdfReader
from sqlmodel import select
from starlette.testclient import TestClient
from test_signature_step import (
    CLIENT,
    MEANING_V1,
    PARTNER,
    at_sign_step,
    choose,
    narrowed_steps,
    publish,
    rows,
    sign,
)

from portal import invitations
from portal.audit import AuditEvent
from portal.db import transaction
from portal.mail_catcher import MailCatcher
from portal.models import Enrollment, Practice
from portal.outbox import OutboxMessage
from portal.runtime import Runtime
from portal_policy import service as policy_service
from portal_signature.models import Acknowledgement, Signature
from portal_signature.receipt import NoSignedAcknowledgement, build_receipt_data

ALLOWED_EMAIL = "jordan.inbox@example.com"


@pytest.fixture
def steps(rt: Runtime) -> Iterator[Callable[..., None]]:
    yield from narrowed_steps(rt)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def squashed(text: str) -> str:
    return "".join(text.split())


def signed_by_two(client: TestClient, rt: Runtime) -> Enrollment:
    enrollment = at_sign_step(client, rt)
    choose(client, party="adults", adult_1_name=PARTNER)
    assert sign(client, CLIENT).status_code == 200
    assert sign(client, PARTNER).status_code == 303
    return enrollment


def test_receipt_downloads_after_completion(client: TestClient, rt: Runtime, steps: Any) -> None:
    signed_by_two(client, rt)
    response = client.get("/onboarding/receipt.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    [ack] = rows(rt, Acknowledgement)
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="acknowledgement-{ack.id[:8]}.pdf"'
    assert "Rivers" not in disposition
    assert response.content.startswith(b"%PDF-")

    text = pdf_text(response.content)
    with transaction(rt.engine) as db:
        policy = policy_service.current(db)
        assert policy is not None
    assert "Version 1" in text
    assert policy.content_hash in squashed(text)
    assert CLIENT in text and PARTNER in text
    assert text.count(MEANING_V1) == 2
    assert "Adult seen together" in text
    assert "Consented to sign electronically: yes" in text
    assert "Therapist countersignature: pending" in text
    assert "The client and 1 other adult seen together." in text
    assert "paper copy" in text
    assert "in writing" in text
    assert f"Reference: {ack.id}" in text
    for signature in rows(rt, Signature):
        assert f"Signed electronically on {signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in text

    with transaction(rt.engine) as db:
        events = list(db.exec(select(AuditEvent).where(AuditEvent.action == "receipt.downloaded")))
    assert [(e.subject_id, e.detail) for e in events] == [(ack.id, {"policy_version": 1})]


def test_receipt_shows_the_choices_of_the_other_steps(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    steps("contact")
    at_sign_step(client, rt)
    contact = {
        "phone_0_number": "(206) 555-0148",
        "phone_0_kind": "cell",
        "phone_0_voicemail": "none",
        "action": "save",
    }
    assert submit_step(client, "contact", contact).status_code == 303
    choose(client, party="individual")
    assert sign(client, CLIENT).status_code == 303
    text = pdf_text(client.get("/onboarding/receipt.pdf").content)
    assert "How we may contact you" in text
    assert "(206) 555-0148" in text
    # The signatures are printed once, in their own block, not again as a "choice".
    assert text.count(MEANING_V1) == 1


def test_receipt_is_not_available_before_completion(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    assert client.get("/onboarding/receipt.pdf").status_code == 401  # no session at all
    at_sign_step(client, rt)
    early = client.get("/onboarding/receipt.pdf")
    assert early.status_code == 303
    assert early.headers["location"] == "/onboarding"
    choose(client, party="adults", adult_1_name=PARTNER)
    sign(client, CLIENT)
    halfway = client.get("/onboarding/receipt.pdf")
    assert halfway.status_code == 303
    assert client.get(halfway.headers["location"]).headers["location"] == "/onboarding/sign"


def test_receipt_regenerates_identically_later(
    client: TestClient, rt: Runtime, steps: Any, app: Any
) -> None:
    enrollment = signed_by_two(client, rt)
    first = client.get("/onboarding/receipt.pdf").content

    # Later, on another device, through a resume link.
    link = invitations.resume_link(rt.services, enrollment)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as other:
        assert open_link(other, link).status_code == 303
        assert other.get("/onboarding").headers["location"] == "/onboarding/done"
        done = other.get("/onboarding/done")
        assert "Download your signed copy (PDF)" in done.text
        again = other.get("/onboarding/receipt.pdf").content
    assert again == first

    # The PDF's date is the last signature's, not the time it was made.
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        row = db.get(Enrollment, enrollment.id)
        assert practice is not None and row is not None
        data = build_receipt_data(db, row, practice, lambda as_of: [])
    assert data.generated_from == max(s.signed_at for s in rows(rt, Signature))
    reader = PdfReader(io.BytesIO(first))
    assert reader.metadata is not None
    assert str(reader.metadata["/CreationDate"]) == (f"D:{data.generated_from:%Y%m%d%H%M%S}Z")


def _complete_with_contact(client: TestClient, rt: Runtime, steps: Any, *, email: bool) -> None:
    steps("contact")
    at_sign_step(client, rt)
    contact = {
        "phone_0_number": "(206) 555-0148",
        "phone_0_kind": "cell",
        "phone_0_voicemail": "none",
        "action": "save",
    }
    if email:
        contact.update(email_address=ALLOWED_EMAIL, email_warning_accepted="yes")
    assert submit_step(client, "contact", contact).status_code == 303
    choose(client, party="individual")
    assert sign(client, CLIENT).headers["location"] == "/onboarding/done"


def test_receipt_is_emailed_when_the_client_allowed_email(
    client: TestClient, rt: Runtime, steps: Any, mail: MailCatcher, deliver_mail: Any
) -> None:
    _complete_with_contact(client, rt, steps, email=True)
    downloaded = client.get("/onboarding/receipt.pdf").content
    deliver_mail()
    received = mail.wait_for(2)  # the invitation, then the receipt
    [receipt] = [m for m in received if "signed acknowledgement" in m.subject]
    assert receipt.envelope_to == [ALLOWED_EMAIL]
    [(name, attachment)] = receipt.attachments()
    assert re.fullmatch(r"acknowledgement-[0-9a-f]{8}\.pdf", name)
    assert attachment == downloaded
    assert "paper copy" in receipt.text
    assert CLIENT in receipt.text
    with transaction(rt.engine) as db:
        events = list(db.exec(select(AuditEvent).where(AuditEvent.action == "receipt.emailed")))
    assert len(events) == 1
    assert ALLOWED_EMAIL not in str(events[0].detail)


def test_receipt_is_not_emailed_without_permission(
    client: TestClient, rt: Runtime, steps: Any, mail: MailCatcher, deliver_mail: Any
) -> None:
    _complete_with_contact(client, rt, steps, email=False)
    deliver_mail()
    received = mail.wait_for(1)
    assert [m for m in received if "signed acknowledgement" in m.subject] == []
    assert [m.purpose for m in rows(rt, OutboxMessage)] == ["invitation"]


def test_receipt_is_not_emailed_to_the_invitation_address_by_default(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    # Without the contact step nobody allowed email: the invitation address is not a consent.
    signed_by_two(client, rt)
    assert [m.purpose for m in rows(rt, OutboxMessage)] == ["invitation"]


def test_receipt_for_a_minor_names_the_guardian_and_child(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    choose(
        client,
        party="minor",
        minor_name="Alex Rivers",
        guardian_name="Pat Rivers",
        relationship="mother",
    )
    assert sign(client, "Pat Rivers").status_code == 303
    text = pdf_text(client.get("/onboarding/receipt.pdf").content)
    assert "Pat Rivers" in text
    assert "Parent or guardian (mother)" in text
    assert "A parent or guardian (mother) signs for Alex Rivers, a child under 18." in text
    assert squashed(MEANING_V1 + ", as mother of Alex Rivers, a minor") in squashed(text)


def test_receipt_keeps_the_signed_version_after_a_new_policy(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    signed_by_two(client, rt)
    before = client.get("/onboarding/receipt.pdf").content
    publish(rt, "\n\n## One more thing\n\nWe added a section.\n")
    # The client must re-sign version 2, but their copy of what they signed stays the same.
    after = client.get("/onboarding/receipt.pdf")
    assert after.status_code == 200
    assert after.content == before
    text = pdf_text(after.content)
    assert "Version 1" in text
    assert not re.search(r"version 2\b", text, re.IGNORECASE)


def test_build_receipt_data_needs_a_signed_acknowledgement(rt: Runtime) -> None:
    enrollment, _link = invite(rt)
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        row = db.get(Enrollment, enrollment.id)
        assert practice is not None and row is not None
        with pytest.raises(NoSignedAcknowledgement):
            build_receipt_data(db, row, practice, lambda as_of: [])
