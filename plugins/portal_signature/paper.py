"""Paper acknowledgements: signed on paper, scanned, recorded by staff. Only ever INSERTs.

Public: `record`, `for_enrollment`, `best_by_enrollment` (the board), `scan` (downloads).
A paper acknowledgement counts as signed on the staff side; the online step still asks the
client to sign, as the wizard's completion is about the online journey.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal.rows import IDS
from portal.staff.models import StaffAccount
from portal_policy.models import PolicyVersion
from portal_signature.models import PaperAcknowledgement

# Listing never loads the scans themselves.
_WITHOUT_SCAN = defer(PaperAcknowledgement.content)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PaperRecord:
    row: PaperAcknowledgement
    recorded_by_name: str


def record(
    db: Session,
    enrollment: Enrollment,
    policy: PolicyVersion,
    *,
    signer_names: Sequence[str],
    signed_on: date,
    file_name: str,
    content: bytes,
    content_type: str,
    staff_id: str,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> tuple[PaperAcknowledgement, bool]:
    """Add the record; returns it and whether it is new. The same scan recorded again for the
    same version and day (a double click, a reload) adds nothing."""
    digest = hashlib.sha256(content).hexdigest()
    db.exec(
        select(Enrollment.id).where(col(Enrollment.id) == enrollment.id).with_for_update()
    ).first()
    same = db.exec(
        select(PaperAcknowledgement)
        .options(_WITHOUT_SCAN)
        .where(col(PaperAcknowledgement.enrollment_id) == enrollment.id)
        .where(col(PaperAcknowledgement.sha256) == digest)
        .where(col(PaperAcknowledgement.policy_version_id) == policy.id)
        .where(col(PaperAcknowledgement.signed_on) == signed_on)
    ).first()
    if same is not None:
        return same, False
    row = PaperAcknowledgement(
        enrollment_id=enrollment.id,
        client_id=enrollment.client_id,
        policy_version_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.content_hash,
        signer_names=list(signer_names),
        signed_on=signed_on,
        recorded_by=staff_id,
        recorded_at=now,
        file_name=file_name,
        content_type=content_type,
        size=len(content),
        sha256=digest,
        content=content,
    )
    db.add(row)
    audit.record(
        db,
        actor,
        "paper_acknowledgement.recorded",
        "paper_acknowledgement",
        row.id,
        meta,
        enrollment_id=enrollment.id,
        policy_version=policy.version,
        signers=len(row.signer_names),
        signed_on=signed_on.isoformat(),
        content_type=content_type,
        size=row.size,
        sha256=digest,
    )
    return row, True


def for_enrollment(db: Session, enrollment_id: str) -> list[PaperRecord]:
    """Newest first, without the scans."""
    rows = db.exec(
        select(PaperAcknowledgement, StaffAccount.name)
        .options(_WITHOUT_SCAN)
        .join(StaffAccount, col(StaffAccount.id) == col(PaperAcknowledgement.recorded_by))
        .where(col(PaperAcknowledgement.enrollment_id) == enrollment_id)
        .order_by(col(PaperAcknowledgement.recorded_at).desc(), col(PaperAcknowledgement.id).desc())
    ).all()
    return [PaperRecord(row, name) for row, name in rows]


_BEST = (
    select(PaperAcknowledgement)
    .options(_WITHOUT_SCAN)
    .where(col(PaperAcknowledgement.enrollment_id).in_(IDS))
    .order_by(col(PaperAcknowledgement.policy_version), col(PaperAcknowledgement.recorded_at))
)


def best_by_enrollment(
    db: Session, enrollment_ids: Sequence[str]
) -> dict[str, PaperAcknowledgement]:
    """For each enrollment with one, the paper acknowledgement of the newest policy version."""
    rows = db.exec(_BEST, params={"ids": list(enrollment_ids)}).all()
    return {row.enrollment_id: row for row in rows}  # ascending: the last one wins


def scan(db: Session, enrollment_id: str, paper_id: str) -> PaperAcknowledgement | None:
    """The record with its scan, when it belongs to this enrollment."""
    row = db.get(PaperAcknowledgement, paper_id)
    return row if row is not None and row.enrollment_id == enrollment_id else None
