"""Two tabs, a double click, two signers at the same moment: each submission counts once.

Real concurrency: a uvicorn server on loopback, browsers in threads released together by a
barrier, on SQLite and PostgreSQL. (test_wizard.py and the step tests cover the same replays one
after another.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from helpers import invite, publish_default
from http_journey import CONTACT, SIGN, browser, link_path, load_form, open_link, post_step
from http_journey import submit as submit_step
from processes import serve_in_thread
from sqlmodel import col, select
from starlette.applications import Starlette

from portal.audit import AuditEvent
from portal.db import transaction
from portal.mail_catcher import MailCatcher
from portal.models import Enrollment, EnrollmentStatus, FormSubmission
from portal.outbox import OutboxMessage
from portal.runtime import Runtime
from portal_contact.models import ContactPreference
from portal_signature.models import Acknowledgement, Signature, SignerSlot

CLIENT = "Jordan Rivers"
PARTNER = "Casey Rivers"
ROUNDS = 4  # each round is a fresh race; more rounds, more chances to overlap


@pytest.fixture
def live(app: Starlette, rt: Runtime) -> Iterator[str]:
    publish_default(rt)
    with serve_in_thread(app) as base:
        yield base


Post = tuple[httpx.Client, str, dict[str, str], dict[str, str]]  # tab, step, loaded form, answers


def at_the_same_moment(*posts: Post) -> list[httpx.Response]:
    """Submit each loaded form from its own thread, all released together."""
    barrier = threading.Barrier(len(posts))

    def run(post: Post) -> httpx.Response:
        barrier.wait()
        return post_step(*post)

    with ThreadPoolExecutor(len(posts)) as pool:
        return list(pool.map(run, posts))


@pytest.fixture
def tabs(live: str, rt: Runtime) -> Iterator[tuple[Enrollment, list[httpx.Client]]]:
    """A client who followed their link and read the policy in one tab, and a second tab."""
    enrollment, link = invite(rt, name=CLIENT, email="jordan@example.com")
    with browser(live) as first:
        assert open_link(first, link_path(link)).status_code == 303
        assert submit_step(first, "policy", {}).status_code == 303
        with browser(live, first.cookies) as second:
            yield enrollment, [first, second]


def contact_rows(rt: Runtime, enrollment: Enrollment) -> list[ContactPreference]:
    with transaction(rt.engine, read_only=True) as db:
        query = select(ContactPreference).where(ContactPreference.enrollment_id == enrollment.id)
        return list(db.exec(query.order_by(col(ContactPreference.revision))))


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action == action)))


def assert_chained(rows: list[ContactPreference]) -> None:
    """Revisions 1..n, each superseding the one before: one line of history, no fork."""
    assert [row.revision for row in rows] == list(range(1, len(rows) + 1))
    assert [row.supersedes_id for row in rows] == [None, *(row.id for row in rows[:-1])]


def test_a_double_click_counts_once(
    tabs: tuple[Enrollment, list[httpx.Client]], rt: Runtime
) -> None:
    enrollment, [tab, _] = tabs
    for round_ in range(ROUNDS):
        form = load_form(tab, "contact")
        number = f"(206) 555-010{round_}"
        data = {**CONTACT, "phone_0_number": number}
        answers = at_the_same_moment(
            (tab, "contact", form, data),
            (tab, "contact", form, data),
        )
        assert sorted(a.status_code for a in answers) == [303, 409], [a.text for a in answers]
        rows = contact_rows(rt, enrollment)
        assert len(rows) == round_ + 1
        assert f"555010{round_}" in str(rows[-1].choices)
    assert_chained(rows)
    assert len(events(rt, "contact_preferences.recorded")) == ROUNDS
    with transaction(rt.engine, read_only=True) as db:
        assert len(
            db.exec(select(FormSubmission).where(FormSubmission.step == "contact")).all()
        ) == (ROUNDS)


def test_two_tabs_saving_the_same_step_keep_one_line_of_history(
    tabs: tuple[Enrollment, list[httpx.Client]], rt: Runtime
) -> None:
    enrollment, [tab, other] = tabs
    for round_ in range(ROUNDS):
        # Two forms (two form ids), each tab with different answers.
        mine, theirs = load_form(tab, "contact"), load_form(other, "contact")
        cell = {**CONTACT, "phone_0_number": f"(206) 555-02{round_:02d}"}
        home = {
            **CONTACT,
            "phone_0_number": f"(206) 555-03{round_:02d}",
            "phone_0_kind": "landline",
        }
        answers = at_the_same_moment(
            (tab, "contact", mine, cell),
            (other, "contact", theirs, home),
        )
        # Both were saved, one after the other: neither tab's answer is lost or forked.
        assert [a.status_code for a in answers] == [303, 303], [a.text for a in answers]
    rows = contact_rows(rt, enrollment)
    assert len(rows) == 2 * ROUNDS
    assert_chained(rows)
    recorded = events(rt, "contact_preferences.recorded")
    assert sorted(e.subject_id for e in recorded) == sorted(row.id for row in rows)


def test_two_tabs_choosing_who_signs_leave_one_acknowledgement(
    tabs: tuple[Enrollment, list[httpx.Client]], rt: Runtime
) -> None:
    enrollment, [tab, other] = tabs
    submit_step(tab, "contact", CONTACT)
    submit_step(tab, "testimonial", {"choice": "no"})
    mine, theirs = load_form(tab, "sign"), load_form(other, "sign")
    answers = at_the_same_moment(
        (tab, "sign", mine, {"party": "individual"}),
        (other, "sign", theirs, {"party": "adults", "adult_1_name": PARTNER}),
    )
    assert all(a.status_code in (200, 422) for a in answers), [a.text for a in answers]
    with transaction(rt.engine, read_only=True) as db:
        acks = db.exec(
            select(Acknowledgement).where(Acknowledgement.enrollment_id == enrollment.id)
        ).all()
        slots = db.exec(select(SignerSlot)).all()
    # At most one change superseding the first plan, never two plans side by side.
    heads = [a for a in acks if a.id not in {b.supersedes_id for b in acks}]
    assert len(heads) == 1 and 1 <= len(acks) <= 2
    for ack in acks:
        client_side = [s for s in slots if s.acknowledgement_id == ack.id and s.role != "therapist"]
        assert len(client_side) == (1 if ack.party == "individual" else 2)


def test_two_signers_at_the_same_moment(
    tabs: tuple[Enrollment, list[httpx.Client]],
    rt: Runtime,
    mail: MailCatcher,
    deliver_mail: Callable[[], tuple[int, int]],
) -> None:
    enrollment, [tab, other] = tabs
    with_email = {
        **CONTACT,
        "email_address": "jordan.r@example.com",
        "email_warning_accepted": "yes",
    }
    submit_step(tab, "contact", with_email)
    submit_step(tab, "testimonial", {"choice": "no"})
    submit_step(tab, "sign", {"party": "adults", "adult_1_name": PARTNER})

    # Both signers press "Sign" on the page they see; it shows the first signer's slot.
    first, second = load_form(tab, "sign"), load_form(other, "sign")
    answers = at_the_same_moment(
        (tab, "sign", first, {**SIGN, "typed_name": CLIENT}),
        (other, "sign", second, {**SIGN, "typed_name": PARTNER}),
    )
    # The first signer's signature counts; the second is told (whoever came first) and
    # nothing of theirs is stored on someone else's slot.
    assert [a.status_code for a in answers] == [200, 422], [a.text for a in answers]
    with transaction(rt.engine, read_only=True) as db:
        assert [s.typed_name for s in db.exec(select(Signature))] == [CLIENT]

    # Now both tabs show the second signer's slot, and both submit it at once.
    mine, theirs = load_form(tab, "sign"), load_form(other, "sign")
    assert mine["slot_id"] == theirs["slot_id"]
    answers = at_the_same_moment(
        (tab, "sign", mine, {**SIGN, "typed_name": PARTNER}),
        (other, "sign", theirs, {**SIGN, "typed_name": PARTNER}),
    )
    assert [a.status_code for a in answers] == [303, 303], [a.text for a in answers]
    assert {a.headers["location"] for a in answers} == {"/onboarding/done"}

    with transaction(rt.engine, read_only=True) as db:
        signatures = db.exec(select(Signature)).all()
        receipts = db.exec(select(OutboxMessage).where(OutboxMessage.purpose == "receipt")).all()
        row = db.get(Enrollment, enrollment.id)
    assert sorted(s.typed_name for s in signatures) == sorted([CLIENT, PARTNER])
    assert len({s.slot_id for s in signatures}) == 2
    assert row is not None and row.status == EnrollmentStatus.COMPLETE
    assert len(events(rt, "acknowledgement.signed")) == 2
    assert len(events(rt, "onboarding.completed")) == 1
    assert len(events(rt, "receipt.emailed")) == 1
    assert len(receipts) == 1
    deliver_mail()
    assert [m.subject for m in mail.mails if m.envelope_to == ["jordan.r@example.com"]] == [
        "Harbor Light Counseling: your signed acknowledgement"
    ]
