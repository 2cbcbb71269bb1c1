"""Patient and Consent resources for a batch of clients: shared by reads, searches and bulk export.

One call per batch: the host's queries and each section's loader run once for the whole batch,
never once per client. The caller has checked that the key may read clients (``clients:read``);
``scopes`` decides which sections are visible, so telecom and contact-preference Consents appear
only for a key that also holds ``contacts:read``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlmodel import Session

from portal.api.records import (
    iso,
    last_changed,
    latest_enrollments,
    load_sections,
    visible_sections,
)
from portal.api.sections import ApiSection, ClientRef
from portal.fhir import CLIENT_ID_SYSTEM
from portal.models import Client, Enrollment, EnrollmentStatus
from portal.runtime import Runtime

MRN_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical record number",
        }
    ]
}


def telecom_sections(rt: Runtime, scopes: Collection[str]) -> list[ApiSection]:
    return [s for s in visible_sections(rt.api_sections, scopes) if s.fhir.telecom is not None]


def consent_sections(rt: Runtime, scopes: Collection[str]) -> list[ApiSection]:
    return [s for s in visible_sections(rt.api_sections, scopes) if s.fhir.consents is not None]


def patients(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> list[dict[str, Any]]:
    """A Patient for each of `clients`, in the order given."""
    ids = [client.id for client in clients]
    enrollments = latest_enrollments(db, ids)
    sections = telecom_sections(rt, scopes)
    values = load_sections(db, sections, _refs(clients, enrollments), history=True)
    changed = last_changed(db, ids)
    resources = []
    for client in clients:
        enrollment = enrollments.get(client.id)
        identifiers: list[dict[str, Any]] = [
            {"use": "usual", "system": CLIENT_ID_SYSTEM, "value": client.id}
        ]
        if client.mrn:
            identifiers.append(
                {
                    "use": "official",
                    "type": MRN_TYPE,
                    "system": rt.settings.ehr_mrn_system,
                    "value": client.mrn,
                }
            )
        telecom: list[dict[str, Any]] = []
        for section in sections:
            value = values[client.id].get(section.key)
            if value is not None and section.fhir.telecom is not None:
                telecom.extend(section.fhir.telecom(value))
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": client.id,
            "meta": {"lastUpdated": iso(changed.get(client.id, client.created_at))},
            "identifier": identifiers,
            # A client whose every journey was cancelled is no longer onboarding with the practice.
            "active": enrollment is None or enrollment.status != EnrollmentStatus.CANCELLED,
            # Splitting a typed full name into given/family guesses wrong too often: text only.
            "name": [{"text": client.full_name}],
        }
        if telecom:
            patient["telecom"] = telecom
        resources.append(patient)
    return resources


def consents(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> list[dict[str, Any]]:
    """Every Consent of `clients`: grouped by client in the order given, by id within a client."""
    return [c for group in consents_by_client(rt, db, clients, scopes).values() for c in group]


def consents_by_client(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """client id -> that client's Consents sorted by id (the search's keyset order)."""
    sections = consent_sections(rt, scopes)
    if not sections:
        return {client.id: [] for client in clients}
    enrollments = latest_enrollments(db, [client.id for client in clients])
    values = load_sections(db, sections, _refs(clients, enrollments), history=True)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for client in clients:
        found: list[dict[str, Any]] = []
        for section in sections:
            value = values[client.id].get(section.key)
            if value is not None and section.fhir.consents is not None:
                found.extend(section.fhir.consents(client.id, value))
        grouped[client.id] = sorted(found, key=lambda resource: str(resource["id"]))
    return grouped


def _refs(clients: Sequence[Client], enrollments: Mapping[str, Enrollment]) -> list[ClientRef]:
    return [ClientRef(c.id, e.id if (e := enrollments.get(c.id)) else None) for c in clients]
