"""Staff actions on a client's record, over HTTP on SQLite and PostgreSQL: invitations
(resend, cancel, show the link), the policy discussed in session, paper acknowledgements
with their scans, and a testimonial consent withdrawn in person."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import (
    invite,
    make_staff,
    open_link,
    post_form,
    publish_default,
    staff_sign_in,
    start_journey,
)
from sqlmodel import func, select
from starlette.testclient import TestClient

from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.hookspecs import hookimpl
from portal.mail_catcher import MailCatcher
from portal.models import Enrollment, EnrollmentStatus, Invitation, Practice
from portal.routes import staff_clients
from portal.runtime import Runtime
from portal.settings import Settings
from portal.staff import invitation_section
from portal_policy import service as policy_service
from portal_signature.models import PaperAcknowledgement, PolicyDiscussion
from portal_signature.staff_actions import scan_limit
from portal_testimonial import service as testimonial_service

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
THERAPIST = "Dr Alex Moreno"
LINK = re.compile(r"http://testserver/i/[^\s\"<]+")


# --- helpers -------------------------------------------------------------------------------


class _InvitationSectionPlugin:
    @hookimpl
    def portal_client_sections(self, settings: Settings) -> list[Any]:
        return [invitation_section.SECTION]


@pytest.fixture
def invitation_page(rt: Runtime) -> Iterator[None]:
    """Shows the invitation section on the client page, unless the host already does."""
    if any(s.key == "invitation" for s in staff_clients.sections(rt)):
        yield
        return
    plugin = _InvitationSectionPlugin()
    rt.pm.register(plugin, name="test-invitation-section")
    yield
    rt.pm.unregister(plugin)


def sign_in(client: TestClient, rt: Runtime, role: str) -> None:
    name = THERAPIST if role == "therapist" else "Pat Kim"
    staff_sign_in(client, make_staff(rt, role, name=name))


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action == action)))


def status_of(rt: Runtime, enrollment_id: str) -> str:
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        return str(enrollment.status)


def count(rt: Runtime, model: Any) -> int:
    with transaction(rt.engine) as db:
        return int(db.exec(select(func.count()).select_from(model)).one())


def assert_error(page: str, field: str, message: str) -> None:
    """The message is shown in the field's own error slot."""
    found = re.search(rf'id="err-{field}" aria-live="polite">([^<]*)<', page)
    assert found and message in found.group(1), (field, found and found.group(1))


def client_url(enrollment: Enrollment) -> str:
    return f"/staff/clients/{enrollment.id}"


def upload(
    client: TestClient,
    enrollment: Enrollment,
    content: bytes | None = PDF,
    *,
    name: str = "scan.pdf",
    declared: str = "application/pdf",
    **fields: str,
) -> Any:
    data = {
        "csrf_token": client.cookies["portal_csrf"],
        "policy_version": "1",
        "signer_names": "Jordan Rivers",
        "signed_on": "2026-01-05",
        **fields,
    }
    # No file chosen: a browser still sends the part, with no name and no content.
    files = {"scan": (name, content, declared) if content is not None else ("", b"", "")}
    return client.post(f"{client_url(enrollment)}/paper", data=data, files=files)


# --- invitations ---------------------------------------------------------------------------


def test_resend_retires_the_old_link_and_mails_a_new_one(
    client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail: Any
) -> None:
    enrollment, old_link = invite(rt)
    sign_in(client, rt, "front_desk")
    response = post_form(client, f"{client_url(enrollment)}/invitation/resend", {})
    assert response.status_code == 303
    assert "invitation=resent" in response.headers["location"]
    deliver_mail()
    mails = mail.wait_for(2)
    new_link = LINK.search(mails[-1].text)
    assert new_link and new_link.group(0) != old_link
    # The old link is withdrawn; the new one works.
    old = client.get(old_link.removeprefix("http://testserver"))
    assert old.status_code == 410 and "This invitation was withdrawn" in old.text
    assert open_link(client, new_link.group(0)).status_code == 303
    (event,) = events(rt, "invitation.resent")
    assert event.enrollment_id == enrollment.id and event.detail == {"retired": 1}
    assert event.actor.startswith("staff:")


