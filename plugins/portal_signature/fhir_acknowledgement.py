"""Policy acknowledgements in FHIR R4: one Consent per acknowledgement, online or on paper.

Both kinds share the id prefix "ack": a section maps to FHIR with one prefix, and row ids are
random UUIDs, so "ack-<id>" names exactly one row of either table. A paper one is recognisable by
its ``sourceAttachment`` (the scan, described, never included).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import union_all
from sqlmodel import Session, select

from portal.api.fhir_consent import coding, consent, latest, period
from portal.api.sections import FhirMapping
from portal_signature.models import (
    Acknowledgement,
    PaperAcknowledgement,
    Role,
)

PREFIX = "ack"
POLICY_SHA256 = "urn:intake-portal:fhir:extension:policy-sha256"
SCAN_SHA256 = "urn:intake-portal:fhir:extension:scan-sha256"
PATIENT_CONSENT = {"coding": [coding("http://loinc.org", "59284-0", "Patient Consent")]}
STATUS = {
    "signed": "active",
    "awaiting_countersignature": "active",  # the client side is complete
    "awaiting_signatures": "proposed",
    "superseded": "inactive",
}
ROLE_WORDS = {
    Role.CLIENT: "client",
    Role.ADULT: "adult seen together",
    Role.GUARDIAN: "guardian",
    Role.THERAPIST: "therapist",
}
_ROW_ID = re.compile(r"[0-9a-f]{32}")


def _hash_extension(url: str, digest: str) -> dict[str, Any]:
    return {"url": url, "valueString": digest}


def performer(client_id: str, signer: dict[str, Any]) -> dict[str, Any] | None:
    """The signer as "Name (role / relationship)"; None for a countersignature not yet given
    (nobody is named until the therapist signs)."""
    name = signer["typed_name"] or signer["expected_name"]
    if not name:
        return None
    role = ROLE_WORDS.get(signer["role"], signer["role"])
    if signer["relationship"]:
        role += f" / {signer['relationship']}"
    found: dict[str, Any] = {"display": f"{name} ({role})"}
    if signer["role"] == Role.CLIENT:
        found["reference"] = f"Patient/{client_id}"
    return found


def online_consent(client_id: str, item: dict[str, Any]) -> dict[str, Any]:
    signers = item["signers"]
    client_side = [s for s in signers if s["role"] != Role.THERAPIST]
    complete = bool(client_side) and all(s["signed"] for s in client_side)
    # In force from the last client-side signature; until then, proposed since it was set up.
    start = latest(s["signed_at"] for s in client_side) if complete else item["created_at"]
    performers = [found for s in signers if (found := performer(client_id, s))]
    return consent(
        resource_id=f"{PREFIX}-{item['id']}",
        client_id=client_id,
        status=STATUS[item["status"]],
        category="communications-policy",
        category_display="Social media and communications policy",
        extra_categories=[PATIENT_CONSENT],
        date_time=item["created_at"],
        last_updated=latest(
            [item["created_at"], item["superseded_at"], *(s["signed_at"] for s in signers)]
        ),
        performers=performers,
        policy_uri=item["policy_url"],
        extensions=[_hash_extension(POLICY_SHA256, item["policy_sha256"])],
        provision={"type": "permit", "period": period(start, item["superseded_at"])},
    )


def paper_consent(client_id: str, item: dict[str, Any]) -> dict[str, Any]:
    resource = consent(
        resource_id=f"{PREFIX}-{item['id']}",
        client_id=client_id,
        status="active",
        category="communications-policy",
        category_display="Social media and communications policy",
        extra_categories=[PATIENT_CONSENT],
        date_time=item["signed_on"],
        last_updated=item["created_at"],
        performers=[{"display": name} for name in item["signer_names"]],
        policy_uri=item["policy_url"],
        extensions=[
            _hash_extension(POLICY_SHA256, item["policy_sha256"]),
            _hash_extension(SCAN_SHA256, item["scan_sha256"]),
        ],
        provision={"type": "permit", "period": period(item["signed_on"])},
    )
    # Describes the scan the practice keeps; the bytes stay in the portal.
    resource["sourceAttachment"] = {
        "contentType": item["scan_content_type"],
        "size": item["scan_size"],
        "title": "Scan of the acknowledgement signed on paper",
    }
    return resource


def consents(client_id: str, value: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        online_consent(client_id, item)
        if item["kind"] == "online"
        else paper_consent(client_id, item)
        for item in value["items"]
    ]


def consent_owner(db: Session, row_id: str) -> str | None:
    if not _ROW_ID.fullmatch(row_id):
        return None
    either = union_all(
        select(Acknowledgement.client_id).where(Acknowledgement.id == row_id),
        select(PaperAcknowledgement.client_id).where(PaperAcknowledgement.id == row_id),
    )
    owner = db.exec(either).first()  # type: ignore[call-overload]
    return str(owner[0]) if owner else None


MAPPING = FhirMapping(
    consents=consents,
    consent_prefix=PREFIX,
    consent_owner=consent_owner,
)
