"""portal/fhir/resources.py: Patient and Consent resources for a batch of clients."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from fhir_validation import validate
from helpers import counting_queries, onboard, publish_default
from section_scenarios import build
from sqlalchemy import insert
from sqlmodel import Session, select

from portal.api.records import latest_enrollments
from portal.api.sections import ApiSection, ClientRef, FhirMapping
from portal.db import transaction, utcnow
from portal.fhir import CLIENT_ID_SYSTEM, resources
from portal.models import Client, Enrollment, EnrollmentStatus
from portal.runtime import Runtime


def _fake_load(db: Session, refs: Sequence[ClientRef], history: bool) -> dict[str, Any]:
    return {ref.client_id: {"phone": "+12065550100", "history": history} for ref in refs}


def _fake_telecom(value: Any) -> list[dict[str, Any]]:
    return [{"system": "phone", "value": value["phone"], "rank": 1}]


def _fake_consents(client_id: str, value: Any) -> list[dict[str, Any]]:
    # Ids out of order on purpose: the builder sorts a client's Consents by id.
    return [_consent(f"fake-{client_id}-b", client_id), _consent(f"fake-{client_id}-a", client_id)]


def _consent(resource_id: str, client_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": resource_id,
        "meta": {"lastUpdated": "2026-01-02T03:04:05Z"},
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "urn:test", "code": "fake"}]}],
        "patient": {"reference": f"Patient/{client_id}"},
        "policyRule": {"text": "test"},
    }


FAKE_CONTACT = ApiSection(
    key="fake_contact",
    title="test",
    scope="contacts:read",
    schema={},
    load=_fake_load,
    fhir=FhirMapping(consents=_fake_consents, telecom=_fake_telecom, consent_prefix="fake"),
)


@pytest.fixture
def fake_only(rt: Runtime) -> Runtime:
    """The runtime with one throwaway section in place of the plugins' own."""
    rt.api_sections = [FAKE_CONTACT]
    return rt


def _clients(rt: Runtime) -> list[Client]:
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(Client).order_by(Client.id)))


def test_patient_fields(fake_only: Runtime) -> None:
    rt = fake_only
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    onboard(rt, "Sam Lee", "sam@example.com")
    with transaction(rt.engine) as db:
        sam = db.exec(select(Client).where(Client.email == "sam@example.com")).one()
        sam.mrn = "MRN-77"
        db.add(sam)
        for enrollment in db.exec(select(Enrollment).where(Enrollment.client_id == sam.id)):
            enrollment.status = EnrollmentStatus.CANCELLED
            db.add(enrollment)
    clients = _clients(rt)
    with transaction(rt.engine, read_only=True) as db:
        built = resources.patients(rt, db, clients, ["clients:read", "contacts:read"])
        without_contacts = resources.patients(rt, db, clients, ["clients:read"])
    assert [p["id"] for p in built] == [c.id for c in clients]
    by_name = {p["name"][0]["text"]: p for p in built}
    jordan, sam_patient = by_name["Jordan Avery"], by_name["Sam Lee"]
    assert jordan["active"] is True and sam_patient["active"] is False
    assert jordan["identifier"] == [
        {"use": "usual", "system": CLIENT_ID_SYSTEM, "value": jordan["id"]}
    ]
    assert sam_patient["identifier"][1]["system"] == "urn:intake-portal:mrn"
    assert sam_patient["identifier"][1]["value"] == "MRN-77"
    assert jordan["telecom"] == [{"system": "phone", "value": "+12065550100", "rank": 1}]
    assert all("telecom" not in p for p in without_contacts)
    for patient in [*built, *without_contacts]:
        validate(patient)
        assert patient["meta"]["lastUpdated"].endswith("Z")


def test_consents_are_sorted_per_client_and_scoped(fake_only: Runtime) -> None:
    rt = fake_only
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    onboard(rt, "Sam Lee", "sam@example.com")
    clients = _clients(rt)
    with transaction(rt.engine, read_only=True) as db:
        built = resources.consents(rt, db, clients, ["clients:read", "contacts:read"])
        hidden = resources.consents(rt, db, clients, ["clients:read"])
    assert [c["id"] for c in built] == [
        f"fake-{client.id}-{suffix}" for client in clients for suffix in "ab"
    ]
    assert hidden == []
    for consent in built:
        validate(consent)


def test_one_query_set_per_batch(fake_only: Runtime) -> None:
    """The cost of a batch does not depend on how many clients are in it."""
    rt = fake_only
    publish_default(rt)
    for n in range(6):
        onboard(rt, f"Client {n}", f"c{n}@example.com")
    clients = _clients(rt)

    def statements(batch: list[Client]) -> int:
        with counting_queries(rt) as seen, transaction(rt.engine, read_only=True) as db:
            resources.patients(rt, db, batch, ["clients:read", "contacts:read"])
            resources.consents(rt, db, batch, ["clients:read", "contacts:read"])
        return len(seen)

    assert statements(clients[:1]) == statements(clients)