def test_cancel_before_the_client_started_cancels_the_enrollment(
    client: TestClient, rt: Runtime
) -> None:
    enrollment, link = invite(rt)
    sign_in(client, rt, "front_desk")
    response = post_form(client, f"{client_url(enrollment)}/invitation/cancel", {})
    assert response.status_code == 303 and "invitation=cancelled" in response.headers["location"]
    assert status_of(rt, enrollment.id) == EnrollmentStatus.CANCELLED
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 410 and "This invitation was withdrawn" in page.text
    (event,) = events(rt, "invitation.cancelled")
    assert event.enrollment_id == enrollment.id
    assert event.detail == {"retired": 1, "enrollment_cancelled": True}
    # Nothing more to do with it: each refusal names the reason and changes nothing.
    again = post_form(client, f"{client_url(enrollment)}/invitation/cancel", {})
    assert again.status_code == 422 and "already cancelled" in again.text
    resend = post_form(client, f"{client_url(enrollment)}/invitation/resend", {})
    assert resend.status_code == 422 and "Invite the client again" in resend.text
    shown = post_form(client, f"{client_url(enrollment)}/invitation/link", {})
    assert shown.status_code == 422 and "cancelled" in shown.text
    assert len(events(rt, "invitation.cancelled")) == 1


def test_cancel_after_the_client_started_keeps_their_progress(
    client: TestClient, rt: Runtime, app: Any
) -> None:
    publish_default(rt)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        enrollment = start_journey(browser, rt)
    sign_in(client, rt, "therapist")
    nothing = post_form(client, f"{client_url(enrollment)}/invitation/cancel", {})
    assert nothing.status_code == 422 and "no unused invitation" in nothing.text
    assert post_form(client, f"{client_url(enrollment)}/invitation/resend", {}).status_code == 303
    response = post_form(client, f"{client_url(enrollment)}/invitation/cancel", {})
    assert "invitation=links_cancelled" in response.headers["location"]
    assert status_of(rt, enrollment.id) == EnrollmentStatus.IN_PROGRESS
    with transaction(rt.engine) as db:
        rows = db.exec(select(Invitation).where(Invitation.enrollment_id == enrollment.id)).all()
        assert [r.used_at is not None or r.cancelled_at is not None for r in rows] == [True, True]


def test_show_link_gives_a_working_link_and_is_audited(
    client: TestClient, rt: Runtime, app: Any
) -> None:
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    page = post_form(client, f"{client_url(enrollment)}/invitation/link", {})
    assert page.status_code == 200
    assert 'readonly aria-describedby="hint-invitation-link"' in page.text
    assert 'data-copy="f-invitation-link" hidden' in page.text  # shown by JS only
    link = LINK.search(page.text)
    assert link
    (event,) = events(rt, "invitation.link_viewed")
    assert event.enrollment_id == enrollment.id and set(event.detail) == {"invitation_id"}
    # htmx swaps in just the box.
    fragment = post_form(
        client, f"{client_url(enrollment)}/invitation/link", {}, headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith('<div id="invitation-link"')
    assert "<nav" not in fragment.text
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        assert open_link(browser, link.group(0)).status_code == 303
    used = post_form(client, f"{client_url(enrollment)}/invitation/link", {})
    assert used.status_code == 422 and "no unused invitation" in used.text
    assert len(events(rt, "invitation.link_viewed")) == 2


def test_invitation_actions_need_a_staff_session_and_the_form_token(
    client: TestClient, rt: Runtime
) -> None:
    enrollment, _ = invite(rt)
    for action in ("resend", "cancel", "link"):
        url = f"{client_url(enrollment)}/invitation/{action}"
        assert post_form(client, url, {}).headers["location"].startswith("/staff/login")
    sign_in(client, rt, "front_desk")
    assert client.post(f"{client_url(enrollment)}/invitation/cancel").status_code == 403
    assert status_of(rt, enrollment.id) == EnrollmentStatus.INVITED
    missing = post_form(client, "/staff/clients/nope/invitation/resend", {})
    assert missing.status_code == 404


@pytest.mark.usefixtures("invitation_page")
def test_client_page_offers_the_invitation_actions(client: TestClient, rt: Runtime) -> None:
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    page = client.get(client_url(enrollment))
    assert "Unused, works until" in page.text
    for label in ("Show the invitation link", "Resend the invitation", "Cancel the invitation"):
        assert label in page.text
    post_form(client, f"{client_url(enrollment)}/invitation/cancel", {})
    page = client.get(f"{client_url(enrollment)}?invitation=cancelled")
    assert "Invitation cancelled" in page.text and "Withdrawn " in page.text
    assert "Resend the invitation" not in page.text


# --- the policy discussed in session -------------------------------------------------------


def test_therapist_records_the_policy_discussed_in_session(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "therapist")
    page = client.get(client_url(enrollment))
    assert "Record that the policy was discussed in session" in page.text
    form = {"policy_version": "1", "discussed_on": "2026-01-05"}
    response = post_form(client, f"{client_url(enrollment)}/discussed", form)
    assert response.status_code == 303 and "discussed=1" in response.headers["location"]
    page = client.get(response.headers["location"])
    assert f"2026-01-05: policy version 1 discussed with {THERAPIST}" in page.text
    # A double click records it once.
    again = post_form(client, f"{client_url(enrollment)}/discussed", form)
    assert "discussed_before=1" in again.headers["location"]
    assert count(rt, PolicyDiscussion) == 1
    (event,) = events(rt, "policy.discussed_in_session")
    assert event.enrollment_id == enrollment.id
    assert event.detail["policy_version"] == 1 and event.detail["discussed_on"] == "2026-01-05"


@pytest.mark.parametrize("role, allowed", [("front_desk", False), ("admin", True)])
def test_only_therapists_and_the_admin_record_a_discussion(
    client: TestClient, rt: Runtime, role: str, allowed: bool
) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, role)
    assert ("Record that the policy was discussed" in client.get(client_url(enrollment)).text) is (
        allowed
    )
    form = {"policy_version": "1", "discussed_on": "2026-01-05"}
    response = post_form(client, f"{client_url(enrollment)}/discussed", form)
    assert response.status_code == (303 if allowed else 403)
    assert count(rt, PolicyDiscussion) == (1 if allowed else 0)


