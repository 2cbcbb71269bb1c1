"""Consent read and search under /fhir/r4 (portal/fhir/consent_search.py, routes.py), on the
real plugins' mappings: acknowledgements, contact preferences, testimonial decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from fhir_http import all_pages, diagnostics, fhir_get, outcome_of
from helpers import api_key, onboard, publish_default
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.fhir import consent_search
from portal.models import Client, Enrollment
from portal.runtime import Runtime
from portal_testimonial import service as testimonial

CATEGORY = "urn:intake-portal:consent-category"
ALL = ("clients:read", "contacts:read")


def _people(rt: Runtime, n: int) -> list[Client]:
    """`n` onboarded clients in id order; the first onboarded (c0@example.com) also said yes
    to testimonials, then withdrew (so there are active and inactive Consents)."""
    publish_default(rt)
    enrollments = [onboard(rt, f"Client Number{i}", f"c{i}@example.com") for i in range(n)]
    first = enrollments[0]
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, first.id)
        assert enrollment is not None
        actor, meta = Actor("client", enrollment.id), RequestMeta.none()
        testimonial.decide(
            db, enrollment, "initials", ["website"], actor=actor, meta=meta, now=utcnow()
        )
    with transaction(rt.engine) as db:
        testimonial.record_withdrawal(
            db, first.id, source="client", actor=actor, via="test", meta=meta, now=utcnow()
        )
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(Client).order_by(col(Client.id))))


def _search(client: TestClient, key: str, query: str) -> list[dict[str, Any]]:
    resources, _ = all_pages(client, f"/fhir/r4/Consent?{query}", key)
    assert all(r["resourceType"] == "Consent" for r in resources)
    return resources


def _ids(resources: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in resources]


def _patient(consent: dict[str, Any]) -> str:
    return str(consent["patient"]["reference"].removeprefix("Patient/"))


def _categories(consent: dict[str, Any]) -> set[str]:
    return {c["code"] for concept in consent["category"] for c in concept["coding"]}


def test_search_everything_in_keyset_order(client: TestClient, rt: Runtime) -> None:
    people = _people(rt, 3)
    key = api_key(rt, *ALL)
    everything = _search(client, key, "_count=500")
    order = [(_patient(c), c["id"]) for c in everything]
    assert order == sorted(order), "ordered by (patient, id)"
    assert {_patient(c) for c in everything} == {p.id for p in people}
    categories = [_categories(c) for c in everything]
    for wanted in ("communications-policy", "contact-preferences", "testimonial"):
        assert sum(wanted in found for found in categories) >= 3, wanted
    assert {c["status"] for c in everything} >= {"active", "inactive"}


def test_paging_to_the_end(client: TestClient, rt: Runtime) -> None:
    _people(rt, 3)
    key = api_key(rt, *ALL)
    everything = _ids(_search(client, key, "_count=500"))
    resources, bundles = all_pages(client, "/fhir/r4/Consent?_count=2", key)
    assert _ids(resources) == everything  # nothing missing, nothing twice, same order
    assert len(bundles) >= 3
    assert all(len(b["entry"]) == 2 for b in bundles[:-1])
    # With a filter, one per page: the cursor continues inside a client's Consents.
    active = [c["id"] for c in _search(client, key, "_count=500&status=active")]
    resources, bundles = all_pages(client, "/fhir/r4/Consent?_count=1&status=active", key)
    assert _ids(resources) == active and len(bundles) >= 3


def test_paging_across_client_batches(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny batches: a page is gathered from several batches of clients, and a filter that
    matches nothing in a batch moves on to the next."""
    people = _people(rt, 4)
    withdrew = next(p.id for p in people if p.email == "c0@example.com")
    key = api_key(rt, *ALL)
    everything = _ids(_search(client, key, "_count=500"))
    inactive = _ids(_search(client, key, "_count=500&status=inactive"))
    monkeypatch.setattr(consent_search, "FIRST_BATCH", 1)
    monkeypatch.setattr(consent_search, "MAX_BATCH", 2)
    assert _ids(_search(client, key, "_count=7")) == everything
    assert _ids(_search(client, key, "_count=1&status=inactive")) == inactive
    # Only one client has inactive Consents: the search walks every other batch too.
    assert {_patient(c) for c in _search(client, key, "status=inactive")} == {withdrew}


