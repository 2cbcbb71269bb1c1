"""The testimonial-consent step and its withdrawal link, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from helpers import csrf_token, hidden, post_form, publish_default, start_journey, submit_step
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, col, select, update
from starlette.testclient import TestClient

from portal.audit import AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime
from portal_testimonial import service
from portal_testimonial.choices import CHOICES, NO_WORDS, PLACEMENTS
from portal_testimonial.models import TestimonialDecision
from portal_testimonial.step import (
    CHOICE_MISSING,
    CHOICE_UNKNOWN,
    PLACEMENTS_MISSING,
    PLACEMENTS_UNKNOWN,
    parse,
)

STEP = "/onboarding/testimonial"
NAME, EMAIL = "Jordan Rivers", "jordan@example.com"


# --- helpers -------------------------------------------------------------------------------


def _publish_policy(rt: Runtime) -> None:
    publish_default(rt)


def _fill_earlier_steps(rt: Runtime, enrollment_id: str) -> None:
    """Complete whatever other plugins put before this step, as `portal demo` would."""
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        client = db.get(Client, enrollment.client_id)
        practice = db.get(Practice, 1)
        assert client is not None and practice is not None
        ctx = rt.step_context(db, practice, client, enrollment, RequestMeta.none(), utcnow())
        for spec in rt.wizard.steps:
            if spec.key == "testimonial":
                return
            if not spec.handler.is_complete(ctx):
                spec.handler.demo_fill(ctx)


def reach_step(client: TestClient, rt: Runtime) -> Enrollment:
    _publish_policy(rt)
    enrollment = start_journey(client, rt, name=NAME, email=EMAIL)
    assert submit_step(client, "policy", {"policy_version": "1"}).status_code == 303
    _fill_earlier_steps(rt, enrollment.id)
    return enrollment


def rows(rt: Runtime, enrollment: Enrollment) -> list[TestimonialDecision]:
    with transaction(rt.engine) as db:
        return service.history(db, enrollment.id)


def latest(rt: Runtime, enrollment: Enrollment) -> TestimonialDecision | None:
    with transaction(rt.engine) as db:
        return service.current(db, enrollment.id)


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action == action)))


def choice_inputs(page: str) -> list[str]:
    return re.findall(r'<input type="radio"[^>]*name="choice"[^>]*>', page)


def withdraw_path(decision: TestimonialDecision) -> str:
    return f"/testimonial/withdraw/{decision.withdraw_code}"


def sessionless(client: TestClient) -> TestClient:
    """A second browser: no client session, only what the receipt link gives."""
    return TestClient(client.app, base_url="http://testserver", follow_redirects=False)


# --- the step page -------------------------------------------------------------------------


def test_page_offers_neutral_options_with_nothing_chosen(client: TestClient, rt: Runtime) -> None:
    reach_step(client, rt)
    page = client.get(STEP)
    assert page.status_code == 200
    radios = choice_inputs(page.text)
    assert [re.search(r'value="([^"]+)"', r).group(1) for r in radios] == [  # type: ignore[union-attr]
        "no",
        "anonymous",
        "initials",
        "first_name",
    ]
    assert all("checked" not in radio for radio in radios)
    assert "checked" not in page.text
    assert "changes nothing about your care" in page.text
    assert "not a request for a testimonial" in page.text
    # Every control has a label; both groups are fieldsets with a legend.
    for control_id in re.findall(r'<input type="(?:radio|checkbox)" id="([^"]+)"', page.text):
        assert f'<label for="{control_id}">' in page.text
    assert page.text.count("<fieldset") == 2 and page.text.count("<legend>") == 2
    assert 'style="' not in page.text and "<script>" not in page.text


def test_choosing_no_completes_the_step(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    # Ticks left from considering "yes" never make "no" harder to give.
    response = submit_step(client, "testimonial", {"choice": "no", "placement_print": "yes"})
    assert response.status_code == 303
    assert response.headers["location"] != STEP
    decision = latest(rt, enrollment)
    assert decision is not None
    assert (decision.choice, decision.placements, decision.kind) == ("no", [], "decision")
    assert client.get("/onboarding").headers["location"] != STEP


def test_anonymous_on_website_is_stored(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    response = submit_step(
        client, "testimonial", {"choice": "anonymous", "placement_website": "yes"}
    )
    assert response.status_code == 303
    [decision] = rows(rt, enrollment)
    assert decision.choice == "anonymous"
    assert decision.placements == ["website"]
    assert (decision.kind, decision.source, decision.supersedes_id) == ("decision", "client", None)
    assert decision.client_id == enrollment.client_id
    assert decision.withdraw_code and len(decision.withdraw_code) >= 32


def test_yes_without_a_place_is_refused_and_stores_nothing(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    response = submit_step(client, "testimonial", {"choice": "initials"})
    assert response.status_code == 422
    assert PLACEMENTS_MISSING in response.text
    assert 'id="err-placements"' in response.text
    # The client's own answer comes back; nothing else is ticked.
    [initials] = [r for r in choice_inputs(response.text) if 'value="initials"' in r]
    assert "checked" in initials
    assert rows(rt, enrollment) == []
    assert events(rt, "testimonial.decided") == []


def test_missing_and_unknown_values_are_refused(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    cases = [
        ({}, CHOICE_MISSING),
        ({"choice": "maybe"}, CHOICE_UNKNOWN),
        ({"choice": "<script>alert(1)</script>" * 400}, CHOICE_UNKNOWN),
        ({"choice": "anonymous", "placement_website": "x" * 10_000}, PLACEMENTS_UNKNOWN),
    ]
    for data, message in cases:
        response = submit_step(client, "testimonial", data)
        assert response.status_code == 422, data
        assert message in response.text
        assert "<script>alert" not in response.text
        assert "xxxxxxxxxx" not in response.text
    assert rows(rt, enrollment) == []


def test_redeciding_appends_a_row_and_keeps_the_old(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    assert submit_step(client, "testimonial", {"choice": "no"}).status_code == 303
    [first] = rows(rt, enrollment)
    data = {"choice": "first_name", "placement_print": "yes", "placement_social_media": "yes"}
    assert submit_step(client, "testimonial", data).status_code == 303
    old, new = rows(rt, enrollment)
    assert old.model_dump() == first.model_dump()
    assert new.supersedes_id == old.id
    assert (new.choice, new.placements) == ("first_name", ["social_media", "print"])
    # Coming back shows the client's own answer; sending it unchanged adds nothing.
    page = client.get(STEP).text
    [first_name] = [r for r in choice_inputs(page) if 'value="first_name"' in r]
    assert "checked" in first_name
    assert submit_step(client, "testimonial", data).status_code == 303
    assert len(rows(rt, enrollment)) == 2


def test_replayed_form_counts_once(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    form_id = hidden(client.get(STEP).text, "form_id")
    first = post_form(client, STEP, {"form_id": form_id, "choice": "no"})
    assert first.status_code == 303
    again = post_form(
        client, STEP, {"form_id": form_id, "choice": "anonymous", "placement_website": "yes"}
    )
    assert again.status_code == 409
    [only] = rows(rt, enrollment)
    assert only.choice == "no"


def test_inline_validation_names_the_field_and_stores_nothing(
    client: TestClient, rt: Runtime
) -> None:
    enrollment = reach_step(client, rt)
    headers = {"HX-Request": "true", "HX-Trigger-Name": "placements"}
    response = post_form(client, f"{STEP}/validate", {"choice": "anonymous"}, headers=headers)
    assert response.status_code == 200
    assert PLACEMENTS_MISSING in response.text
    assert 'id="err-placements"' in response.text
    headers["HX-Trigger-Name"] = "choice"
    fine = post_form(client, f"{STEP}/validate", {"choice": "no"}, headers=headers)
    assert 'id="err-choice"' in fine.text and "Please" not in fine.text
    assert rows(rt, enrollment) == []


def test_summary_says_it_plainly_with_the_withdrawal_link(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    spec = rt.wizard.get("testimonial")
    assert spec is not None

    def summary() -> list[tuple[str, tuple[str, ...]]]:
        with transaction(rt.engine) as db:
            fresh = db.get(Enrollment, enrollment.id)
            assert fresh is not None
            person, practice = db.get(Client, fresh.client_id), db.get(Practice, 1)
            assert person is not None and practice is not None
            ctx = rt.step_context(db, practice, person, fresh, RequestMeta.none(), utcnow())
            return [(item.heading, item.lines) for item in spec.handler.summary(ctx)]

    assert summary() == []
    submit_step(client, "testimonial", {"choice": "anonymous", "placement_website": "yes"})
    decision = latest(rt, enrollment)
    assert decision is not None
    url = f"http://testserver{withdraw_path(decision)}"
    assert service.withdraw_url(rt.settings, decision) == url
    assert summary() == [
        (
            "Testimonials",
            (
                "Yes, anonymously, on: The practice's website",
                f"You can withdraw this at any time: {url}",
            ),
        )
    ]
    submit_step(client, "testimonial", {"choice": "no"})
    assert summary() == [("Testimonials", (NO_WORDS,))]


# --- withdrawal through the receipt link ---------------------------------------------------


def test_withdrawal_link_get_shows_post_records_once(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    submit_step(client, "testimonial", {"choice": "initials", "placement_print": "yes"})
    decision = latest(rt, enrollment)
    assert decision is not None
    path = withdraw_path(decision)
    browser = sessionless(client)

    page = browser.get(path)
    assert page.status_code == 200
    assert "Yes, with your initials, on: Printed materials such as brochures" in page.text
    assert '<form method="post"' in page.text and "Withdraw my consent" in page.text
    assert NAME not in page.text and EMAIL not in page.text
    assert len(rows(rt, enrollment)) == 1  # a GET (or a mail scanner) changes nothing

    done = post_form(browser, path, {})
    assert done.status_code == 200
    assert "Your consent is withdrawn" in done.text
    old, withdrawal = rows(rt, enrollment)
    assert old.model_dump() == decision.model_dump()
    assert (withdrawal.kind, withdrawal.choice, withdrawal.placements) == ("withdrawal", "no", [])
    assert withdrawal.supersedes_id == decision.id
    assert withdrawal.withdraw_code is None
    current = latest(rt, enrollment)
    assert current is not None and current.id == withdrawal.id

    again = post_form(browser, path, {})
    assert again.status_code == 200
    assert "Already withdrawn" in again.text
    assert len(rows(rt, enrollment)) == 2
    assert "nothing to withdraw" in browser.get(path).text
    assert len(events(rt, "testimonial.withdrawn")) == 1


def test_withdrawal_needs_the_csrf_token(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    submit_step(client, "testimonial", {"choice": "anonymous", "placement_website": "yes"})
    decision = latest(rt, enrollment)
    assert decision is not None
    browser = sessionless(client)
    csrf_token(browser)
    assert browser.post(withdraw_path(decision), data={}).status_code == 403
    assert len(rows(rt, enrollment)) == 1


def test_an_older_receipt_withdraws_the_consent_in_force(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    submit_step(client, "testimonial", {"choice": "anonymous", "placement_website": "yes"})
    first = latest(rt, enrollment)
    submit_step(client, "testimonial", {"choice": "initials", "placement_print": "yes"})
    second = latest(rt, enrollment)
    assert first is not None and second is not None and first.id != second.id
    assert post_form(sessionless(client), withdraw_path(first), {}).status_code == 200
    current = latest(rt, enrollment)
    assert current is not None
    assert (current.kind, current.supersedes_id) == ("withdrawal", second.id)


def test_simultaneous_withdrawals_record_one_row(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrollment = reach_step(client, rt)
    submit_step(client, "testimonial", {"choice": "anonymous", "placement_website": "yes"})
    decision = latest(rt, enrollment)
    assert decision is not None and decision.withdraw_code is not None
    code = decision.withdraw_code
    read_current = service.current

    def slow_current(db: Session, enrollment_id: str) -> TestimonialDecision | None:
        # Hold the read open so that, unserialised, both clicks would see the same "yes".
        found = read_current(db, enrollment_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(service, "current", slow_current)
    barrier = threading.Barrier(2)

    def click(_: int) -> bool:
        barrier.wait()
        with transaction(rt.engine) as db:
            outcome = service.withdraw_outcome(db, code, RequestMeta.none(), utcnow())
            assert outcome is not None
            return outcome.recorded

    with ThreadPoolExecutor(2) as pool:
        recorded = sorted(pool.map(click, range(2)))
    assert recorded == [False, True]
    monkeypatch.undo()
    assert [row.kind for row in rows(rt, enrollment)] == ["decision", "withdrawal"]


def test_unknown_code_gets_a_friendly_404(client: TestClient, rt: Runtime) -> None:
    browser = sessionless(client)
    for code in ("not-a-code", "x" * 5000):
        page = browser.get(f"/testimonial/withdraw/{code}")
        assert page.status_code == 404
        assert "couldn't find this link" in page.text
        assert post_form(browser, f"/testimonial/withdraw/{code}", {}).status_code == 404
    with transaction(rt.engine) as db:
        assert list(db.exec(select(TestimonialDecision))) == []
        assert service.withdraw(db, "not-a-code", RequestMeta.none(), utcnow()) is None


def test_audit_events_record_choices_without_personal_data(client: TestClient, rt: Runtime) -> None:
    enrollment = reach_step(client, rt)
    submit_step(client, "testimonial", {"choice": "first_name", "placement_website": "yes"})
    decision = latest(rt, enrollment)
    assert decision is not None
    post_form(sessionless(client), withdraw_path(decision), {})
    [decided] = events(rt, "testimonial.decided")
    [withdrawn] = events(rt, "testimonial.withdrawn")
    assert decided.actor == f"client:{enrollment.id}"
    assert (decided.subject_type, decided.subject_id) == ("enrollment", enrollment.id)
    assert decided.detail["choice"] == "first_name"
    assert decided.detail["placements"] == ["website"]
    assert withdrawn.subject_id == enrollment.id
    assert withdrawn.detail["withdrawn_id"] == decision.id
    for event in (decided, withdrawn):
        text = repr(event.detail)
        assert NAME not in text and EMAIL not in text
        assert str(decision.withdraw_code) not in text  # the code is a credential


# --- parsing, without a database -----------------------------------------------------------


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=200), max_size=8))
def test_parse_never_raises_and_never_echoes_junk(form: dict[str, str]) -> None:
    choice, placements, errors = parse(form)
    assert choice in {"", *CHOICES}
    assert set(placements) <= PLACEMENTS.keys()
    assert errors or choice


def test_parse_ignores_ticks_for_no_and_orders_places() -> None:
    assert parse({"choice": "no", "placement_website": "yes"}) == ("no", [], {})
    form = {"choice": "anonymous", "placement_print": "yes", "placement_website": "yes"}
    assert parse(form) == ("anonymous", ["website", "print"], {})


def test_board_cell_follows_the_chain_when_clocks_disagree(client: TestClient, rt: Runtime) -> None:
    """The board shows the decision in force by the supersedes chain, as the API and the
    client's page do, even when the newer row's timestamp is not the later one (a clock
    stepped back between two requests)."""
    from portal.staff.board import Cell
    from portal_testimonial.choices import decision_words
    from portal_testimonial.staff_view import board_cells

    enrollment = reach_step(client, rt)
    assert submit_step(client, "testimonial", {"choice": "no"}).status_code == 303
    data = {"choice": "initials", "placement_website": "yes"}
    assert submit_step(client, "testimonial", data).status_code == 303
    old, new = rows(rt, enrollment)
    with transaction(rt.engine) as db:
        db.execute(
            update(TestimonialDecision)
            .where(col(TestimonialDecision.id) == new.id)
            .values(created_at=old.created_at - timedelta(seconds=5))
        )
    with transaction(rt.engine, read_only=True) as db:
        cell = board_cells(db, [enrollment.id])[enrollment.id]
        in_force = service.current(db, enrollment.id)
    assert in_force is not None and in_force.id == new.id
    assert cell == Cell(decision_words("initials", ["website"]), "ok")
