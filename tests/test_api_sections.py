"""The plugins' API sections: their JSON, its schema, their loaders' cost, and the change log
entries their writes leave."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from helpers import counting_queries, onboard, settle_change_log
from section_scenarios import Population, build, countersign
from starlette.testclient import TestClient

from portal import changes
from portal.api.records import latest_enrollments
from portal.api.sections import ApiSection, ClientRef
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime
from portal_policy import service as policy_service
from portal_policy.rendering import default_policy_source

DIALECT = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture
def population(rt: Runtime) -> Population:
    return build(rt)


def section(rt: Runtime, key: str) -> ApiSection:
    return next(s for s in rt.api_sections if s.key == key)


def load(rt: Runtime, key: str, client_ids: list[str], *, history: bool) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        enrollments = latest_enrollments(db, client_ids)
        refs = [ClientRef(c, e.id if (e := enrollments.get(c)) else None) for c in client_ids]
        return dict(section(rt, key).load(db, refs, history))


def validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({"$schema": DIALECT, **schema}, validate_formats=True)


def test_each_step_plugin_contributes_a_section(rt: Runtime) -> None:
    found = {s.key: (s.scope, s.fhir.consent_prefix) for s in rt.api_sections}
    assert found == {
        "contact": ("contacts:read", "contact"),
        "acknowledgements": ("clients:read", "ack"),
        "testimonial": ("clients:read", "testimonial"),
    }


@pytest.mark.parametrize("history", [False, True])
def test_every_value_matches_its_schema(rt: Runtime, population: Population, history: bool) -> None:
    for key in ("contact", "acknowledgements", "testimonial"):
        values = load(rt, key, population.all(), history=history)
        assert set(values) == set(population.all()), key
        check = validator(section(rt, key).schema)
        check.validate(None)  # a client with nothing in the section yet
        for value in values.values():
            check.validate(value)
            assert ("history" in value) == (history and key != "acknowledgements")


def test_the_schemas_are_strict(rt: Runtime, population: Population) -> None:
    """Each schema refuses what it does not describe, so the test above can fail."""
    contact = load(rt, "contact", [population.withdrawn], history=True)[population.withdrawn]
    acks = load(rt, "acknowledgements", [population.minor], history=True)[population.minor]
    testimonial = load(rt, "testimonial", [population.withdrawn], history=True)
    broken: list[tuple[str, dict[str, Any], Any]] = []
    for key, value, mutate in [
        ("contact", contact, lambda v: v["channels"][0].update(kind="pager")),
        ("contact", contact, lambda v: v["history"][0].update(surprise=1)),
        ("contact", contact, lambda v: v["do_not_use"][0].update(reason="maybe")),
        ("contact", contact, lambda v: v.update(given_at="yesterday")),
        ("acknowledgements", acks, lambda v: v["items"][0].update(status="done")),
        ("acknowledgements", acks, lambda v: v["items"][1]["signers"][0].pop("signed")),
        ("acknowledgements", acks, lambda v: v["items"][0].update(scan_sha256="abc")),
        ("acknowledgements", acks, lambda v: v["policy_discussions"][0].update(discussed_on="x")),
        ("testimonial", testimonial[population.withdrawn], lambda v: v.update(choice="maybe")),
        ("testimonial", testimonial[population.withdrawn], lambda v: v["history"][0].pop("kind")),
    ]:
        changed = copy.deepcopy(value)
        mutate(changed)
        broken.append((key, changed, mutate))
    for key, value, _ in broken:
        assert not validator(section(rt, key).schema).is_valid(value), (key, value)


def test_contact_rules_in_machine_form(rt: Runtime, population: Population) -> None:
    current = load(rt, "contact", [population.withdrawn], history=False)[population.withdrawn]
    assert current["revision"] == 2 and "history" not in current
    assert [(c["rank"], c["system"], c["kind"], c["value"]) for c in current["channels"]] == [
        (1, "email", "email", "riley@example.com"),
        (2, "phone", "work", "+12065550177"),
    ]
    email, work = current["channels"]
    assert email["purpose"] == "administrative" and email["voicemail"] is None
    assert work["voicemail_allowed"] is False and work["texts_allowed"] is False
    assert current["do_not_use"] == [
        {"channel": "sms", "value": None, "reason": "not_offered"},
        {"channel": "social_media_message", "value": None, "reason": "not_offered"},
        {"channel": "public_reply", "value": None, "reason": "not_offered"},
        {"channel": "voicemail", "value": "+12065550177", "reason": "declined"},
    ]
    assert current["email_warning_accepted_at"] == current["given_at"]

    with_history = load(rt, "contact", [population.withdrawn], history=True)[population.withdrawn]
    (first,) = with_history["history"]
    assert first["revision"] == 1 and first["given_at"] < current["given_at"]
    (cell,) = first["channels"]
    assert (cell["kind"], cell["voicemail"], cell["voicemail_allowed"]) == (
        "mobile",
        "practice_name",
        True,
    )
    assert {"channel": "email", "value": None, "reason": "not_given"} in first["do_not_use"]
    assert first["email_warning_accepted_at"] is None


def test_acknowledgements_show_status_signers_and_staff_records(
    rt: Runtime, population: Population, client: TestClient
) -> None:
    ids = population.all()
    now_view = load(rt, "acknowledgements", ids, history=False)
    full_view = load(rt, "acknowledgements", ids, history=True)

    (signed,) = now_view[population.individual]["items"]
    assert signed["status"] == "signed" and signed["party"] == "individual"
    assert [(s["role"], s["signed"]) for s in signed["signers"]] == [
        ("client", True),
        ("therapist", True),
    ]
    assert signed["signers"][1]["typed_name"] == population.therapist_name
    assert signed["signers"][0]["esign_disclosure_version"]

    (current,) = now_view[population.adults]["items"]
    assert current["status"] == "awaiting_countersignature" and current["party"] == "adults"
    assert [(s["role"], s["expected_name"]) for s in current["signers"]] == [
        ("client", "Sam Lee"),
        ("adult", "Robin Lee"),
        ("therapist", None),
    ]
    newest, superseded = full_view[population.adults]["items"]
    assert newest == current
    assert superseded["status"] == "superseded"
    assert newest["supersedes_id"] == superseded["id"]
    assert superseded["superseded_at"] == newest["created_at"]

    minor = now_view[population.minor]
    on_paper, online = minor["items"]  # newest first: paper was recorded after
    assert online["status"] == "awaiting_signatures" and online["minor_name"] == "Casey Moss"
    guardian = online["signers"][0]
    assert (guardian["role"], guardian["relationship"], guardian["signed"]) == (
        "guardian",
        "grandmother",
        False,
    )
    assert on_paper["kind"] == "paper" and on_paper["signer_names"] == ["Morgan Moss"]
    assert len(on_paper["scan_sha256"]) == 64
    (talk,) = minor["policy_discussions"]
    assert talk["recorded_by"]["name"] == population.therapist_name

    with transaction(rt.engine, read_only=True) as db:
        policy = policy_service.current(db)
        assert policy is not None
    for item in (signed, online, on_paper):
        assert item["policy_version"] == policy.version
        assert item["policy_sha256"] == policy.content_hash
        page = client.get(item["policy_url"].removeprefix("http://testserver"))
        assert page.status_code == 200 and policy.title in page.text


def test_testimonial_decision_in_force_and_its_history(rt: Runtime, population: Population) -> None:
    values = load(rt, "testimonial", population.all(), history=True)
    never = values[population.individual]
    assert (never["choice"], never["withdrawn"], never["withdrawn_at"]) == ("no", False, None)

    withdrawn = values[population.withdrawn]
    assert withdrawn["choice"] == "no" and withdrawn["placements"] == []
    assert withdrawn["withdrawn"] is True
    assert withdrawn["withdrawn_at"] == withdrawn["decided_at"]
    rows = [(r["kind"], r["choice"], r["placements"]) for r in withdrawn["history"]]
    assert rows == [
        ("withdrawal", "no", []),
        ("decision", "initials", ["website", "print"]),
        ("decision", "no", []),  # the first answer, during onboarding
    ]
    assert withdrawn["history"][0]["id"] == withdrawn["id"]


def test_clients_without_records_are_left_out(rt: Runtime, population: Population) -> None:
    invited = onboard(rt, "Avery Kim", "avery@example.com", steps=0)
    for key in ("contact", "acknowledgements", "testimonial"):
        values = load(rt, key, [invited.client_id, population.minor], history=True)
        assert invited.client_id not in values and population.minor in values


@pytest.mark.parametrize("key", ["contact", "acknowledgements", "testimonial"])
def test_a_batch_costs_the_same_queries_as_one_client(
    rt: Runtime, population: Population, key: str
) -> None:
    with transaction(rt.engine, read_only=True) as db:
        enrollments = latest_enrollments(db, population.all())
        refs = [ClientRef(c, enrollments[c].id) for c in population.all()]
        counts = []
        for batch in (refs[:1], refs):
            with counting_queries(rt) as statements:
                section(rt, key).load(db, batch, True)
            counts.append(len(statements))
    assert counts[0] == counts[1] <= 5, counts


def changed_tables(rt: Runtime, after: changes.Position) -> dict[str, set[str]]:
    """client id -> tables changed after `after`, once the horizon has passed every commit."""
    settle_change_log(rt)
    with transaction(rt.engine, read_only=True) as db:
        found: dict[str, set[str]] = {}
        for change in changes.read(db, after, 10_000):
            found.setdefault(change.client_id, set()).update(change.tables.split(","))
        return found


def test_writes_to_the_plugins_tables_log_a_change_for_their_client(
    rt: Runtime, population: Population
) -> None:
    logged = changed_tables(rt, changes.START)
    assert {"contact_preference", "testimonial_decision", "policy_reading"} <= logged[
        population.individual
    ]
    assert {"acknowledgement", "signer_slot", "signature"} <= logged[population.adults]
    assert {"paper_acknowledgement", "policy_discussion"} <= logged[population.minor]

    before = settle_change_log(rt)
    with transaction(rt.engine, read_only=True) as db:
        enrollment = latest_enrollments(db, [population.adults])[population.adults]
    countersign(rt, enrollment.id, population.therapist_name, utcnow())
    assert changed_tables(rt, before) == {population.adults: {"signature"}}


def test_publishing_a_policy_version_logs_a_change_for_every_client(
    rt: Runtime, population: Population
) -> None:
    before = settle_change_log(rt)
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        source = default_policy_source() + "\n\nWe added this paragraph in version 2.\n"
        version = policy_service.publish(
            db, source, practice, actor=Actor("cli", "test"), meta=RequestMeta.none(), now=utcnow()
        )
    assert version.version == 2
    assert changed_tables(rt, before) == {c: {"policy_version"} for c in population.all()}
