"""The policy on the consent board: "must re-acknowledge" and "not signed" filters, and the
latest re-acknowledgement campaign's progress above the list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, not_
from sqlmodel import Session, col

from portal.models import Enrollment
from portal_policy import campaign_progress, service, signed_records


def must_reacknowledge(db: Session) -> Any:
    current = service.current_number(db)
    if current is None:
        return None
    return and_(
        signed_records.has_complete_ack(col(Enrollment.id), None),
        not_(signed_records.has_complete_ack(col(Enrollment.id), current)),
    )


def not_signed(db: Session) -> Any:
    return not_(signed_records.has_complete_ack(col(Enrollment.id), None))


def campaign_panel(db: Session) -> dict[str, Any] | None:
    campaign = campaign_progress.latest(db)
    if campaign is None:
        return None
    return {"progress": campaign_progress.progress(db, campaign)}