@pytest.mark.parametrize(
    "form, field, message",
    [
        ({}, "discussed_on", "Enter the day the policy was discussed"),
        ({"discussed_on": "2999-01-01"}, "discussed_on", "That date is in the future"),
        ({"discussed_on": "2026-02-30"}, "discussed_on", "That date doesn&#39;t exist"),
        ({"discussed_on": "5 Jan"}, "discussed_on", "year-month-day"),
        ({"discussed_on": "1999-12-31"}, "discussed_on", "before 2000"),
        ({"discussed_on": "<b>x</b>" * 2000}, "discussed_on", "year-month-day"),
        (
            {"discussed_on": "2026-01-05", "policy_version": "7"},
            "policy_version",
            "Choose one of the published policy versions",
        ),
        (
            {"discussed_on": "2026-01-05", "policy_version": "x" * 10_000},
            "policy_version",
            "Choose one of the published policy versions",
        ),
    ],
)
def test_a_bad_discussion_form_names_the_problem_and_records_nothing(
    client: TestClient, rt: Runtime, form: dict[str, str], field: str, message: str
) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "therapist")
    response = post_form(
        client, f"{client_url(enrollment)}/discussed", {"policy_version": "1", **form}
    )
    assert response.status_code == 422
    assert_error(response.text, field, message)
    assert "<b>" not in response.text
    assert count(rt, PolicyDiscussion) == 0


def test_no_discussion_before_a_policy_is_published(client: TestClient, rt: Runtime) -> None:
    enrollment, _ = invite(rt)
    sign_in(client, rt, "therapist")
    form = {"policy_version": "1", "discussed_on": "2026-01-05"}
    response = post_form(client, f"{client_url(enrollment)}/discussed", form)
    assert response.status_code == 422 and "No policy is published yet" in response.text


# --- paper acknowledgements ----------------------------------------------------------------


