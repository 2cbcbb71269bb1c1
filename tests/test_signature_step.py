"""The acknowledgement-and-signature step: who signs, e-sign consent, each signature."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from helpers import hidden, post_form, start_journey, submit_step
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, EnrollmentStatus, FormSubmission, Practice
from portal.runtime import Runtime
from portal.wizard import Wizard
from portal_policy import service as policy_service
from portal_policy.models import PolicyVersion
from portal_policy.rendering import default_policy_source
from portal_signature import esign
from portal_signature.models import Acknowledgement, Party, Role, Signature, SignerSlot
from portal_signature.step import ACK_MISSING, CONSENT_MISSING, LOCKED

CLIENT = "Jordan Rivers"
PARTNER = "Sam Taylor"
MEANING_V1 = "Acknowledges the Social Media and Communications Policy, version 1"

# -- helpers shared with test_receipt.py ---------------------------------------------------


def publish(rt: Runtime, extra: str = "") -> PolicyVersion:
    """Publish the default policy (with `extra` appended, to make a new version)."""
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        return policy_service.publish(
            db,
            default_policy_source() + extra,
            practice,
            actor=Actor("cli", "t"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )


def at_sign_step(client: TestClient, rt: Runtime) -> Enrollment:
    """Publish the policy, invite a client and complete every step before "sign"."""
    publish(rt)
    enrollment = start_journey(client, rt)
    assert submit_step(client, "policy", {"policy_version": "1"}).status_code == 303
    return enrollment


def choose(client: TestClient, **data: str) -> Any:
    return submit_step(client, "sign", {"phase": "who", "action": "save", **data})


def sign(client: TestClient, typed_name: str, **overrides: str) -> Any:
    """Open the sign page and sign for whoever it asks for, ticking both boxes."""
    page = client.get("/onboarding/sign")
    assert page.status_code == 200, page.text
    form = {
        "form_id": hidden(page.text, "form_id"),
        "phase": "sign",
        "slot_id": hidden(page.text, "slot_id"),
        "policy_version": hidden(page.text, "policy_version"),
        "esign_consent": "yes",
        "acknowledge": "yes",
        "typed_name": typed_name,
        "action": "save",
    }
    form.update(overrides)
    return post_form(client, "/onboarding/sign", {k: v for k, v in form.items() if v is not None})


def rows(rt: Runtime, model: Any) -> list[Any]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(model)))


def enrollment_status(rt: Runtime, enrollment: Enrollment) -> str:
    with transaction(rt.engine) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        return str(row.status)


def field_error(page: str, name: str) -> str:
    match = re.search(rf'<span class="field-error" id="err-{re.escape(name)}"[^>]*>([^<]*)<', page)
    assert match, f"no error slot for {name!r}"
    return html.unescape(match.group(1))


def narrowed_steps(rt: Runtime) -> Iterator[Callable[..., None]]:
    """Run the journey with only the policy and signature steps (plus any keys asked for).

    Other step plugins are developed and tested on their own; here the wizard is narrowed so
    these tests say what this step does, whatever else is registered.
    """
    full = rt.wizard

    def narrow(*keys: str) -> None:
        wanted = {"policy", "sign", *keys}
        rt.wizard = Wizard([spec for spec in full.steps if spec.key in wanted])

    narrow()
    yield narrow
    rt.wizard = full


@pytest.fixture
def steps(rt: Runtime) -> Iterator[Callable[..., None]]:
    yield from narrowed_steps(rt)


# -- who signs -----------------------------------------------------------------------------


def test_who_signs_page_preselects_nothing(client: TestClient, rt: Runtime, steps: Any) -> None:
    at_sign_step(client, rt)
    page = client.get("/onboarding/sign")
    assert page.status_code == 200
    assert "Who is signing?" in page.text
    assert "<legend>Who is signing?</legend>" in page.text
    radios = re.findall(r'<input type="radio"[^>]*>', page.text)
    assert len(radios) == 3
    assert not any("checked" in radio for radio in radios)
    assert 'value="add_signer"' in page.text
    assert 'class="primary" name="action" value="save"' in page.text
    assert "style=" not in page.text
    assert "<script>" not in page.text


def test_single_signer_journey_completes(client: TestClient, rt: Runtime, steps: Any) -> None:
    enrollment = at_sign_step(client, rt)
    chosen = choose(client, party="individual")
    assert chosen.status_code == 200
    assert f"{CLIENT}, please sign" in chosen.text
    assert "Consent to sign electronically" in chosen.text
    assert "I have read this policy, understand it, accept it, and was offered a copy." in (
        chosen.text
    )
    # Case and extra spaces don't matter.
    signed = sign(client, "  jordan   RIVERS ")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/onboarding/done"
    assert enrollment_status(rt, enrollment) == EnrollmentStatus.COMPLETE
    done = client.get("/onboarding/done")
    assert done.status_code == 200
    assert "Download your signed copy (PDF)" in done.text
    assert 'href="/onboarding/receipt.pdf"' in done.text
    [signature] = rows(rt, Signature)
    assert signature.typed_name == "jordan RIVERS"
    assert signature.meaning == MEANING_V1


def test_two_adults_sign_one_after_the_other(client: TestClient, rt: Runtime, steps: Any) -> None:
    enrollment = at_sign_step(client, rt)
    chosen = choose(client, party="adults", adult_1_name=PARTNER)
    assert chosen.status_code == 200
    assert f"{CLIENT}, please sign" in chosen.text

    first = sign(client, CLIENT)
    assert first.status_code == 200
    assert f"Thank you, {CLIENT}. Next: {PARTNER}, please sign." in first.text
    assert f"{PARTNER}, please sign" in first.text
    assert enrollment_status(rt, enrollment) != EnrollmentStatus.COMPLETE
    assert client.get("/onboarding/done").headers["location"] == "/onboarding"
    assert client.get("/onboarding").headers["location"] == "/onboarding/sign"

    # The first signer's name is not the second signer's signature.
    wrong = sign(client, CLIENT)
    assert wrong.status_code == 422
    assert f"Type your full name exactly as shown: {PARTNER}" in wrong.text

    second = sign(client, PARTNER)
    assert second.status_code == 303
    assert second.headers["location"] == "/onboarding/done"
    assert enrollment_status(rt, enrollment) == EnrollmentStatus.COMPLETE
    with transaction(rt.engine) as db:
        slots = {s.id: s for s in db.exec(select(SignerSlot))}
        signatures = list(db.exec(select(Signature)))
    assert sorted(slots[s.slot_id].role for s in signatures) == ["adult", "client"]
    assert sorted(s.typed_name for s in signatures) == [CLIENT, PARTNER]
    # The therapist's slot exists and stays open for the staff side.
    therapist = [slot for slot in slots.values() if slot.role == "therapist"]
    assert len(therapist) == 1
    assert therapist[0].id not in {s.slot_id for s in signatures}


def test_add_signer_shows_another_row_and_stores_nothing(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    page = client.get("/onboarding/sign")
    assert 'name="adult_2_name"' not in page.text
    response = post_form(
        client,
        "/onboarding/sign",
        {
            "form_id": hidden(page.text, "form_id"),
            "phase": "who",
            "party": "adults",
            "adult_1_name": PARTNER,
            "adult_rows": "1",
            "action": "add_signer",
        },
    )
    assert response.status_code == 200
    assert 'name="adult_2_name"' in response.text
    assert f'value="{PARTNER}"' in response.text
    assert rows(rt, Acknowledgement) == []
    assert [row for row in rows(rt, FormSubmission) if row.step == "sign"] == []


def test_minor_signed_by_guardian_with_relationship(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    enrollment = at_sign_step(client, rt)
    chosen = choose(
        client,
        party="minor",
        minor_name="Alex Rivers",
        guardian_name="Pat Rivers",
        relationship="other",
        relationship_other="grandmother",
    )
    assert chosen.status_code == 200
    assert "Pat Rivers, please sign" in chosen.text
    assert sign(client, "Pat Rivers").status_code == 303
    assert enrollment_status(rt, enrollment) == EnrollmentStatus.COMPLETE
    [ack] = rows(rt, Acknowledgement)
    assert (ack.party, ack.minor_name) == ("minor", "Alex Rivers")
    guardian = [slot for slot in rows(rt, SignerSlot) if slot.role == "guardian"]
    assert [(g.expected_name, g.relationship) for g in guardian] == [
        ("Pat Rivers", "other: grandmother")
    ]
    [signature] = rows(rt, Signature)
    assert signature.meaning == MEANING_V1 + ", as grandmother of Alex Rivers, a minor"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "party", "Choose who is signing."),
        ({"party": "everyone"}, "party", "Choose one of the three options"),
        ({"party": "adults"}, "adult_1_name", "at least one other adult"),
        ({"party": "adults", "adult_1_name": CLIENT}, "adult_1_name", "your own name"),
        (
            {"party": "minor", "minor_name": "Alex Rivers", "guardian_name": "Pat Rivers"},
            "relationship",
            "Choose how you are related",
        ),
        (
            {
                "party": "minor",
                "minor_name": "Alex Rivers",
                "guardian_name": "Pat Rivers",
                "relationship": "aunt",
            },
            "relationship",
            "Choose one of the relationships",
        ),
        (
            {
                "party": "minor",
                "minor_name": "Alex Rivers",
                "guardian_name": "Pat Rivers",
                "relationship": "other",
            },
            "relationship_other",
            "Say how you are related",
        ),
        (
            {"party": "minor", "guardian_name": "Pat Rivers", "relationship": "mother"},
            "minor_name",
            "child's full name",
        ),
    ],
)
def test_who_signs_errors_name_the_problem(
    client: TestClient, rt: Runtime, steps: Any, data: dict[str, str], field: str, message: str
) -> None:
    at_sign_step(client, rt)
    response = choose(client, **data)
    assert response.status_code == 422
    assert message in field_error(response.text, field)
    assert rows(rt, Acknowledgement) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("adult_1_name", "A" * 10_000),
        ("adult_1_name", "<script>alert(1)</script>"),
        ("minor_name", "<b>Alex</b>"),
        ("guardian_name", "x" * 10_000),
        ("relationship_other", "<i>aunt</i>"),
    ],
)
def test_hostile_names_are_refused_not_crashed(
    client: TestClient, rt: Runtime, steps: Any, field: str, value: str
) -> None:
    at_sign_step(client, rt)
    party = "adults" if field.startswith("adult") else "minor"
    data = {
        "party": party,
        "minor_name": "Alex Rivers",
        "guardian_name": "Pat Rivers",
        "relationship": "other",
        field: value,
    }
    response = choose(client, **data)
    assert response.status_code == 422
    assert field_error(response.text, field)
    assert "<script>alert" not in response.text
    assert "<b>Alex" not in response.text
    assert len(response.text) < 60_000  # the 10,000 characters are not echoed back
    assert rows(rt, Acknowledgement) == []


# -- signing -------------------------------------------------------------------------------


def test_wrong_typed_name_is_refused_and_nothing_stored(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    enrollment = at_sign_step(client, rt)
    choose(client, party="individual")
    response = sign(client, "Jordan River")
    assert response.status_code == 422
    assert field_error(response.text, "typed_name") == (
        f"Type your full name exactly as shown: {CLIENT}"
    )
    assert rows(rt, Signature) == []
    assert enrollment_status(rt, enrollment) != EnrollmentStatus.COMPLETE


def test_both_consent_boxes_are_required(client: TestClient, rt: Runtime, steps: Any) -> None:
    at_sign_step(client, rt)
    choose(client, party="individual")
    response = sign(client, CLIENT, esign_consent=None, acknowledge=None)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert field_error(response.text, "esign_consent") == CONSENT_MISSING
    assert field_error(response.text, "acknowledge") == ACK_MISSING
    # What was typed is kept; the boxes are still not ticked for the signer.
    assert f'value="{CLIENT}"' in response.text
    assert not re.search(r'name="esign_consent" value="yes" checked', response.text)
    assert rows(rt, Signature) == []


@pytest.mark.parametrize(
    "typed", ["J" * 10_000, "<script>alert(1)</script>", "Jordan <b>Rivers</b>", "", "\x00\x01"]
)
def test_hostile_typed_names_are_refused(
    client: TestClient, rt: Runtime, steps: Any, typed: str
) -> None:
    at_sign_step(client, rt)
    choose(client, party="individual")
    response = sign(client, typed)
    assert response.status_code == 422
    assert field_error(response.text, "typed_name")
    assert "<script>alert" not in response.text
    assert "<b>Rivers" not in response.text
    assert len(response.text) < 60_000
    assert rows(rt, Signature) == []


def test_replayed_signature_form_counts_once(client: TestClient, rt: Runtime, steps: Any) -> None:
    at_sign_step(client, rt)
    choose(client, party="adults", adult_1_name=PARTNER)
    page = client.get("/onboarding/sign")
    form = {
        "form_id": hidden(page.text, "form_id"),
        "phase": "sign",
        "slot_id": hidden(page.text, "slot_id"),
        "esign_consent": "yes",
        "acknowledge": "yes",
        "typed_name": CLIENT,
        "action": "save",
    }
    assert post_form(client, "/onboarding/sign", form).status_code == 200
    replay = post_form(client, "/onboarding/sign", form)
    assert replay.status_code == 409
    assert len(rows(rt, Signature)) == 1


def test_a_slot_is_signed_once(client: TestClient, rt: Runtime, steps: Any) -> None:
    at_sign_step(client, rt)
    choose(client, party="adults", adult_1_name=PARTNER)
    # Two tabs show the same signer; the second submission must not sign that slot again.
    stale = client.get("/onboarding/sign")
    assert sign(client, CLIENT).status_code == 200
    again = post_form(
        client,
        "/onboarding/sign",
        {
            "form_id": hidden(stale.text, "form_id"),
            "phase": "sign",
            "slot_id": hidden(stale.text, "slot_id"),
            "esign_consent": "yes",
            "acknowledge": "yes",
            "typed_name": CLIENT,
            "action": "save",
        },
    )
    assert again.status_code == 422
    assert "already given" in again.text
    assert f"{PARTNER}, please sign" in again.text
    [first] = rows(rt, Signature)

    # And the database itself refuses a second signature on the slot, even if a race got past.
    with pytest.raises(IntegrityError), transaction(rt.engine) as db:
        copy = first.model_dump(exclude={"id"})
        db.add(Signature(**copy))
        db.flush()
    assert len(rows(rt, Signature)) == 1


def test_signature_row_keeps_the_evidence(client: TestClient, rt: Runtime, steps: Any) -> None:
    at_sign_step(client, rt)
    choose(client, party="individual")
    before = utcnow()
    assert sign(client, CLIENT).status_code == 303
    [signature] = rows(rt, Signature)
    with transaction(rt.engine) as db:
        policy = policy_service.current(db)
        practice = db.get(Practice, 1)
        assert policy is not None and practice is not None
        events = list(
            db.exec(select(AuditEvent).where(AuditEvent.action == "acknowledgement.signed"))
        )
    assert signature.policy_version == 1
    assert signature.policy_version_id == policy.id
    assert signature.policy_hash == policy.content_hash
    assert signature.signed_at.tzinfo is not None
    assert signature.signed_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= signature.signed_at <= utcnow()
    assert signature.statement == esign.STATEMENT
    assert signature.meaning == MEANING_V1
    assert signature.esign_consent is True
    assert signature.esign_disclosure_version == esign.DISCLOSURE_VERSION
    assert signature.esign_disclosure_hash == esign.disclosure(practice).sha256
    assert signature.ip == "testclient"
    assert signature.user_agent == "testclient"
    cookie = client.cookies.get("portal_client")
    assert cookie
    assert signature.session_ref == hashlib.sha256(cookie.encode()).hexdigest()[:16]
    # Audit: role and version, never the name.
    [event] = events
    assert event.detail == {"role": "client", "position": 1, "policy_version": 1}
    assert CLIENT not in str(event.detail)


def test_disclosure_names_paper_copy_withdrawal_scope_and_needs(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    page = choose(client, party="individual").text
    assert "<details open>" in page
    assert "paper copy" in page
    assert "at no charge" in page
    assert "(206) 555-0142" in page
    assert "office@harborlight.example" in page
    assert "withdraw your consent" in page
    assert "later updates of this policy" in page
    assert "PDF" in page
    with transaction(rt.engine) as db:
        policy = policy_service.current(db)
        assert policy is not None
    assert "<wbr>".join(re.findall(".{16}", policy.content_hash)) in page


def test_signers_can_change_only_until_the_first_signature(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    choose(client, party="individual")
    change = submit_step(client, "sign", {"phase": "sign", "action": "change_signers"})
    assert change.status_code == 200
    assert re.search(r'value="individual" checked', change.text)  # their own earlier answer
    changed = choose(client, party="adults", adult_1_name=PARTNER)
    assert changed.status_code == 200
    acks = rows(rt, Acknowledgement)
    assert len(acks) == 2
    [old] = [ack for ack in acks if ack.supersedes_id is None]
    [new] = [ack for ack in acks if ack.supersedes_id is not None]
    assert new.supersedes_id == old.id
    assert (old.party, new.party) == ("individual", "adults")

    assert sign(client, CLIENT).status_code == 200
    refused = choose(client, party="individual")
    assert refused.status_code == 422
    assert LOCKED in html.unescape(refused.text)
    again = submit_step(client, "sign", {"phase": "sign", "action": "change_signers"})
    assert again.status_code == 422
    assert len(rows(rt, Acknowledgement)) == 2
    with transaction(rt.engine) as db:
        actions = [
            e.action
            for e in db.exec(
                select(AuditEvent).where(col(AuditEvent.action).startswith("acknowledgement."))
            )
        ]
    assert sorted(actions) == [
        "acknowledgement.changed",
        "acknowledgement.created",
        "acknowledgement.signed",
    ]


def test_new_policy_version_needs_a_new_acknowledgement(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    enrollment = at_sign_step(client, rt)
    choose(client, party="individual")
    assert sign(client, CLIENT).status_code == 303
    publish(rt, "\n\n## One more thing\n\nWe added a section.\n")
    assert client.get("/onboarding").headers["location"] == "/onboarding/policy"
    assert submit_step(client, "policy", {"policy_version": "2"}).status_code == 303
    page = client.get("/onboarding/sign")
    assert "updated its policy to version 2" in page.text
    assert re.search(r'value="individual" checked', page.text)
    choose(client, party="individual")
    assert sign(client, CLIENT).status_code == 303
    acks = sorted(rows(rt, Acknowledgement), key=lambda ack: ack.policy_version)
    assert [ack.policy_version for ack in acks] == [1, 2]
    assert acks[1].supersedes_id is None  # a new acknowledgement, not a change of the old one
    signatures = sorted(rows(rt, Signature), key=lambda s: s.policy_version)
    assert [s.meaning[-9:] for s in signatures] == ["version 1", "version 2"]
    assert enrollment_status(rt, enrollment) == EnrollmentStatus.COMPLETE


def test_inline_validation_names_the_typed_name_problem(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    choose(client, party="individual")
    page = client.get("/onboarding/sign")
    response = post_form(
        client,
        "/onboarding/sign/validate",
        {"phase": "sign", "slot_id": hidden(page.text, "slot_id"), "typed_name": "Someone"},
        headers={"HX-Request": "true", "HX-Trigger-Name": "typed_name"},
    )
    assert response.status_code == 200
    assert f"Type your full name exactly as shown: {CLIENT}" in response.text
    assert rows(rt, Signature) == []


def test_summary_lists_signatures_and_pending_countersignature(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    at_sign_step(client, rt)
    choose(client, party="adults", adult_1_name=PARTNER)
    sign(client, CLIENT)
    sign(client, PARTNER)
    done = client.get("/onboarding/done").text
    assert f"{CLIENT} (Client): {MEANING_V1}, signed " in done
    assert f"{PARTNER} (Adult seen together): {MEANING_V1}, signed " in done
    assert "Therapist countersignature: pending" in done


def test_sign_is_the_last_step_of_the_full_journey(client: TestClient, rt: Runtime) -> None:
    """With every registered step: the others are filled in as the demo does, then sign."""
    enrollment = at_sign_step(client, rt)
    keys = [spec.key for spec in rt.wizard.steps]
    assert keys[0] == "policy" and keys[-1] == "sign"
    with transaction(rt.engine) as db:
        practice, client_row = db.get(Practice, 1), db.get(Client, enrollment.client_id)
        row = db.get(Enrollment, enrollment.id)
        assert practice is not None and client_row is not None and row is not None
        ctx = rt.step_context(db, practice, client_row, row, RequestMeta.none(), utcnow())
        for spec in rt.wizard.steps:
            if spec.key not in ("policy", "sign"):
                spec.handler.demo_fill(ctx)
    assert client.get("/onboarding").headers["location"] == "/onboarding/sign"
    choose(client, party="individual")
    assert sign(client, CLIENT).headers["location"] == "/onboarding/done"
    assert enrollment_status(rt, enrollment) == EnrollmentStatus.COMPLETE
    with transaction(rt.engine) as db:
        completed = db.get(Enrollment, enrollment.id)
        assert completed is not None and completed.completed_at is not None
        assert completed.completed_at.tzinfo == UTC or completed.completed_at.utcoffset() == (
            timedelta(0)
        )


def test_demo_fill_completes_every_step_like_portal_demo(client: TestClient, rt: Runtime) -> None:
    publish(rt)
    enrollment = start_journey(client, rt)
    with transaction(rt.engine) as db:
        practice, client_row = db.get(Practice, 1), db.get(Client, enrollment.client_id)
        row = db.get(Enrollment, enrollment.id)
        assert practice is not None and client_row is not None and row is not None
        ctx = rt.step_context(
            db, practice, client_row, row, RequestMeta("127.0.0.1", "demo"), utcnow()
        )
        for spec in rt.wizard.steps:
            spec.handler.demo_fill(ctx)
        assert rt.wizard.complete_if_done(ctx)
    [signature] = rows(rt, Signature)
    assert (signature.typed_name, signature.ip) == (CLIENT, "127.0.0.1")
    assert client.get("/onboarding/receipt.pdf").status_code == 200


def test_two_racing_changes_cannot_both_supersede(
    client: TestClient, rt: Runtime, steps: Any
) -> None:
    from portal_signature import service
    from portal_signature.parties import PlannedSigner, SignerPlan

    enrollment = at_sign_step(client, rt)
    choose(client, party="individual")
    [ack] = rows(rt, Acknowledgement)
    plan = SignerPlan(
        Party.ADULTS, (PlannedSigner(Role.CLIENT, CLIENT), PlannedSigner(Role.ADULT, PARTNER))
    )
    with transaction(rt.engine) as db:
        policy = policy_service.current(db)
        row = db.get(Enrollment, enrollment.id)
        assert policy is not None and row is not None
        kwargs: dict[str, Any] = {
            "supersedes": ack,
            "actor": Actor("client", row.id),
            "meta": RequestMeta.none(),
            "now": utcnow(),
        }
        service.create_acknowledgement(db, row, policy, plan, **kwargs)
        with pytest.raises(service.ConcurrentChange):
            service.create_acknowledgement(db, row, policy, plan, **kwargs)
    assert len(rows(rt, Acknowledgement)) == 2
