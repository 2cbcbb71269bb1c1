"""The client page's "Invitation" section: the invitations sent, and what staff can do next.

Built in rather than a plugin: invitations are the host's. `SECTION` joins the plugins'
sections in `portal.routes.staff_clients.sections`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from portal.db import utcnow
from portal.models import Client, Enrollment, EnrollmentStatus, Invitation
from portal.staff.board import ClientSection

SHOWN = 20  # a long history of resends is summarised, not listed


@dataclass(frozen=True)
class InvitationRow:
    invitation: Invitation
    state: str  # "open", "used", "cancelled", "expired"

    @property
    def words(self) -> str:
        inv = self.invitation
        if self.state == "used" and inv.used_at:
            return f"Used {inv.used_at:%Y-%m-%d %H:%M} UTC"
        if self.state == "cancelled" and inv.cancelled_at:
            return f"Withdrawn {inv.cancelled_at:%Y-%m-%d %H:%M} UTC"
        if self.state == "expired":
            return f"Expired {inv.expires_at:%Y-%m-%d}"
        return f"Unused, works until {inv.expires_at:%Y-%m-%d}"


def state_of(invitation: Invitation, now: datetime) -> str:
    if invitation.used_at is not None:
        return "used"
    if invitation.cancelled_at is not None:
        return "cancelled"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def context(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    now = utcnow()
    rows = db.exec(
        select(Invitation)
        .where(col(Invitation.enrollment_id) == enrollment.id)
        .order_by(col(Invitation.created_at).desc(), col(Invitation.id).desc())
        .limit(SHOWN)
    ).all()
    shown = [InvitationRow(row, state_of(row, now)) for row in rows]
    active = enrollment.status in (EnrollmentStatus.INVITED, EnrollmentStatus.IN_PROGRESS)
    has_open = any(row.state == "open" for row in shown)
    return {
        "invitations": shown,
        "invitation_can_resend": active,
        "invitation_can_cancel": active
        and (has_open or enrollment.status == EnrollmentStatus.INVITED),
        "invitation_has_link": active and has_open,
    }


SECTION = ClientSection(
    "invitation", "Invitation", 40, "staff/actions/invitation_section.html", context
)
