"""Patient read and search under /fhir/r4 (portal/fhir/patient_search.py, routes.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from fhir_http import all_pages, diagnostics, fhir_get, outcome_of
from fhir_validation import validate
from helpers import api_key, onboard, publish_default
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal import changes
from portal.api import keys
from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, EnrollmentStatus
from portal.runtime import Runtime

ID_SYSTEM = "urn:intake-portal:client-id"
MRN_SYSTEM = "urn:intake-portal:mrn"
NAMES = ["Jordan Avery", "Sam Lee", "Riley Chen"]


def _people(rt: Runtime, n: int = 3) -> list[Client]:
    """`n` onboarded clients, in id order (the search's order)."""
    publish_default(rt)
    for i in range(n):
        name = NAMES[i] if i < len(NAMES) else f"Client Number{i}"
        onboard(rt, name, f"person{i}@example.com")
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(Client).order_by(col(Client.id))))


def _set_mrn(rt: Runtime, client_id: str, mrn: str) -> None:
    with transaction(rt.engine) as db:
        client = db.get(Client, client_id)
        assert client is not None
        client.mrn = mrn
        db.add(client)


def _ids(client: TestClient, key: str, query: str) -> list[str]:
    resources, _ = all_pages(client, f"/fhir/r4/Patient?{query}", key)
    assert all(r["resourceType"] == "Patient" for r in resources)
    return [r["id"] for r in resources]


def test_read(client: TestClient, rt: Runtime) -> None:
    jordan = _people(rt, 1)[0]
    _set_mrn(rt, jordan.id, "MRN-1001")
    full = api_key(rt, "clients:read", "contacts:read", name="Full")
    basic = api_key(rt, "clients:read", name="Basic")
    response = fhir_get(client, f"/fhir/r4/Patient/{jordan.id}", full)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    patient = response.json()
    validate(patient)
    assert patient["id"] == jordan.id
    assert patient["name"] == [{"text": "Jordan Avery"}]
    assert patient["active"] is True
    assert [(i["system"], i["value"]) for i in patient["identifier"]] == [
        (ID_SYSTEM, jordan.id),
        (MRN_SYSTEM, "MRN-1001"),
    ]
    assert patient["identifier"][1]["type"]["coding"][0]["code"] == "MR"
    assert patient["telecom"], "the contact plugin's channels"
    assert {point["system"] for point in patient["telecom"]} <= {"phone", "email", "sms"}
    assert datetime.fromisoformat(patient["meta"]["lastUpdated"]) <= utcnow()

    without_contacts = fhir_get(client, f"/fhir/r4/Patient/{jordan.id}", basic).json()
    validate(without_contacts)
    assert "telecom" not in without_contacts
    assert without_contacts["identifier"] == patient["identifier"]

    with transaction(rt.engine, read_only=True) as db:
        reads = db.exec(select(AuditEvent).where(AuditEvent.action == "fhir.read")).all()
    assert [(e.actor, e.subject_type, e.subject_id) for e in reads] == [
        ("api:Full", "client", jordan.id),
        ("api:Basic", "client", jordan.id),
    ]
    assert reads[0].detail == {"resource_type": "Patient", "count": 1}


def test_read_unknown_and_cancelled(client: TestClient, rt: Runtime) -> None:
    jordan = _people(rt, 1)[0]
    key = api_key(rt, "clients:read")
    assert "No Patient" in diagnostics(fhir_get(client, "/fhir/r4/Patient/" + "0" * 32, key), 404)
    # Not a FHIR id: no route matches, and the answer is still an OperationOutcome.
    outcome_of(fhir_get(client, "/fhir/r4/Patient/" + quote("a b!"), key), 404)
    with transaction(rt.engine, read_only=True) as db:
        miss = db.exec(select(AuditEvent).where(AuditEvent.action == "fhir.read")).one()
    assert (miss.subject_type, miss.detail["count"]) == ("api_key", 0)

    with transaction(rt.engine) as db:
        for enrollment in db.exec(select(Enrollment).where(Enrollment.client_id == jordan.id)):
            enrollment.status = EnrollmentStatus.CANCELLED
            db.add(enrollment)
    patient = fhir_get(client, f"/fhir/r4/Patient/{jordan.id}", key).json()
    assert patient["active"] is False


