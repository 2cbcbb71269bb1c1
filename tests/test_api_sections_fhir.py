"""The plugins' FHIR mappings: every Consent and Patient.telecom they build validates as FHIR R4
(with the R4B models, see fhir_validation) and says what the records say."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_validation import validate
from section_scenarios import Population, build

from portal.api.records import latest_enrollments
from portal.api.sections import ApiSection, ClientRef
from portal.db import transaction
from portal.runtime import Runtime

CHANNELS = "urn:intake-portal:contact-channel"
PURPOSE = "http://hl7.org/fhir/StructureDefinition/contactpoint-purpose"


@pytest.fixture
def population(rt: Runtime) -> Population:
    return build(rt)


def section(rt: Runtime, key: str) -> ApiSection:
    return next(s for s in rt.api_sections if s.key == key)


def values(rt: Runtime, key: str, client_ids: list[str]) -> dict[str, Any]:
    with transaction(rt.engine, read_only=True) as db:
        enrollments = latest_enrollments(db, client_ids)
        refs = [ClientRef(c, enrollments[c].id) for c in client_ids]
        return dict(section(rt, key).load(db, refs, True))


def consents(rt: Runtime, key: str, client_id: str) -> list[dict[str, Any]]:
    mapping = section(rt, key).fhir
    assert mapping.consents is not None
    return mapping.consents(client_id, values(rt, key, [client_id])[client_id])


def rules(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(permit|deny, channel code) for each nested provision of a contact Consent."""
    found = []
    for nested in resource["provision"]["provision"]:
        (action,) = nested["action"]
        (coding,) = action["coding"]
        assert coding["system"] == CHANNELS and action["text"]
        found.append((nested["type"], coding["code"]))
    return found


def test_every_consent_and_telecom_validates(rt: Runtime, population: Population) -> None:
    ids: list[str] = []
    for key in ("contact", "acknowledgements", "testimonial"):
        mapping = section(rt, key).fhir
        assert mapping.consents is not None
        for client_id, value in values(rt, key, population.all()).items():
            for resource in mapping.consents(client_id, value):
                validate(resource)
                assert resource["id"].startswith(f"{mapping.consent_prefix}-")
                assert resource["patient"] == {"reference": f"Patient/{client_id}"}
                ids.append(resource["id"])
            if mapping.telecom is not None:
                patient = {"resourceType": "Patient", "id": client_id}
                validate({**patient, "telecom": mapping.telecom(value)})
    assert len(ids) == len(set(ids)) == 6 + 5 + 6  # acknowledgements, contact, testimonial


def test_the_validator_refuses_a_broken_consent(rt: Runtime, population: Population) -> None:
    (resource,) = consents(rt, "acknowledgements", population.individual)
    validate(resource)
    for breaks in ("policy", "patient", "scope"):
        broken = {k: v for k, v in resource.items() if k != breaks}
        with pytest.raises((AssertionError, ValueError)):
            validate(broken)
    with pytest.raises(AssertionError):
        validate({**resource, "status": "signed"})


def test_acknowledgement_consents(rt: Runtime, population: Population) -> None:
    (signed,) = consents(rt, "acknowledgements", population.individual)
    assert signed["status"] == "active"
    assert signed["policy"][0]["uri"] == "http://testserver/policy/v/1"
    (digest,) = signed["extension"]
    assert digest["url"] == "urn:intake-portal:fhir:extension:policy-sha256"
    assert len(digest["valueString"]) == 64
    codes = [c["coding"][0]["code"] for c in signed["category"]]
    assert codes == ["communications-policy", "59284-0"]
    client, therapist = signed["performer"]
    assert client == {
        "display": "Jordan Avery (client)",
        "reference": f"Patient/{population.individual}",
    }
    assert therapist == {"display": f"{population.therapist_name} (therapist)"}
    # In force from the client's signature; last updated by the countersignature.
    assert signed["provision"]["period"]["start"] < signed["meta"]["lastUpdated"]

    current, superseded = consents(rt, "acknowledgements", population.adults)
    assert (current["status"], superseded["status"]) == ("active", "inactive")
    assert superseded["provision"]["period"]["end"] == current["dateTime"]
    assert [p["display"] for p in current["performer"]] == [
        "Sam Lee (client)",
        "Robin Lee (adult seen together)",
    ]

    on_paper, online = consents(rt, "acknowledgements", population.minor)
    assert online["status"] == "proposed"
    assert online["performer"] == [{"display": "Morgan Moss (guardian / grandmother)"}]
    assert on_paper["status"] == "active" and on_paper["performer"] == [{"display": "Morgan Moss"}]
    assert on_paper["sourceAttachment"]["contentType"] == "application/pdf"
    assert "data" not in on_paper["sourceAttachment"] and "url" not in on_paper["sourceAttachment"]
    assert len(on_paper["extension"]) == 2


