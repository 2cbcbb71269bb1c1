"""What the signature plugin's records say, read in bulk for campaigns (one query per batch,
not three per client). Imported lazily: without portal_signature nobody signed anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select


def latest_signed_versions(db: Session, enrollment_ids: list[str]) -> dict[str, int]:
    """The policy version of each enrollment's latest signed acknowledgement, for a batch in
    three queries (`portal_signature.service.latest_signed` costs three per enrollment: too
    many for a practice's whole client list in one request)."""
    from portal_signature.service import latest_signed_summaries

    found = latest_signed_summaries(db, enrollment_ids)
    return {enrollment_id: signed.policy_version for enrollment_id, signed in found.items()}


def has_complete_ack(enrollment_id: Any, min_version: int | None) -> Any:
    """EXISTS an acknowledgement (of `min_version` or later) that every client-side signer
    signed: what portal_signature's AckState calls complete, as SQL for counting."""
    from portal_signature.models import Acknowledgement, Role, Signature, SignerSlot

    client_slot = (
        select(SignerSlot.id)
        .where(col(SignerSlot.acknowledgement_id) == col(Acknowledgement.id))
        .where(col(SignerSlot.role) != Role.THERAPIST)
    )
    unsigned = client_slot.where(~exists().where(col(Signature.slot_id) == col(SignerSlot.id)))
    query = (
        select(Acknowledgement.id)
        .where(col(Acknowledgement.enrollment_id) == enrollment_id)
        .where(exists(client_slot))
        .where(~exists(unsigned))
    )
    if min_version is not None:
        query = query.where(col(Acknowledgement.policy_version) >= min_version)
    return exists(query)