def test_front_desk_records_a_paper_acknowledgement(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    form = client.get(f"{client_url(enrollment)}/paper")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text and 'type="file"' in form.text
    response = upload(client, enrollment, signer_names="Jordan Rivers\n\n  Sam   Rivers ")
    assert response.status_code == 303 and "paper=1" in response.headers["location"]
    page = client.get(response.headers["location"])
    assert "Paper acknowledgement recorded." in page.text
    assert "by Jordan Rivers, Sam Rivers" in page.text
    with transaction(rt.engine) as db:
        (row,) = db.exec(select(PaperAcknowledgement)).all()
        assert row.content == PDF and row.content_type == "application/pdf"
        assert row.signer_names == ["Jordan Rivers", "Sam Rivers"] and row.size == len(PDF)
        assert str(row.signed_on) == "2026-01-05" and row.policy_version == 1
    (event,) = events(rt, "paper_acknowledgement.recorded")
    assert event.enrollment_id == enrollment.id and "Jordan" not in str(event.detail)
    # It counts as signed on the board.
    assert "Signed v1 on paper" in client.get("/staff/").text
    # The same scan again (a double click) adds nothing.
    again = upload(client, enrollment, signer_names="Jordan Rivers\nSam Rivers")
    assert "paper_before=1" in again.headers["location"]
    assert count(rt, PaperAcknowledgement) == 1


def test_the_scan_downloads_for_staff_and_each_download_is_audited(
    client: TestClient, rt: Runtime
) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    upload(client, enrollment, PNG, name="C:\\scans\\front page.png", declared="text/plain")
    with transaction(rt.engine) as db:
        (row,) = db.exec(select(PaperAcknowledgement)).all()
    assert row.content_type == "image/png" and row.file_name == "front page.png"
    page = client.get(client_url(enrollment))
    assert f"/paper/{row.id}" in page.text
    response = client.get(f"{client_url(enrollment)}/paper/{row.id}")
    assert response.status_code == 200 and response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    (event,) = events(rt, "paper_acknowledgement.downloaded")
    assert event.enrollment_id == enrollment.id and event.subject_id == row.id
    # Only under its own client, and only for staff.
    other, _ = invite(rt, name="Sam Other", email="sam@example.com")
    assert client.get(f"{client_url(other)}/paper/{row.id}").status_code == 404
    client.cookies.delete("portal_staff")
    assert client.get(f"{client_url(enrollment)}/paper/{row.id}").status_code == 303


@pytest.mark.parametrize(
    "content, name, message",
    [
        (b"MZ\x90\x00 not a scan", "scan.pdf", "isn&#39;t a PDF, PNG or JPEG"),
        (b"<html><script>alert(1)</script>", "scan.png", "isn&#39;t a PDF, PNG or JPEG"),
        (b"", "scan.pdf", "That file is empty"),
        (None, "", "Choose the scanned file"),
    ],
)
def test_bad_scans_are_refused_with_the_reason(
    client: TestClient, rt: Runtime, content: bytes | None, name: str, message: str
) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    response = upload(client, enrollment, content, name=name)
    assert response.status_code == 422
    assert_error(response.text, "scan", message)
    assert "choose the file again" in response.text
    assert 'value="2026-01-05"' in response.text and "Jordan Rivers</textarea>" in response.text
    assert count(rt, PaperAcknowledgement) == 0


def test_a_scan_too_large_is_refused(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    limit = scan_limit(rt.settings)
    response = upload(client, enrollment, JPEG + b"\x00" * (limit + 1 - len(JPEG)))
    assert response.status_code == 422 and "That file is too large" in response.text
    # Past the request cap the middleware refuses before anything is parsed.
    huge = upload(client, enrollment, JPEG + b"\x00" * rt.settings.max_upload_bytes)
    assert huge.status_code == 413
    # Just under the limit is fine.
    assert upload(client, enrollment, JPEG + b"\x00" * (limit - len(JPEG))).status_code == 303
    assert count(rt, PaperAcknowledgement) == 1


def test_two_files_are_refused(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    data = {
        "csrf_token": client.cookies["portal_csrf"],
        "policy_version": "1",
        "signer_names": "Jordan Rivers",
        "signed_on": "2026-01-05",
    }
    files = [("scan", ("a.pdf", PDF, "application/pdf")), ("scan", ("b.pdf", PDF, "x/y"))]
    response = client.post(f"{client_url(enrollment)}/paper", data=data, files=files)
    assert response.status_code == 422 and "Attach one file" in response.text
    assert count(rt, PaperAcknowledgement) == 0


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"signer_names": ""}, "signer_names", "Enter the full name of each person"),
        ({"signer_names": "<script>x</script>"}, "signer_names", "can&#39;t contain &lt; or &gt;"),
        ({"signer_names": "A" * 10_000}, "signer_names", "too long"),
        ({"signer_names": "Ann Lee\nann lee"}, "signer_names", "listed twice"),
        (
            {"signer_names": "\n".join(f"Person {c}" for c in "ABCDEFG")},
            "signer_names",
            "at most 6",
        ),
        ({"signed_on": "2999-12-31"}, "signed_on", "That date is in the future"),
        ({"policy_version": "2"}, "policy_version", "Choose one of the published"),
    ],
)
def test_a_bad_paper_form_names_the_problem_and_records_nothing(
    client: TestClient, rt: Runtime, fields: dict[str, str], field: str, message: str
) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    response = upload(client, enrollment, **fields)
    assert response.status_code == 422
    assert_error(response.text, field, message)
    assert "<script>" not in response.text and "A" * 1001 not in response.text
    assert count(rt, PaperAcknowledgement) == 0