def test_search_by_patient(client: TestClient, rt: Runtime) -> None:
    a, b, c = _people(rt, 3)
    key = api_key(rt, *ALL)
    everything = _search(client, key, "_count=500")
    of_a = [x["id"] for x in everything if _patient(x) == a.id]
    of_ac = [x["id"] for x in everything if _patient(x) in (a.id, c.id)]
    assert of_a
    assert _ids(_search(client, key, f"patient=Patient/{a.id}")) == of_a
    assert _ids(_search(client, key, f"patient={a.id}")) == of_a
    absolute = quote(f"http://testserver/fhir/r4/Patient/{a.id}", safe="")
    assert _ids(_search(client, key, f"patient={absolute}")) == of_a
    assert _ids(_search(client, key, f"patient={c.id},Patient/{a.id}")) == of_ac
    assert _ids(_search(client, key, f"patient={a.id}&patient={b.id}")) == []
    assert _search(client, key, "patient=" + "0" * 32) == []
    for bad in (f"Group/{a.id}", "a%20b", "Patient/", ""):
        assert "patient" in diagnostics(
            fhir_get(client, f"/fhir/r4/Consent?patient={bad}", key), 400
        )


def test_search_by_status_and_category(client: TestClient, rt: Runtime) -> None:
    _people(rt, 2)
    key = api_key(rt, *ALL)
    everything = _search(client, key, "_count=500")

    def expected(test: Any) -> list[str]:
        return [c["id"] for c in everything if test(c)]

    assert _ids(_search(client, key, "status=inactive")) == expected(
        lambda c: c["status"] == "inactive"
    )
    assert _ids(_search(client, key, "status=active,inactive")) == expected(
        lambda c: c["status"] in ("active", "inactive")
    )
    assert _search(client, key, "status=active&status=inactive") == []
    testimonials = expected(lambda c: "testimonial" in _categories(c))
    assert len(testimonials) >= 4  # the first client: no, yes, withdrawal; the second: no
    assert _ids(_search(client, key, "category=testimonial")) == testimonials
    assert _ids(_search(client, key, f"category={quote(CATEGORY)}|testimonial")) == testimonials
    assert _search(client, key, "category=urn:other|testimonial") == []
    assert _search(client, key, "category=|testimonial") == []  # ours carry a system
    assert _ids(_search(client, key, f"category={quote(CATEGORY)}|")) == _ids(everything)
    assert _ids(_search(client, key, "category=http://loinc.org|59284-0")) == expected(
        lambda c: "communications-policy" in _categories(c)
    )
    assert _ids(_search(client, key, "category=testimonial&status=active")) == expected(
        lambda c: "testimonial" in _categories(c) and c["status"] == "active"
    )
    detail = diagnostics(fhir_get(client, "/fhir/r4/Consent?status=revoked", key), 400)
    assert "status" in detail and "active" in detail


