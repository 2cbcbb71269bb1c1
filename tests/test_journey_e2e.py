"""The whole client journey over real HTTP: a uvicorn server on loopback, mail delivered by the
app's own outbox loop to a real SMTP server, on SQLite and on PostgreSQL.

invite -> email -> link -> policy -> contact -> testimonial -> two signers -> receipt PDF.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from processes import live_portal
from pypdf import PdfReader
from sqlmodel import select

from portal.audit import AuditEvent
from portal.db import transaction
from portal.mail_catcher import MailCatcher
from portal.models import Enrollment, EnrollmentStatus, Practice
from portal.runtime import Runtime
from portal.settings import Settings
from portal_contact.models import ContactPreference
from portal_signature.models import Signature

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"


@pytest.fixture
def server(settings: Settings, mail: MailCatcher) -> Iterator[tuple[str, Runtime]]:
    with live_portal(settings) as served:
        yield served


def step_form(page: str) -> dict[str, str]:
    """The hidden fields of the step's own form (not the "finish later" one)."""
    form = page.split('<form method="post" action="/onboarding/', 1)[1].split("</form>", 1)[0]
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }


def csrf(browser: httpx.Client) -> str:
    return browser.cookies["portal_csrf"]


def submit(browser: httpx.Client, key: str, data: dict[str, str]) -> httpx.Response:
    page = browser.get(f"/onboarding/{key}")
    assert page.status_code == 200, page.text
    return browser.post(
        f"/onboarding/{key}", data={**step_form(page.text), "csrf_token": csrf(browser), **data}
    )


def test_the_whole_journey(server: tuple[str, Runtime], mail: MailCatcher) -> None:
    base, rt = server
    from portal import invitations
    from portal.audit import Actor, RequestMeta
    from portal.db import utcnow
    from portal_policy import service as policy_service
    from portal_policy.rendering import default_policy_source

    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        policy = policy_service.publish(
            db,
            default_policy_source(),
            practice,
            actor=Actor("cli", "t"),
            meta=RequestMeta(),
            now=utcnow(),
        )
        policy_hash = policy.content_hash
        enrollment, _ = invitations.invite(
            db,
            rt.services,
            practice,
            full_name="Jordan Rivers",
            email="jordan@example.com",
            actor=Actor("staff", "front-desk"),
            meta=RequestMeta(),
            now=utcnow(),
        )

    # 1. The invitation arrives by real SMTP, delivered by the app's own outbox loop.
    [invitation] = mail.wait_for(1, timeout=20)
    assert invitation.envelope_to == ["jordan@example.com"]
    link = re.search(r"http://127\.0\.0\.1:\d+/i/\S+", invitation.text)
    assert link, invitation.text

    with httpx.Client(
        base_url=base, headers={"user-agent": PHONE_UA}, follow_redirects=False, timeout=30
    ) as browser:
        landing = browser.get(link.group(0))
        assert landing.status_code == 200 and "Begin" in landing.text
        started = browser.post(link.group(0), data={"csrf_token": csrf(browser)})
        assert started.status_code == 303 and started.headers["location"] == "/onboarding"
        assert browser.get("/onboarding").headers["location"] == "/onboarding/policy"

        # 2. Policy.
        page = browser.get("/onboarding/policy")
        assert "Harbor Light Counseling" in page.text and "988" in page.text
        assert submit(browser, "policy", {}).headers["location"] == "/onboarding/contact"

        # 3. Contact: a bad number first -> named error, entries kept, nothing stored.
        contact = {
            "phone_0_number": "12345",
            "phone_0_kind": "cell",
            "phone_0_voicemail": "practice_name",
            "email_address": "jordan.r@example.com",
            "email_warning_accepted": "yes",
        }
        refused = submit(browser, "contact", contact)
        assert refused.status_code == 422
        assert "valid phone number" in html.unescape(refused.text)
        assert 'value="jordan.r@example.com"' in refused.text
        contact["phone_0_number"] = "(206) 555-0148"
        assert submit(browser, "contact", contact).headers["location"] == "/onboarding/testimonial"

        # 4. Testimonials: anonymously, on the website.
        moved = submit(browser, "testimonial", {"choice": "anonymous", "placement_website": "yes"})
        assert moved.headers["location"] == "/onboarding/sign"

        # 5. Two adults sign, one after another.
        who = submit(browser, "sign", {"party": "adults", "adult_1_name": "Casey Rivers"})
        assert who.status_code == 200, who.text
        assert browser.get("/onboarding/done").status_code == 303  # not done yet
        first = submit(
            browser,
            "sign",
            {"esign_consent": "yes", "acknowledge": "yes", "typed_name": "Jordan Rivers"},
        )
        assert first.status_code == 200 and "Casey Rivers" in first.text
        assert browser.get("/onboarding/done").status_code == 303  # one signer still missing
        second = submit(
            browser,
            "sign",
            {"esign_consent": "yes", "acknowledge": "yes", "typed_name": "Casey Rivers"},
        )
        assert second.headers["location"] == "/onboarding/done"

        # 6. The receipt.
        done = browser.get("/onboarding/done")
        assert done.status_code == 200 and "receipt.pdf" in done.text
        receipt = browser.get("/onboarding/receipt.pdf")
        assert receipt.status_code == 200
        assert receipt.headers["content-type"] == "application/pdf"
        assert "Jordan" not in receipt.headers["content-disposition"]

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(receipt.content)).pages)
    flat = " ".join(text.split())
    for expected in [
        "Jordan Rivers",
        "Casey Rivers",
        "version 1",
        policy_hash[:16],
        "Acknowledges the Social Media and Communications Policy, version 1",
        "pending",
        "(206) 555-0148",
        "anonymously",
    ]:
        assert expected in flat, f"{expected!r} missing from the receipt"

    # The receipt is emailed, because the client allowed email, to the address they gave.
    mails = mail.wait_for(2, timeout=20)
    [emailed] = [m for m in mails if m.envelope_to == ["jordan.r@example.com"]]
    [(name, attached)] = emailed.attachments()
    assert name.endswith(".pdf") and attached == receipt.content

    with transaction(rt.engine) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None and row.status == EnrollmentStatus.COMPLETE
        signatures = db.exec(select(Signature)).all()
        assert sorted(s.typed_name for s in signatures) == ["Casey Rivers", "Jordan Rivers"]
        assert all(s.policy_hash == policy_hash and s.user_agent == PHONE_UA for s in signatures)
        assert len(db.exec(select(ContactPreference)).all()) == 1  # the refused try stored nothing
        actions = {e.action for e in db.exec(select(AuditEvent))}
    assert {
        "client.invited",
        "invitation.used",
        "policy.read",
        "contact_preferences.recorded",
        "testimonial.decided",
        "acknowledgement.signed",
        "onboarding.completed",
        "receipt.downloaded",
    } <= actions


def test_a_reused_link_loses_nothing(server: tuple[str, Runtime], mail: MailCatcher) -> None:
    base, rt = server
    from portal import invitations
    from portal.audit import Actor, RequestMeta
    from portal.db import utcnow

    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        _, link = invitations.invite(
            db,
            rt.services,
            practice,
            full_name="Sam Lee",
            email="sam@example.com",
            actor=Actor("staff", "t"),
            meta=RequestMeta(),
            now=utcnow(),
        )
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        browser.get(link)
        assert browser.post(link, data={"csrf_token": csrf(browser)}).status_code == 303
    with httpx.Client(base_url=base, follow_redirects=False) as stranger:
        page = stranger.get(link)
        assert page.status_code == 410 and "already been used" in page.text
