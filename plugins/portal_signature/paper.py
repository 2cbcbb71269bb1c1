"""Paper acknowledgements: signed on paper, scanned, recorded by staff. Only ever INSERTs.

Public: `record`, `for_enrollment`, `newest_versions` (the board), `scan` (downloads).
A paper acknowledgement counts as signed on the staff side; the online step still asks the
client to sign, as the wizard's completion is about the online journey.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal.rows import IDS, core_rows
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


_NEWEST_VERSIONS = (
    select(
        col(PaperAcknowledgement.enrollment_id), func.max(col(PaperAcknowledgement.policy_version))
    )
    .where(col(PaperAcknowledgement.enrollment_id).in_(IDS))
    .group_by(col(PaperAcknowledgement.enrollment_id))
)


def newest_versions(db: Session, enrollment_ids: Sequence[str]) -> dict[str, int]:
    """For each enrollment with one, the newest policy version acknowledged on paper."""
    return {row[0]: row[1] for row in core_rows(db, _NEWEST_VERSIONS, enrollment_ids)}


def scan(db: Session, enrollment_id: str, paper_id: str) -> PaperAcknowledgement | None:
    """The record with its scan, when it belongs to this enrollment."""
    row = db.get(PaperAcknowledgement, paper_id)
    return row if row is not None and row.enrollment_id == enrollment_id else None