def test_search_by_last_updated(client: TestClient, rt: Runtime) -> None:
    _people(rt, 3)
    key = api_key(rt, *ALL)
    everything = _search(client, key, "_count=500")
    stamps = sorted({c["meta"]["lastUpdated"] for c in everything})
    assert len(stamps) >= 3, "clients onboarded one after another"
    middle = stamps[len(stamps) // 2]
    moment = datetime.fromisoformat(middle)

    def when(consent: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(consent["meta"]["lastUpdated"])

    since = _search(client, key, f"_lastUpdated=ge{quote(middle)}")
    assert _ids(since) == [c["id"] for c in everything if when(c) >= moment]
    before = _search(client, key, f"_lastUpdated=lt{quote(middle)}")
    assert _ids(before) == [c["id"] for c in everything if when(c) < moment]
    assert since and before
    assert _search(client, key, "_lastUpdated=lt2020-01-01") == []
    assert _ids(_search(client, key, "_lastUpdated=gt2020")) == _ids(everything)
    outcome_of(fhir_get(client, "/fhir/r4/Consent?_lastUpdated=2026-02-30", key), 400)


def test_read(client: TestClient, rt: Runtime) -> None:
    _people(rt, 2)
    key = api_key(rt, *ALL, name="Reader")
    everything = _search(client, key, "_count=500")
    for consent in everything:
        response = fhir_get(client, f"/fhir/r4/Consent/{consent['id']}", key)
        assert response.status_code == 200, consent["id"]
        assert response.json() == consent
    for missing in ("ack-" + "0" * 32, "testimonial-nope", "unknown-1", "ack", "contact-"):
        assert "No Consent" in diagnostics(
            fhir_get(client, f"/fhir/r4/Consent/{missing}", key), 404
        )
    with transaction(rt.engine, read_only=True) as db:
        reads = db.exec(
            select(AuditEvent).where(AuditEvent.action == "fhir.read").order_by(AuditEvent.id)
        ).all()
    assert len(reads) == len(everything) + 5
    first = reads[0]
    assert (first.actor, first.subject_type, first.subject_id) == (
        "api:Reader",
        "client",
        _patient(everything[0]),
    )
    assert first.detail == {
        "resource_type": "Consent",
        "count": 1,
        "resource_id": everything[0]["id"],
    }
    assert all(e.subject_type == "api_key" and e.detail["count"] == 0 for e in reads[-5:])


def test_contact_preferences_need_contacts_read(client: TestClient, rt: Runtime) -> None:
    _people(rt, 2)
    full = api_key(rt, *ALL, name="Full")
    basic = api_key(rt, "clients:read", name="Basic")
    everything = _search(client, full, "_count=500")
    contact = [c for c in everything if "contact-preferences" in _categories(c)]
    assert contact
    seen = _search(client, basic, "_count=500")
    assert _ids(seen) == [c["id"] for c in everything if c not in contact]
    assert _search(client, basic, "category=contact-preferences") == []
    refused = fhir_get(client, f"/fhir/r4/Consent/{contact[0]['id']}", basic)
    assert "contacts:read" in diagnostics(refused, 403)
    assert 'scope="contacts:read"' in refused.headers["www-authenticate"]
    # Refused before any lookup: an id that does not exist is refused the same way.
    outcome_of(fhir_get(client, "/fhir/r4/Consent/contact-" + "0" * 32, basic), 403)
    with transaction(rt.engine, read_only=True) as db:
        refusals = db.exec(select(AuditEvent).where(AuditEvent.action == "api.forbidden")).all()
    assert [(e.actor, e.detail["scope"]) for e in refusals] == [("api:Basic", "contacts:read")] * 2


@pytest.mark.parametrize("path", ["/fhir/r4/Consent", "/fhir/r4/Consent/ack-1"])
def test_auth_failures(client: TestClient, rt: Runtime, path: str) -> None:
    outcome_of(fhir_get(client, path, None), 401)
    outcome_of(fhir_get(client, path, "not-a-key"), 401)
    assert "clients:read" in diagnostics(fhir_get(client, path, api_key(rt, "contacts:read")), 403)


def test_bad_parameters_and_cursors(client: TestClient, rt: Runtime) -> None:
    key = api_key(rt, *ALL)
    assert "'subject'" in diagnostics(fhir_get(client, "/fhir/r4/Consent?subject=x", key), 400)
    outcome_of(fhir_get(client, "/fhir/r4/Consent?patient:Patient=x", key), 400)
    patient_cursor = "UGF0aWVudC9hYmM"  # a Patient search's cursor
    for cursor in (patient_cursor, "%%%", "Q29uc2VudC9h"):  # the last one: too few keys
        detail = diagnostics(fhir_get(client, f"/fhir/r4/Consent?_cursor={cursor}", key), 400)
        assert "_cursor" in detail


def test_search_is_audited(client: TestClient, rt: Runtime) -> None:
    people = _people(rt, 1)
    key = api_key(rt, *ALL)
    found = _search(client, key, f"patient={people[0].id}&_count=500")
    with transaction(rt.engine, read_only=True) as db:
        search = db.exec(select(AuditEvent).where(AuditEvent.action == "fhir.search")).one()
    assert search.actor == "api:Test EHR"
    assert search.detail == {
        "resource_type": "Consent",
        "count": len(found),
        "parameters": ["_count", "patient"],
    }
