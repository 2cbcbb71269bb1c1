"""What the signature plugin's records say, read in bulk for campaigns (one query per batch,
not three per client). Imported lazily: without portal_signature nobody signed anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select


def latest_signed_versions(db: Session, enrollment_ids: list[str]) -> dict[str, int]:
    """The policy version of each enrollment's latest signed acknowledgement, for a batch in
    three queries. Mirrors `portal_signature.service.latest_signed` (the newest acknowledgement
    nobody superseded whose client-side signers all signed), which costs three queries per
    enrollment: too many for a practice's whole client list in one request."""
    from portal_signature.models import Acknowledgement, Signature, SignerSlot
    from portal_signature.service import AckState

    acks = list(
        db.exec(
            select(Acknowledgement).where(col(Acknowledgement.enrollment_id).in_(enrollment_ids))
        )
    )
    ack_ids = [ack.id for ack in acks]
    slots: dict[str, list[SignerSlot]] = {}
    for slot in db.exec(
        select(SignerSlot)
        .where(col(SignerSlot.acknowledgement_id).in_(ack_ids))
        .order_by(col(SignerSlot.position))
    ):
        slots.setdefault(slot.acknowledgement_id, []).append(slot)
    signed: dict[str, dict[str, Signature]] = {}
    for row in db.exec(select(Signature).where(col(Signature.acknowledgement_id).in_(ack_ids))):
        signed.setdefault(row.acknowledgement_id, {})[row.slot_id] = row
    superseded = {ack.supersedes_id for ack in acks if ack.supersedes_id}
    versions: dict[str, int] = {}
    for ack in sorted(acks, key=lambda a: (a.created_at, a.id), reverse=True):
        if ack.id in superseded or ack.enrollment_id in versions:
            continue
        state = AckState(ack, tuple(slots.get(ack.id, [])), signed.get(ack.id, {}))
        if state.complete:
            versions[ack.enrollment_id] = ack.policy_version
    return versions


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