def test_search_by_identifier_and_id(client: TestClient, rt: Runtime) -> None:
    a, b, c = _people(rt, 3)
    _set_mrn(rt, a.id, "MRN-1")
    _set_mrn(rt, b.id, "MRN-2")
    key = api_key(rt, "clients:read")
    id_system, mrn = quote(ID_SYSTEM), quote(MRN_SYSTEM)
    assert _ids(client, key, f"identifier={id_system}|{b.id}") == [b.id]
    assert _ids(client, key, f"identifier={c.id}") == [c.id]
    assert _ids(client, key, f"identifier={mrn}|MRN-1") == [a.id]
    assert _ids(client, key, "identifier=MRN-2") == [b.id]
    assert _ids(client, key, f"identifier={mrn}|") == [a.id, b.id]
    assert _ids(client, key, f"identifier={id_system}|") == [a.id, b.id, c.id]
    assert _ids(client, key, "identifier=MRN-1,MRN-2") == [a.id, b.id]  # comma: OR
    assert _ids(client, key, f"identifier=MRN-1,MRN-2&identifier={b.id}") == [b.id]  # AND
    assert _ids(client, key, "identifier=|MRN-1") == []  # ours always carry a system
    assert _ids(client, key, "identifier=urn:other|MRN-1") == []
    assert _ids(client, key, "identifier=MRN-9") == []
    assert _ids(client, key, f"_id={c.id},{a.id}") == [a.id, c.id]
    assert _ids(client, key, f"_id={c.id}&identifier=MRN-1") == []
    for bad in ("_id=a%20b", "identifier=a|b|c", "identifier=", "_id=,", "identifier=|"):
        outcome_of(fhir_get(client, f"/fhir/r4/Patient?{bad}", key), 400)


def test_search_by_last_updated(client: TestClient, rt: Runtime) -> None:
    a, b, c = _people(rt, 3)
    with transaction(rt.engine) as db:
        changes.append(db, {b.id: {"test"}}, datetime(2030, 1, 1, 10, tzinfo=UTC))
        changes.append(db, {c.id: {"test"}}, datetime(2030, 2, 1, 10, tzinfo=UTC))
    key = api_key(rt, "clients:read")
    cases = {
        "ge2030-01-01": [b.id, c.id],
        "gt2030-01": [c.id],
        "lt2030": [a.id],
        "le2030-01-01": [a.id, b.id],
        "eq2030-02": [c.id],
        "2030-01-01T10:00:00Z": [b.id],
        "gt2030-01-01T10:00:00Z": [c.id],
        "ge2030-01-01T11:00:00%2B01:00": [b.id, c.id],
        "lt2030-01-01T10:00:00.001Z": [a.id, b.id],
        "ge2030-01-01&_lastUpdated=lt2030-02-01": [b.id],
        "gt2030-02-01&_lastUpdated=lt2030-01-01": [],
    }
    for value, expected in cases.items():
        assert _ids(client, key, f"_lastUpdated={value}") == expected, value
    patient = fhir_get(client, f"/fhir/r4/Patient/{b.id}", key).json()
    assert patient["meta"]["lastUpdated"] == "2030-01-01T10:00:00Z"
    for bad in ("ne2030", "sa2030", "ap2030", "2030-13", "2030-01-01T10:00", "yesterday", "gt"):
        detail = diagnostics(fhir_get(client, f"/fhir/r4/Patient?_lastUpdated={bad}", key), 400)
        assert "_lastUpdated" in detail


