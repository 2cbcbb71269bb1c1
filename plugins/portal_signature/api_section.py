"""The "acknowledgements" section of a client's API record: who acknowledged which policy
version (online with signatures, or on paper), and when the policy was discussed in session.

Four queries per batch of clients, whatever its size. Scans are never loaded, only their hash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlmodel import Session, col, select

from portal.api.records import iso
from portal.api.sections import ApiSection, ClientRef
from portal.rows import IDS, as_model, core_rows
from portal.settings import Settings
from portal.staff.models import StaffAccount
from portal_signature import fhir_acknowledgement
from portal_signature.api_schema import ACKNOWLEDGEMENTS_SCHEMA
from portal_signature.models import (
    Acknowledgement,
    PaperAcknowledgement,
    PolicyDiscussion,
    Role,
    Signature,
    SignerSlot,
)
from portal_signature.parties import relationship_words

PolicyUrl = Callable[[int], str]


def versioned_policy_url(settings: Settings, version: int) -> str:
    """The public page of one published version (served by the policy plugin)."""
    return settings.public_url(f"/policy/v/{version}")


def signer_json(slot: SignerSlot, signature: Signature | None) -> dict[str, Any]:
    return {
        "role": slot.role,
        "expected_name": slot.expected_name,
        "relationship": relationship_words(slot.relationship) or None,
        "signed": signature is not None,
        "signed_at": iso(signature.signed_at) if signature else None,
        "typed_name": signature.typed_name if signature else None,
        "esign_disclosure_version": signature.esign_disclosure_version if signature else None,
    }


def status(slots: Sequence[dict[str, Any]], superseded: bool) -> str:
    if superseded:
        return "superseded"
    if not all(s["signed"] for s in slots if s["role"] != Role.THERAPIST):
        return "awaiting_signatures"
    if not all(s["signed"] for s in slots):
        return "awaiting_countersignature"
    return "signed"


def online_json(
    ack: Acknowledgement,
    signers: list[dict[str, Any]],
    replaced_by: Acknowledgement | None,
    policy_url: PolicyUrl,
) -> dict[str, Any]:
    return {
        "kind": "online",
        "id": ack.id,
        "policy_version": ack.policy_version,
        "policy_sha256": ack.policy_hash,
        "policy_url": policy_url(ack.policy_version),
        "created_at": iso(ack.created_at),
        "status": status(signers, replaced_by is not None),
        "party": ack.party,
        "minor_name": ack.minor_name,
        "supersedes_id": ack.supersedes_id,
        "superseded_at": iso(replaced_by.created_at) if replaced_by else None,
        "signers": signers,
    }


def paper_json(row: PaperAcknowledgement, policy_url: PolicyUrl) -> dict[str, Any]:
    return {
        "kind": "paper",
        "id": row.id,
        "policy_version": row.policy_version,
        "policy_sha256": row.policy_hash,
        "policy_url": policy_url(row.policy_version),
        "created_at": iso(row.recorded_at),
        "status": "signed",
        "signer_names": list(row.signer_names),
        "signed_on": row.signed_on.isoformat(),
        "scan_sha256": row.sha256,
        "scan_content_type": row.content_type,
        "scan_size": row.size,
    }


def discussion_json(row: PolicyDiscussion, staff_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "policy_version": row.policy_version,
        "discussed_on": row.discussed_on.isoformat(),
        "recorded_at": iso(row.recorded_at),
        "recorded_by": {"id": row.staff_account_id, "name": staff_name},
    }


# The four queries, built once with the ids as an expanding parameter (building a select and
# its cache key per call cost about as much as running it), each of the columns the JSON reads:
# Core rows, since an API read or a bulk export only reads them. Never the scan itself.
_ACKS = select(
    col(Acknowledgement.id),
    col(Acknowledgement.enrollment_id),
    col(Acknowledgement.created_at),
    col(Acknowledgement.party),
    col(Acknowledgement.minor_name),
    col(Acknowledgement.policy_version),
    col(Acknowledgement.policy_hash),
    col(Acknowledgement.supersedes_id),
).where(col(Acknowledgement.enrollment_id).in_(IDS))
# Each slot with its signature, if signed (a slot is signed at most once).
_SLOTS = (
    select(
        col(SignerSlot.id),
        col(SignerSlot.acknowledgement_id),
        col(SignerSlot.role),
        col(SignerSlot.expected_name),
        col(SignerSlot.relationship),
        col(Signature.signed_at),
        col(Signature.typed_name),
        col(Signature.esign_disclosure_version),
    )
    .outerjoin(Signature, col(Signature.slot_id) == col(SignerSlot.id))
    .where(col(SignerSlot.acknowledgement_id).in_(IDS))
    .order_by(col(SignerSlot.position))
)
_PAPERS = select(
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
).where(col(PaperAcknowledgement.enrollment_id).in_(IDS))
_DISCUSSIONS = (
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
    .order_by(col(PolicyDiscussion.discussed_on).desc(), col(PolicyDiscussion.recorded_at).desc())
)


def _online(
    db: Session, enrollment_ids: list[str], history: bool, policy_url: PolicyUrl
) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """enrollment id -> [(sort key, item)] for the online acknowledgements (two queries)."""
    acks = [as_model(Acknowledgement, row) for row in core_rows(db, _ACKS, enrollment_ids)]
    signers: dict[str, list[dict[str, Any]]] = {}
    for row in core_rows(db, _SLOTS, [ack.id for ack in acks]) if acks else ():
        # The row's signature columns, named as a Signature's, are null for an unsigned slot.
        signature = as_model(Signature, row) if row.signed_at is not None else None
        signers.setdefault(row.acknowledgement_id, []).append(
            signer_json(as_model(SignerSlot, row), signature)
        )
    replaced_by = {ack.supersedes_id: ack for ack in acks if ack.supersedes_id}
    found: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for ack in acks:
        replacement = replaced_by.get(ack.id)
        if replacement is not None and not history:
            continue
        item = online_json(ack, signers.get(ack.id, []), replacement, policy_url)
        found.setdefault(ack.enrollment_id, []).append(((ack.created_at, ack.id), item))
    return found


def load(
    settings: Settings, db: Session, refs: Sequence[ClientRef], history: bool
) -> dict[str, Any]:
    clients = {ref.enrollment_id: ref.client_id for ref in refs if ref.enrollment_id}
    if not clients:
        return {}
    ids = list(clients)
    policy_url = partial(versioned_policy_url, settings)
    items = _online(db, ids, history, policy_url)
    for row in core_rows(db, _PAPERS, ids):
        paper = as_model(PaperAcknowledgement, row)
        key = (paper.recorded_at, paper.id)
        items.setdefault(paper.enrollment_id, []).append((key, paper_json(paper, policy_url)))
    discussions: dict[str, list[dict[str, Any]]] = {}
    for row in core_rows(db, _DISCUSSIONS, ids):
        discussions.setdefault(row.enrollment_id, []).append(
            discussion_json(as_model(PolicyDiscussion, row), row.staff_name)
        )
    return section_values(clients, items, discussions)


def section_values(
    clients: dict[str, str],
    items: dict[str, list[tuple[Any, dict[str, Any]]]],
    discussions: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """Each client's section: signed items newest first (by their sort key), and discussions."""
    values: dict[str, Any] = {}
    for enrollment_id in items.keys() | discussions.keys():
        ordered = sorted(items.get(enrollment_id, []), key=lambda pair: pair[0], reverse=True)
        values[clients[enrollment_id]] = {
            "items": [item for _key, item in ordered],
            "policy_discussions": discussions.get(enrollment_id, []),
        }
    return values


def section(settings: Settings) -> ApiSection:
    return ApiSection(
        key="acknowledgements",
        title="Acknowledgements of the policy, with signatures, and discussions in session",
        scope="clients:read",
        schema=ACKNOWLEDGEMENTS_SCHEMA,
        load=partial(load, settings),
        fhir=fhir_acknowledgement.MAPPING,
    )