def test_a_batch_is_loaded_once_for_both_resource_types(
    fake_only: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section feeding Patient.telecom and Consents is loaded once per batch, not per type."""
    rt = fake_only
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    calls: list[int] = []

    def counted(db: Session, refs: Sequence[ClientRef], history: bool) -> dict[str, Any]:
        calls.append(len(refs))
        return _fake_load(db, refs, history)

    rt.api_sections = [ApiSection(**{**vars(FAKE_CONTACT), "load": counted})]
    clients = _clients(rt)
    with transaction(rt.engine, read_only=True) as db:
        batch = resources.load_batch(rt, db, clients, ["clients:read", "contacts:read"])
    assert calls == [len(clients)]
    assert resources.build_patients(rt, batch)[0]["telecom"][0]["value"] == "+12065550100"
    assert [c["id"] for c in resources.build_consents(rt, batch)] == [
        f"fake-{clients[0].id}-a",
        f"fake-{clients[0].id}-b",
    ]


def test_section_loaders_read_rows_not_orm_objects(rt: Runtime) -> None:
    """The plugins' section loaders serve both the API and the FHIR export: they read Core rows
    (no ORM object enters the session), and without history they give the same current value
    as with it."""
    population = build(rt)
    invited = onboard(rt, "Avery Quinn", "avery@example.com", steps=0)  # nothing recorded yet
    ids = [*population.all(), invited.client_id]
    with transaction(rt.engine, read_only=True) as db:
        enrollments = latest_enrollments(db, ids)
        refs = [ClientRef(c, enrollments[c].id) for c in ids]
        refs.append(ClientRef("f" * 32, None))  # a client with no journey
        db.expunge_all()
        assert {s.key for s in rt.api_sections} >= {"contact", "acknowledgements", "testimonial"}
        for section in rt.api_sections:
            full = dict(section.load(db, refs, True))
            current = dict(section.load(db, refs, False))
            assert len(db.identity_map) == 0, section.key
            assert len(full) >= 2, section.key  # the scenarios give each section records
            assert invited.client_id not in full and "f" * 32 not in full
            assert full.keys() == current.keys(), section.key
            if section.key != "acknowledgements":  # its history is superseded items
                for client_id, value in full.items():
                    assert {k: v for k, v in value.items() if k != "history"} == current[
                        client_id
                    ], section.key


def test_real_sections_cost_one_query_set_per_batch(rt: Runtime) -> None:
    population = build(rt)
    with transaction(rt.engine, read_only=True) as db:
        clients = list(db.exec(select(Client).where(Client.id.in_(population.all()))))  # type: ignore[attr-defined]

    def statements(batch: list[Client]) -> int:
        with counting_queries(rt) as seen, transaction(rt.engine, read_only=True) as db:
            resources.load_batch(rt, db, batch, ["clients:read", "contacts:read"])
        return len(seen)

    assert statements(clients[:1]) == statements(clients)


def test_current_journey_is_the_newest_not_cancelled(rt: Runtime) -> None:
    """Each client's current journey (the API's and FHIR's): the newest not cancelled, else
    the newest."""
    now = utcnow()
    cancelled, invited = EnrollmentStatus.CANCELLED, EnrollmentStatus.INVITED
    journeys = {  # client -> [(enrollment id, status)], oldest first
        "a" * 32: [("a1", invited), ("a2", cancelled)],  # the older one still runs
        "b" * 32: [("b1", cancelled), ("b2", cancelled)],  # all cancelled: the newest
        "c" * 32: [("c1", invited), ("c2", invited)],  # the newest
        "d" * 32: [("d1", cancelled), ("d2", invited), ("d3", cancelled)],
    }
    with transaction(rt.engine) as db:
        db.execute(
            insert(Client),
            [
                {"id": c, "full_name": c, "email": f"{c}@example.com", "created_at": now}
                for c in journeys
            ],
        )
        db.execute(
            insert(Enrollment),
            [
                {
                    "id": f"{enrollment:0<32}",
                    "client_id": client,
                    "status": status,
                    "created_at": now + timedelta(minutes=n),
                    "resume_nonce": "x",
                }
                for client, rows in journeys.items()
                for n, (enrollment, status) in enumerate(rows)
            ],
        )
    ids = [*journeys, "e" * 32]
    with transaction(rt.engine, read_only=True) as db:
        found = {c: (e.id, e.status) for c, e in latest_enrollments(db, ids).items()}
    assert {c: e[0][:2] for c, e in found.items()} == {
        "a" * 32: "a1",
        "b" * 32: "b2",
        "c" * 32: "c2",
        "d" * 32: "d2",
    }