def test_paging_to_the_end(client: TestClient, rt: Runtime) -> None:
    people = _people(rt, 7)
    key = api_key(rt, "clients:read", "contacts:read")
    resources, bundles = all_pages(client, "/fhir/r4/Patient?_count=2", key)
    assert [r["id"] for r in resources] == [p.id for p in people]
    assert [len(b.get("entry", [])) for b in bundles] == [2, 2, 2, 1]
    assert all("next" in {link["relation"] for link in b["link"]} for b in bundles[:-1])
    # The next link keeps the search's own parameters.
    first_next = next(link["url"] for link in bundles[0]["link"] if link["relation"] == "next")
    assert "_count=2" in first_next and "_cursor=" in first_next
    # A page size beyond the maximum gets the maximum, not an error.
    assert len(_ids(client, key, "_count=1000")) == 7
    # A next link is stable: following it again gives the same page.
    second_page = fhir_get(client, first_next, key).json()
    assert [e["resource"]["id"] for e in second_page["entry"]] == [people[2].id, people[3].id]


def test_bad_parameters(client: TestClient, rt: Runtime) -> None:
    key = api_key(rt, "clients:read")
    assert "'name'" in diagnostics(fhir_get(client, "/fhir/r4/Patient?name=Avery", key), 400)
    assert "modifier" in diagnostics(
        fhir_get(client, "/fhir/r4/Patient?identifier:exact=x", key), 400
    )
    for bad in ("_count=0", "_count=abc", "_count=-1", "_count=1&_count=2"):
        outcome_of(fhir_get(client, f"/fhir/r4/Patient?{bad}", key), 400)
    for cursor in ("garbage!", "Q29uc2VudC9hL2I", "x" * 400):  # the middle one: a Consent cursor
        detail = diagnostics(fhir_get(client, f"/fhir/r4/Patient?_cursor={cursor}", key), 400)
        assert "_cursor" in detail
    outcome_of(fhir_get(client, "/fhir/r4/Patient/" + "0" * 32 + "?foo=1", key), 400)


@pytest.mark.parametrize("path", ["/fhir/r4/Patient", "/fhir/r4/Patient/" + "0" * 32])
def test_auth_failures(client: TestClient, rt: Runtime, path: str) -> None:
    no_key = fhir_get(client, path, None)
    assert "Bearer" in diagnostics(no_key, 401)
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    outcome_of(fhir_get(client, path, "pk_abcdefgh_" + "x" * 43), 401)
    outcome_of(client.get(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    revoked = api_key(rt, "clients:read", name="Old EHR")
    with transaction(rt.engine) as db:
        old = keys.by_name(db, "Old EHR")
        assert old is not None
        keys.revoke(db, old, actor=Actor("cli", "test"), meta=RequestMeta.none(), now=utcnow())
    assert "revoked" in diagnostics(fhir_get(client, path, revoked), 401)
    export_only = api_key(rt, "export", name="Export only")
    forbidden = fhir_get(client, path, export_only)
    assert "clients:read" in diagnostics(forbidden, 403)
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    with transaction(rt.engine, read_only=True) as db:
        refused = db.exec(select(AuditEvent).where(AuditEvent.action == "api.forbidden")).one()
    assert refused.actor == "api:Export only"


def test_search_is_audited_without_identifying_data(client: TestClient, rt: Runtime) -> None:
    people = _people(rt, 2)
    _set_mrn(rt, people[0].id, "MRN-55")
    key = api_key(rt, "clients:read", "contacts:read")
    fhir_get(client, "/fhir/r4/Patient?identifier=MRN-55&_count=5", key)
    fhir_get(client, "/fhir/r4/Patient", key)
    with transaction(rt.engine, read_only=True) as db:
        searches = db.exec(
            select(AuditEvent).where(AuditEvent.action == "fhir.search").order_by(AuditEvent.id)
        ).all()
        everything = db.exec(select(AuditEvent)).all()
    assert [(e.actor, e.detail) for e in searches] == [
        (
            "api:Test EHR",
            {"resource_type": "Patient", "count": 1, "parameters": ["_count", "identifier"]},
        ),
        ("api:Test EHR", {"resource_type": "Patient", "count": 2, "parameters": []}),
    ]
    text = repr([(e.detail, e.subject_id) for e in everything if e.actor.startswith("api:")])
    for secret in ("MRN-55", "Jordan", "Avery", "person0@example.com"):
        assert secret not in text