def test_contact_consents_permit_and_deny_channels(rt: Runtime, population: Population) -> None:
    (only,) = consents(rt, "contact", population.individual)
    assert only["status"] == "active" and only["provision"]["type"] == "permit"
    assert rules(only) == [
        ("permit", "phone_call"),
        ("permit", "voicemail"),
        ("deny", "sms"),
        ("deny", "social_media_message"),
        ("deny", "public_reply"),
        ("deny", "email"),
    ]

    current, earlier = consents(rt, "contact", population.withdrawn)
    assert (current["status"], earlier["status"]) == ("active", "inactive")
    assert earlier["provision"]["period"]["end"] == current["provision"]["period"]["start"]
    assert earlier["meta"]["lastUpdated"] == current["dateTime"]
    assert rules(current) == [
        ("permit", "email"),
        ("permit", "phone_call"),
        ("deny", "sms"),
        ("deny", "social_media_message"),
        ("deny", "public_reply"),
        ("deny", "voicemail"),
    ]
    assert "(206) 555-0177" in current["provision"]["provision"][-1]["action"][0]["text"]


def test_telecom_lists_the_current_channels_in_rank_order(
    rt: Runtime, population: Population
) -> None:
    mapping = section(rt, "contact").fhir
    assert mapping.telecom is not None
    value = values(rt, "contact", [population.withdrawn])[population.withdrawn]
    email, work = mapping.telecom(value)
    assert (email["system"], email["value"], email["rank"]) == ("email", "riley@example.com", 1)
    (purpose,) = email["extension"]
    assert purpose["url"] == PURPOSE and purpose["valueCodeableConcept"]["text"]
    assert (work["system"], work["use"], work["rank"]) == ("phone", "work", 2)
    assert work["period"] == {"start": value["given_at"]} == email["period"]
    # The earlier cell number is not a way to reach the client any more.
    assert "+12065550148" not in str(mapping.telecom(value))


def test_testimonial_withdrawal_ends_the_yes_and_starts_a_deny(
    rt: Runtime, population: Population
) -> None:
    withdrawal, yes, first_no = consents(rt, "testimonial", population.withdrawn)
    assert withdrawal["status"] == "active" and withdrawal["provision"]["type"] == "deny"
    assert yes["status"] == "inactive" and yes["provision"]["type"] == "permit"
    assert yes["provision"]["period"]["end"] == withdrawal["dateTime"]
    assert yes["meta"]["lastUpdated"] == withdrawal["dateTime"]
    codes = [c["coding"][0]["code"] for c in yes["provision"]["code"]]
    assert codes == ["initials", "website", "print"]
    assert first_no["status"] == "inactive" and first_no["provision"]["type"] == "deny"
    assert first_no["provision"]["period"]["end"] == yes["dateTime"]

    (never,) = consents(rt, "testimonial", population.individual)
    assert never["status"] == "active" and never["provision"]["type"] == "deny"


def test_consent_owner_finds_the_client_of_each_consent(
    rt: Runtime, population: Population
) -> None:
    with transaction(rt.engine, read_only=True) as db:
        for key in ("contact", "acknowledgements", "testimonial"):
            mapping = section(rt, key).fhir
            assert mapping.consent_owner is not None
            for client_id in population.all():
                for resource in consents(rt, key, client_id):
                    row_id = resource["id"].removeprefix(f"{mapping.consent_prefix}-")
                    assert mapping.consent_owner(db, row_id) == client_id
            for unknown in ("0" * 32, "", "x" * 32, "ack-" + "0" * 32, "' OR 1=1 --"):
                assert mapping.consent_owner(db, unknown) is None