def test_paper_of_the_current_version_clears_must_reacknowledge(
    client: TestClient, rt: Runtime
) -> None:
    first = publish_default(rt)
    enrollment, _ = invite(rt)
    sign_in(client, rt, "front_desk")
    assert upload(client, enrollment).status_code == 303
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        policy_service.publish(
            db,
            first.source_markdown + "\n\nOne more sentence for version two.\n",
            practice,
            actor=Actor("cli", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    board = client.get("/staff/").text
    assert "Must re-acknowledge: signed v1, current v2" in board
    assert "Must re-acknowledge" in client.get(client_url(enrollment)).text
    assert upload(client, enrollment, policy_version="2").status_code == 303
    assert "Signed v2 on paper" in client.get("/staff/").text
    assert "Must re-acknowledge" not in client.get(client_url(enrollment)).text


# --- testimonial consent withdrawn in person ----------------------------------------------


def _consent(rt: Runtime, enrollment: Enrollment) -> None:
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        testimonial_service.decide(
            db,
            row,
            "anonymous",
            ["website"],
            actor=Actor("client", enrollment.id),
            meta=RequestMeta.none(),
            now=utcnow(),
        )


def test_front_desk_records_a_withdrawal_given_in_person(client: TestClient, rt: Runtime) -> None:
    enrollment, _ = invite(rt)
    _consent(rt, enrollment)
    sign_in(client, rt, "front_desk")
    page = client.get(client_url(enrollment))
    assert "withdraw their consent to share their words" in page.text
    url = f"{client_url(enrollment)}/testimonial/withdraw"
    unconfirmed = post_form(client, url, {})
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    response = post_form(client, url, {"confirm": "yes"})
    assert response.status_code == 303 and "testimonial_withdrawn=1" in response.headers["location"]
    with transaction(rt.engine) as db:
        now = testimonial_service.current(db, enrollment.id)
        assert now is not None
        assert (now.kind, now.source, now.choice) == ("withdrawal", "staff", "no")
        assert len(testimonial_service.history(db, enrollment.id)) == 2
    (event,) = events(rt, "testimonial.withdrawn")
    assert event.enrollment_id == enrollment.id and event.detail["via"] == "in_person"
    assert event.actor.startswith("staff:")
    page = client.get(response.headers["location"])
    assert "withdrew their testimonial consent in person" in page.text
    assert "withdraw their consent to share their words" not in page.text
    assert "No (withdrawn)" in client.get("/staff/").text
    # Twice changes nothing and says why.
    again = post_form(client, url, {"confirm": "yes"})
    assert again.status_code == 422 and "already No" in again.text
    assert len(events(rt, "testimonial.withdrawn")) == 1


def test_no_withdrawal_without_a_decision(client: TestClient, rt: Runtime) -> None:
    enrollment, _ = invite(rt)
    sign_in(client, rt, "therapist")
    url = f"{client_url(enrollment)}/testimonial/withdraw"
    response = post_form(client, url, {"confirm": "yes"})
    assert response.status_code == 422 and "never gave testimonial consent" in response.text


def test_nobody_without_a_session_records_anything(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment, _ = invite(rt)
    _consent(rt, enrollment)
    base = client_url(enrollment)
    for url in (f"{base}/discussed", f"{base}/testimonial/withdraw"):
        response = post_form(client, url, {"confirm": "yes", "discussed_on": "2026-01-05"})
        assert response.headers["location"].startswith("/staff/login")
    assert client.get(f"{base}/paper").headers["location"].startswith("/staff/login")
    assert count(rt, PolicyDiscussion) == 0
    assert len(events(rt, "testimonial.withdrawn")) == 0
