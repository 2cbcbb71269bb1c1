"""The contact-channels step over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import hidden, post_form, publish_default, start_journey, submit_step
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime
from portal_contact import service
from portal_contact.choices import EMAIL_WARNING_MESSAGE, INVALID_PHONE_MESSAGE
from portal_contact.models import ContactPreference
from portal_contact.step import ContactStep
from portal_contact.wording import EMAIL_WARNING_TEXT, NOT_OFFERED, NOT_OFFERED_SUMMARY

CELL = "(201) 555-0123"
LANDLINE = "(206) 555-0148"
EMAIL = "jordan.rivers@example.com"


def phone(i: int, number: str, kind: str = "cell", voicemail: str = "none") -> dict[str, str]:
    return {
        f"phone_{i}_number": number,
        f"phone_{i}_kind": kind,
        f"phone_{i}_voicemail": voicemail,
        f"phone_{i}_rank": "",
    }


def with_email(address: str = EMAIL, accepted: bool = True) -> dict[str, str]:
    form = {"email_address": address, "email_rank": ""}
    if accepted:
        form["email_warning_accepted"] = "yes"
    return form


def at_contact_step(client: TestClient, rt: Runtime) -> Enrollment:
    """Publish the policy, start a journey and get past the policy step."""
    publish_default(rt)
    enrollment = start_journey(client, rt)
    assert submit_step(client, "policy", {"policy_version": "1"}).status_code == 303
    return enrollment


def rows(rt: Runtime, enrollment: Enrollment) -> list[ContactPreference]:
    with transaction(rt.engine) as db:
        return service.history(db, enrollment.id)


def save(client: TestClient, data: dict[str, Any]) -> Any:
    return submit_step(client, "contact", {**data, "action": "save"})


def field_error(page: str, name: str) -> str:
    match = re.search(
        rf'<span class="field-error" id="err-{re.escape(name)}"[^>]*>([^<]*)</span>', page
    )
    assert match, f"no error element for {name}"
    return match.group(1)


# --- storing -----------------------------------------------------------------------------


def test_phone_and_email_with_warning_are_recorded(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    response = save(client, phone(0, CELL, voicemail="callback_only") | with_email())
    assert response.status_code == 303
    assert response.headers["location"] != "/onboarding/contact"

    [row] = rows(rt, enrollment)
    assert row.revision == 1 and row.supersedes_id is None and row.source == "client"
    assert row.client_id == enrollment.client_id
    assert row.email_warning_accepted_at is not None
    assert row.email_warning_accepted_at.tzinfo is not None
    assert row.email_warning_text == EMAIL_WARNING_TEXT
    assert "not fully secure" in row.email_warning_text
    assert row.choices["phones"][0]["number_e164"] == "+12015550123"
    assert row.choices["phones"][0]["voicemail"] == "callback_only"
    with transaction(rt.engine) as db:
        assert service.allows_email(db, enrollment.id) == EMAIL
        choices = service.current_choices(db, enrollment.id)
    assert choices is not None and choices.email is not None
    assert [p.rank for p in choices.phones] == [1] and choices.email.rank == 2


def test_phone_only_records_no_email_acceptance(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    # A ticked box with no address accepts nothing.
    data = phone(0, LANDLINE, kind="landline") | {"email_warning_accepted": "yes"}
    assert save(client, data).status_code == 303
    [row] = rows(rt, enrollment)
    assert row.email_warning_accepted_at is None and row.email_warning_text is None
    assert row.choices["email"] is None and row.choices["email_warning_accepted"] is False
    with transaction(rt.engine) as db:
        assert service.allows_email(db, enrollment.id) is None


def test_second_submission_supersedes_and_keeps_the_first(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    assert save(client, phone(0, CELL) | with_email()).status_code == 303
    [first] = rows(rt, enrollment)

    data = phone(0, LANDLINE, kind="landline", voicemail="details") | phone(1, CELL)
    data["phone_1_rank"] = "1"
    assert save(client, data).status_code == 303

    newest, oldest = rows(rt, enrollment)
    assert newest.revision == 2 and newest.supersedes_id == first.id
    assert newest.created_at >= first.created_at
    assert newest.email_warning_accepted_at is None
    # The first request is untouched: same content, same acceptance time.
    assert oldest.id == first.id and oldest.choices == first.choices
    assert oldest.email_warning_accepted_at == first.email_warning_accepted_at
    assert oldest.email_warning_text == EMAIL_WARNING_TEXT
    with transaction(rt.engine) as db:
        assert service.allows_email(db, enrollment.id) is None
        current = service.current_choices(db, enrollment.id)
    assert current is not None
    assert [(p.kind, p.rank) for p in current.phones] == [("cell", 1), ("landline", 2)]


def test_saving_the_same_choices_again_adds_nothing(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    data = phone(0, CELL) | with_email()
    assert save(client, data).status_code == 303
    assert save(client, data).status_code == 303
    assert len(rows(rt, enrollment)) == 1


def test_returning_client_sees_their_choices_but_must_tick_again(
    client: TestClient, rt: Runtime
) -> None:
    at_contact_step(client, rt)
    assert save(client, phone(0, CELL, voicemail="practice_name") | with_email()).status_code == 303
    page = client.get("/onboarding/contact").text
    assert f'value="{CELL}"' in page
    assert f'value="{EMAIL}"' in page
    assert re.search(r'value="practice_name" checked', page)
    assert re.search(r'<option value="cell" selected>', page)
    assert not re.search(r'name="email_warning_accepted" value="yes"\s*checked', page)


def test_replayed_form_stores_once(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    page = client.get("/onboarding/contact").text
    data = {"form_id": hidden(page, "form_id"), "action": "save", **phone(0, CELL)}
    assert post_form(client, "/onboarding/contact", data).status_code == 303
    assert post_form(client, "/onboarding/contact", data).status_code == 409
    assert len(rows(rt, enrollment)) == 1


def test_audit_event_has_counts_and_no_contact_details(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    data = phone(0, CELL) | phone(1, LANDLINE, kind="landline") | with_email()
    assert save(client, data).status_code == 303
    [row] = rows(rt, enrollment)
    with transaction(rt.engine) as db:
        events = list(
            db.exec(select(AuditEvent).where(AuditEvent.action == "contact_preferences.recorded"))
        )
    [event] = events
    assert event.subject_type == "contact_preference" and event.subject_id == row.id
    assert event.actor == f"client:{enrollment.id}"
    assert event.detail["phones"] == 2 and event.detail["emails"] == 1
    dumped = json.dumps(event.detail)
    for secret in ("555", "0123", "0148", "+1201", "jordan", "example.com", "@"):
        assert secret not in dumped


# --- the page ----------------------------------------------------------------------------


def test_page_offers_nothing_preselected_and_lists_channels_not_offered(
    client: TestClient, rt: Runtime
) -> None:
    at_contact_step(client, rt)
    page = client.get("/onboarding/contact")
    assert page.status_code == 200
    text = page.text
    assert " checked" not in text and " selected" not in text
    assert 'class="not-offered"' in text
    for channel, reason in NOT_OFFERED:
        assert channel in text
        assert reason in text
    # The warning comes before the email field, and the box is a real checkbox.
    assert text.index('class="warning"') < text.index('name="email_address"')
    assert (
        'type="checkbox" id="f-email_warning_accepted" name="email_warning_accepted" value="yes"'
        in text
    )
    assert 'hx-post="/onboarding/contact/validate"' in text
    assert 'type="tel"' in text and 'autocomplete="tel"' in text
    assert "<details" in text and " open" not in text.split("<details", 1)[1].split(">", 1)[0]
    assert "<script>" not in text.split("<body", 1)[1]
    assert "style=" not in text


def test_bad_phone_is_shown_at_the_field_and_nothing_is_stored(
    client: TestClient, rt: Runtime
) -> None:
    enrollment = at_contact_step(client, rt)
    data = phone(0, "12345", voicemail="details") | with_email()
    response = save(client, data)
    assert response.status_code == 422
    assert field_error(response.text, "phone_0_number") == INVALID_PHONE_MESSAGE.replace(
        "'", "&#39;"
    )
    assert 'value="12345"' in response.text
    assert f'value="{EMAIL}"' in response.text
    assert re.search(r'value="details" checked', response.text)
    assert 'aria-invalid="true"' in response.text
    assert rows(rt, enrollment) == []


def test_error_in_a_later_row_opens_the_extra_phones(client: TestClient, rt: Runtime) -> None:
    at_contact_step(client, rt)
    response = save(client, phone(0, CELL) | phone(1, "999", kind="work"))
    assert response.status_code == 422
    assert '<details class="more-phones" open>' in response.text
    assert field_error(response.text, "phone_1_number")


def test_email_without_the_warning_is_refused(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    response = save(client, phone(0, CELL) | with_email(accepted=False))
    assert response.status_code == 422
    assert field_error(response.text, "email_warning_accepted") == EMAIL_WARNING_MESSAGE
    assert rows(rt, enrollment) == []


def test_nothing_given_is_reported_at_the_top(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    response = save(client, {})
    assert response.status_code == 422
    assert "at least one way to reach you" in field_error(response.text, "__all__")
    assert 'id="f-__all__"' in response.text
    assert rows(rt, enrollment) == []


@pytest.mark.parametrize(
    "data",
    [
        phone(0, "9" * 10_000) | with_email("a" * 10_000),
        phone(0, "<script>alert(1)</script>", kind="<b>cell</b>", voicemail="<i>x</i>")
        | with_email('"><img src=x onerror=alert(1)>@example.com'),
        {
            "phone_0_number": CELL,
            "phone_0_kind": "sms",
            "phone_0_voicemail": "text",
            "phone_0_rank": "x" * 10_000,
            "unknown_field": "<b>hi</b>",
        },
    ],
)
def test_hostile_input_is_refused_not_crashed(
    client: TestClient, rt: Runtime, data: dict[str, str]
) -> None:
    enrollment = at_contact_step(client, rt)
    response = save(client, data)
    assert response.status_code == 422
    assert "<script>alert" not in response.text
    assert "<img src=x" not in response.text
    assert "<b>cell</b>" not in response.text
    assert len(response.text) < 100_000
    assert rows(rt, enrollment) == []


def test_html_is_escaped_when_echoed(client: TestClient, rt: Runtime) -> None:
    at_contact_step(client, rt)
    response = save(client, phone(0, "<script>alert(1)</script>"))
    assert response.status_code == 422
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


def test_htmx_submit_gets_the_form_fragment(client: TestClient, rt: Runtime) -> None:
    at_contact_step(client, rt)
    page = client.get("/onboarding/contact").text
    data = {"form_id": hidden(page, "form_id"), "action": "save", **phone(0, "12345")}
    response = post_form(client, "/onboarding/contact", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<div id="step">')
    assert "err-phone_0_number" in response.text


# --- inline validation -------------------------------------------------------------------


def validate(client: TestClient, field: str, data: dict[str, str]) -> Any:
    return post_form(
        client,
        "/onboarding/contact/validate",
        data,
        headers={"HX-Request": "true", "HX-Trigger-Name": field},
    )


def test_inline_validation_returns_the_phone_error(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    response = validate(client, "phone_0_number", phone(0, "12345"))
    assert response.status_code == 200
    assert 'id="err-phone_0_number"' in response.text
    assert field_error(response.text, "phone_0_number") == INVALID_PHONE_MESSAGE.replace(
        "'", "&#39;"
    )
    fine = validate(client, "phone_0_number", phone(0, CELL) | with_email(accepted=False))
    assert field_error(fine.text, "phone_0_number") == ""
    email = validate(client, "email_address", {"email_address": "jo@"})
    assert "valid email address" in field_error(email.text, "email_address")
    # A valid form validated inline is still not stored.
    validate(client, "phone_0_number", phone(0, CELL))
    assert rows(rt, enrollment) == []


def test_validate_action_posted_without_htmx_stores_nothing(
    client: TestClient, rt: Runtime
) -> None:
    enrollment = at_contact_step(client, rt)
    response = submit_step(client, "contact", {**phone(0, CELL), "action": "validate"})
    assert response.status_code == 200
    assert f'value="{CELL}"' in response.text
    assert rows(rt, enrollment) == []


# --- summary, demo data, races -----------------------------------------------------------


def _context(rt: Runtime, db: Any, enrollment: Enrollment) -> Any:
    practice = db.get(Practice, 1)
    client = db.get(Client, enrollment.client_id)
    fresh = db.get(Enrollment, enrollment.id)
    return rt.step_context(db, practice, client, fresh, RequestMeta.none(), utcnow())


def test_summary_in_plain_words(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    assert save(client, phone(0, CELL, voicemail="none") | with_email()).status_code == 303
    with transaction(rt.engine) as db:
        items = ContactStep().summary(_context(rt, db, enrollment))
    [item] = items
    assert item.heading == "How we may contact you"
    assert item.lines == (
        f"Cell {CELL}: No voicemail",
        f"Email {EMAIL}: scheduling and administrative matters only",
        NOT_OFFERED_SUMMARY,
    )


def test_demo_fill_records_a_cell_phone(client: TestClient, rt: Runtime) -> None:
    enrollment = at_contact_step(client, rt)
    with transaction(rt.engine) as db:
        step = ContactStep()
        ctx = _context(rt, db, enrollment)
        assert step.summary(ctx) == [] and not step.is_complete(ctx)
        step.demo_fill(ctx)
        assert step.is_complete(ctx)
    with transaction(rt.engine) as db:
        choices = service.current_choices(db, enrollment.id)
        assert service.allows_email(db, enrollment.id) is None
    assert choices is not None and choices.email is None
    [cell] = choices.phones
    assert (cell.kind, cell.voicemail) == ("cell", "practice_name")


def test_concurrent_writer_is_reported_not_crashed(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrollment = at_contact_step(client, rt)
    assert save(client, phone(0, CELL)).status_code == 303
    # Both writers saw no earlier row, so both try to write revision 1.
    monkeypatch.setattr(service, "latest", lambda db, enrollment_id, as_of=None: None)
    response = save(client, phone(0, LANDLINE, kind="landline"))
    assert response.status_code == 422
    assert "another window" in field_error(response.text, "__all__")
    assert len(rows(rt, enrollment)) == 1
