"""How far the latest re-acknowledgement campaign got, counted in the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal.models import Enrollment, EnrollmentStatus
from portal_policy import signed_records
from portal_policy.models import PolicyCampaign, PolicyCampaignRecipient


@dataclass(frozen=True)
class Progress:
    campaign: PolicyCampaign
    asked: int  # clients asked to re-acknowledge (emailed or not)
    resigned: int  # of them, signed this version (or a later one) since
    started_by: str  # a name for the page

    @property
    def outstanding(self) -> int:
        return self.asked - self.resigned


def latest(db: Session) -> PolicyCampaign | None:
    return db.exec(
        select(PolicyCampaign).order_by(col(PolicyCampaign.policy_version).desc())
    ).first()


def progress(db: Session, campaign: PolicyCampaign, started_by: str = "") -> Progress:
    """Counts by aggregate queries: the page costs the same for 10 clients or 10,000."""
    recipients = select(func.count()).where(col(PolicyCampaignRecipient.campaign_id) == campaign.id)
    asked = db.exec(recipients).one()
    if not asked:
        return Progress(campaign, 0, 0, started_by)
    signed_again = signed_records.has_complete_ack(
        col(PolicyCampaignRecipient.enrollment_id), campaign.policy_version
    )
    resigned = db.exec(recipients.where(signed_again)).one()
    return Progress(campaign, int(asked), int(resigned), started_by)


def signed_count(db: Session) -> int:
    """Live enrollments with a signed acknowledgement: whom publishing a new version asks to
    sign again (before contact preferences decide who is emailed)."""
    try:
        query = (
            select(func.count())
            .select_from(Enrollment)
            .where(col(Enrollment.status) != EnrollmentStatus.CANCELLED)
            .where(signed_records.has_complete_ack(col(Enrollment.id), None))
        )
    except ImportError:
        return 0
    return int(db.exec(query).one())
