"""Patient and Consent resources for a batch of clients: shared by reads, searches and bulk export.

A batch is loaded once (`load_batch`): the host's queries and each visible section's loader run
once for the whole batch, never once per client, and never once per resource type, so a bulk
export building Patients and Consents from one batch reads it once. The builders then work on
what was loaded, without I/O. The caller has checked that the key may read clients
(``clients:read``); ``scopes`` decides which sections are visible, so telecom and
contact-preference Consents appear only for a key that also holds ``contacts:read``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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

PATIENT, CONSENT = "Patient", "Consent"
MRN_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical record number",
        }
    ]
}


@dataclass(frozen=True)
class Batch:
    """A batch of clients and everything their resources are built from."""

    clients: Sequence[Client]
    telecom: Sequence[ApiSection]  # visible sections that add to Patient.telecom
    consent: Sequence[ApiSection]  # visible sections that map to Consents
    values: Mapping[str, Mapping[str, Any]]  # client id -> section key -> value (with history)
    enrollments: Mapping[str, Enrollment]  # each client's current journey
    changed: Mapping[str, datetime]  # when each client's record last changed (Patients only)


def telecom_sections(rt: Runtime, scopes: Collection[str]) -> list[ApiSection]:
    return [s for s in visible_sections(rt.api_sections, scopes) if s.fhir.telecom is not None]


def consent_sections(rt: Runtime, scopes: Collection[str]) -> list[ApiSection]:
    return [s for s in visible_sections(rt.api_sections, scopes) if s.fhir.consents is not None]


def load_batch(
    rt: Runtime,
    db: Session,
    clients: Sequence[Client],
    scopes: Collection[str],
    types: Collection[str] = (PATIENT, CONSENT),
) -> Batch:
    """Read what the resources of `types` need for `clients`, each query once."""
    telecom = telecom_sections(rt, scopes) if PATIENT in types else []
    consent = consent_sections(rt, scopes) if CONSENT in types else []
    # Each section once, in the runtime's order, even when it feeds both resource types.
    sections = [s for s in rt.api_sections if s in telecom or s in consent]
    ids = [client.id for client in clients]
    enrollments = latest_enrollments(db, ids) if sections or PATIENT in types else {}
    refs = [ClientRef(c.id, e.id if (e := enrollments.get(c.id)) else None) for c in clients]
    return Batch(
        clients=clients,
        telecom=telecom,
        consent=consent,
        values=load_sections(db, sections, refs, history=True),
        enrollments=enrollments,
        changed=last_changed(db, ids) if PATIENT in types else {},
    )


def build_patients(rt: Runtime, batch: Batch) -> list[dict[str, Any]]:
    """A Patient for each client of the batch, in its order."""
    mrn_system = rt.settings.ehr_mrn_system
    resources = []
    for client in batch.clients:
        enrollment = batch.enrollments.get(client.id)
        identifiers: list[dict[str, Any]] = [
            {"use": "usual", "system": CLIENT_ID_SYSTEM, "value": client.id}
        ]
        if client.mrn:
            identifiers.append(
                {"use": "official", "type": MRN_TYPE, "system": mrn_system, "value": client.mrn}
            )
        telecom: list[dict[str, Any]] = []
        values = batch.values[client.id]
        for section in batch.telecom:
            value = values.get(section.key)
            if value is not None and section.fhir.telecom is not None:
                telecom.extend(section.fhir.telecom(value))
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": client.id,
            "meta": {"lastUpdated": iso(batch.changed.get(client.id, client.created_at))},
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


def build_consents(rt: Runtime, batch: Batch) -> list[dict[str, Any]]:
    """Every Consent of the batch: grouped by client in its order, by id within a client."""
    return [c for group in consents_grouped(batch).values() for c in group]


def consents_grouped(batch: Batch) -> dict[str, list[dict[str, Any]]]:
    """client id -> that client's Consents sorted by id (the search's keyset order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for client in batch.clients:
        found: list[dict[str, Any]] = []
        values = batch.values.get(client.id, {})
        for section in batch.consent:
            value = values.get(section.key)
            if value is not None and section.fhir.consents is not None:
                found.extend(section.fhir.consents(client.id, value))
        found.sort(key=_by_id)
        grouped[client.id] = found
    return grouped


def _by_id(resource: dict[str, Any]) -> str:
    return str(resource["id"])


# One resource type for a batch, in one call: single reads and searches.


def patients(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> list[dict[str, Any]]:
    """A Patient for each of `clients`, in the order given."""
    return build_patients(rt, load_batch(rt, db, clients, scopes, [PATIENT]))


def consents(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> list[dict[str, Any]]:
    """Every Consent of `clients`: grouped by client in the order given, by id within a client."""
    return build_consents(rt, load_batch(rt, db, clients, scopes, [CONSENT]))


def consents_by_client(
    rt: Runtime, db: Session, clients: Sequence[Client], scopes: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """client id -> that client's Consents sorted by id (the search's keyset order)."""
    return consents_grouped(load_batch(rt, db, clients, scopes, [CONSENT]))
