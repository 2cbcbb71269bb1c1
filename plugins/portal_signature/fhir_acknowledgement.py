"""Policy acknowledgements in FHIR R4: one Consent per acknowledgement, online or on paper.

Both kinds share the id prefix "ack": a section maps to FHIR with one prefix, and row ids are
random UUIDs, so "ack-<id>" names exactly one row of either table. A paper one is recognisable by
its ``sourceAttachment`` (the scan, described, never included).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy import union_all
from sqlmodel import Session, col, select

from portal.api.fhir_consent import coding, consent, latest, period
from portal.api.sections import ClientRef, FhirMapping
from portal.rows import IDS, as_model, core_rows
from portal.settings import Settings
from portal.staff.models import StaffAccount
from portal_signature import api_section  # a cycle: api_section names MAPPING, read at call time
from portal_signature.models import (
    Acknowledgement,
    PaperAcknowledgement,
    PolicyDiscussion,
    Role,
    Signature,
    SignerSlot,
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


def _online(
    db: Session, enrollment_ids: list[str], policy_url: api_section.PolicyUrl
) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """enrollment id -> [(sort key, item)] for the online acknowledgements, superseded ones
    included (as api_section._online with history, from Core rows)."""
    acks = [
        as_model(Acknowledgement, row)
        for row in core_rows(
            db,
            select(
                col(Acknowledgement.id),
                col(Acknowledgement.enrollment_id),
                col(Acknowledgement.created_at),
                col(Acknowledgement.party),
                col(Acknowledgement.minor_name),
                col(Acknowledgement.policy_version),
                col(Acknowledgement.policy_hash),
                col(Acknowledgement.supersedes_id),
            ).where(col(Acknowledgement.enrollment_id).in_(IDS)),
            enrollment_ids,
        )
    ]
    ack_ids = [ack.id for ack in acks]
    slots = core_rows(
        db,
        select(
            col(SignerSlot.id),
            col(SignerSlot.acknowledgement_id),
            col(SignerSlot.role),
            col(SignerSlot.expected_name),
            col(SignerSlot.relationship),
        )
        .where(col(SignerSlot.acknowledgement_id).in_(IDS))
        .order_by(col(SignerSlot.position)),
        ack_ids,
    ).all()
    signatures = {
        row.slot_id: as_model(Signature, row)
        for row in core_rows(
            db,
            select(
                col(Signature.slot_id),
                col(Signature.signed_at),
                col(Signature.typed_name),
                col(Signature.esign_disclosure_version),
            ).where(col(Signature.acknowledgement_id).in_(IDS)),
            ack_ids,
        )
    }
    signers: dict[str, list[dict[str, Any]]] = {}
    for slot in slots:
        signers.setdefault(slot.acknowledgement_id, []).append(
            api_section.signer_json(as_model(SignerSlot, slot), signatures.get(slot.id))
        )
    replaced_by = {ack.supersedes_id: ack for ack in acks if ack.supersedes_id}
    found: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for ack in acks:
        replacement = replaced_by.get(ack.id)
        item = api_section.online_json(ack, signers.get(ack.id, []), replacement, policy_url)
        found.setdefault(ack.enrollment_id, []).append(((ack.created_at, ack.id), item))
    return found


def load(settings: Settings, db: Session, refs: Sequence[ClientRef]) -> dict[str, Any]:
    """The section's values with history, as api_section.load gives them, from Core rows."""
    clients = {ref.enrollment_id: ref.client_id for ref in refs if ref.enrollment_id}
    if not clients:
        return {}
    ids = list(clients)
    policy_url = partial(api_section.versioned_policy_url, settings)
    items = _online(db, ids, policy_url)
    papers = core_rows(
        db,
        select(  # never the scan itself
            col(PaperAcknowledgement.id),
            col(PaperAcknowledgement.enrollment_id),
            col(PaperAcknowledgement.policy_version),
            col(PaperAcknowledgement.policy_hash),
            col(PaperAcknowledgement.signer_names),
            col(PaperAcknowledgement.signed_on),
            col(PaperAcknowledgement.recorded_at),
            col(PaperAcknowledgement.content_type),
            col(PaperAcknowledgement.size),
            col(PaperAcknowledgement.sha256),
        ).where(col(PaperAcknowledgement.enrollment_id).in_(IDS)),
        ids,
    )
    for row in papers:
        paper = as_model(PaperAcknowledgement, row)
        key = (paper.recorded_at, paper.id)
        items.setdefault(paper.enrollment_id, []).append(
            (key, api_section.paper_json(paper, policy_url))
        )
    discussions: dict[str, list[dict[str, Any]]] = {}
    rows = core_rows(
        db,
        select(
            col(PolicyDiscussion.id),
            col(PolicyDiscussion.enrollment_id),
            col(PolicyDiscussion.policy_version),
            col(PolicyDiscussion.discussed_on),
            col(PolicyDiscussion.recorded_at),
            col(PolicyDiscussion.staff_account_id),
            col(StaffAccount.name).label("staff_name"),
        )
        .join(StaffAccount, col(StaffAccount.id) == col(PolicyDiscussion.staff_account_id))
        .where(col(PolicyDiscussion.enrollment_id).in_(IDS))
        .order_by(
            col(PolicyDiscussion.discussed_on).desc(), col(PolicyDiscussion.recorded_at).desc()
        ),
        ids,
    )
    for row in rows:
        discussions.setdefault(row.enrollment_id, []).append(
            api_section.discussion_json(as_model(PolicyDiscussion, row), row.staff_name)
        )
    return api_section.section_values(clients, items, discussions)


MAPPING = FhirMapping(
    consents=consents,
    consent_prefix=PREFIX,
    consent_owner=consent_owner,
    load=load,
)
