"""Invitation and resume links: signed, expiring, and for invitations, good for one use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col, select

from portal import audit, client_sessions
from portal.audit import Actor, RequestMeta
from portal.db import new_id
from portal.mail_templates import MailRenderer
from portal.models import Client, Enrollment, EnrollmentStatus, Invitation, Practice
from portal.outbox import OutboxMessage, enqueue
from portal.settings import Settings
from portal.tokens import Purpose, TokenError, Tokens


class LinkStatus(StrEnum):
    OK = "ok"
    USED = "used"
    EXPIRED = "expired"
    INVALID = "invalid"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LinkCheck:
    status: LinkStatus
    enrollment: Enrollment | None = None
    invitation: Invitation | None = None


@dataclass(frozen=True)
class Services:
    """What creating and following links needs besides the database session."""

    settings: Settings
    tokens: Tokens
    mail: MailRenderer


def invite(
    db: Session,
    svc: Services,
    practice: Practice,
    *,
    full_name: str,
    email: str,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
    therapist_id: str | None = None,
) -> tuple[Enrollment, str]:
    """Create the client and an invitation, and queue the invitation email. Returns the link."""
    client = Client(full_name=full_name, email=email, created_at=now)
    db.add(client)
    enrollment = Enrollment(client_id=client.id, created_at=now, therapist_id=therapist_id)
    db.add(enrollment)
    link = _new_invitation(db, svc, practice, client, enrollment, now)
    audit.record(db, actor, "client.invited", "enrollment", enrollment.id, meta)
    return enrollment, link


def _new_invitation(
    db: Session,
    svc: Services,
    practice: Practice,
    client: Client,
    enrollment: Enrollment,
    now: datetime,
) -> str:
    invitation = Invitation(
        enrollment_id=enrollment.id,
        created_at=now,
        expires_at=now + timedelta(days=svc.settings.invitation_days),
    )
    db.add(invitation)
    token = svc.tokens.sign(Purpose.INVITATION, {"i": invitation.id})
    link = svc.settings.public_url(f"/i/{token}")
    db.flush()
    enqueue(
        db,
        svc.mail.render(
            "invitation",
            purpose="invitation",
            to=client.email,
            subject=f"{practice.name}: please complete your onboarding",
            practice=practice,
            client=client,
            link=link,
            days=svc.settings.invitation_days,
        ),
    )
    return link


def check_invitation(db: Session, svc: Services, token: str, now: datetime) -> LinkCheck:
    """Say whether an invitation link can be used, without using it."""
    try:
        data = svc.tokens.verify(Purpose.INVITATION, token, svc.settings.invitation_days * 86400)
    except TokenError as exc:
        return LinkCheck(LinkStatus.EXPIRED if exc.reason == "expired" else LinkStatus.INVALID)
    invitation = db.get(Invitation, str(data.get("i", "")))
    if invitation is None:
        return LinkCheck(LinkStatus.INVALID)
    enrollment = db.get(Enrollment, invitation.enrollment_id)
    if enrollment is None:
        return LinkCheck(LinkStatus.INVALID)
    if invitation.cancelled_at is not None or enrollment.status == EnrollmentStatus.CANCELLED:
        return LinkCheck(LinkStatus.CANCELLED, enrollment, invitation)
    if invitation.used_at is not None:
        return LinkCheck(LinkStatus.USED, enrollment, invitation)
    if invitation.expires_at <= now:
        return LinkCheck(LinkStatus.EXPIRED, enrollment, invitation)
    return LinkCheck(LinkStatus.OK, enrollment, invitation)


def accept_invitation(
    db: Session, svc: Services, token: str, meta: RequestMeta, now: datetime
) -> tuple[LinkCheck, str | None]:
    """Use the invitation (once) and start a client session. Returns the session key."""
    check = check_invitation(db, svc, token, now)
    if check.status is not LinkStatus.OK or check.invitation is None or check.enrollment is None:
        return check, None
    # The conditional update is the single-use guarantee: of two racing requests, one wins.
    claimed = db.execute(
        update(Invitation)
        .where(col(Invitation.id) == check.invitation.id)
        .where(col(Invitation.used_at).is_(None))
        # A cancel (or a resend) committed since the check wins over this use.
        .where(col(Invitation.cancelled_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.refresh(check.invitation)
        lost = LinkStatus.CANCELLED if check.invitation.cancelled_at else LinkStatus.USED
        return LinkCheck(lost, check.enrollment, check.invitation), None
    return check, _begin_session(db, svc, check.enrollment, "invitation.used", meta, now)


def _begin_session(
    db: Session,
    svc: Services,
    enrollment: Enrollment,
    action: str,
    meta: RequestMeta,
    now: datetime,
) -> str:
    """Start a client session from a link; the first one also starts the journey."""
    if enrollment.status == EnrollmentStatus.INVITED:
        enrollment.status = EnrollmentStatus.IN_PROGRESS
        enrollment.started_at = now
        db.add(enrollment)
    key = client_sessions.start(db, enrollment.id, now, svc.settings.session_hours)
    audit.record(db, Actor("client", enrollment.id), action, "enrollment", enrollment.id, meta)
    return key


def resume_link(svc: Services, enrollment: Enrollment) -> str:
    token = svc.tokens.sign(Purpose.RESUME, {"e": enrollment.id, "n": enrollment.resume_nonce})
    return svc.settings.public_url(f"/r/{token}")


def check_resume(db: Session, svc: Services, token: str) -> LinkCheck:
    try:
        data = svc.tokens.verify(Purpose.RESUME, token, svc.settings.resume_days * 86400)
    except TokenError as exc:
        return LinkCheck(LinkStatus.EXPIRED if exc.reason == "expired" else LinkStatus.INVALID)
    enrollment = db.get(Enrollment, str(data.get("e", "")))
    if enrollment is None or enrollment.resume_nonce != data.get("n"):
        return LinkCheck(LinkStatus.INVALID)
    if enrollment.status == EnrollmentStatus.CANCELLED:
        return LinkCheck(LinkStatus.CANCELLED, enrollment)
    return LinkCheck(LinkStatus.OK, enrollment)


def accept_resume(
    db: Session, svc: Services, token: str, meta: RequestMeta, now: datetime
) -> tuple[LinkCheck, str | None]:
    check = check_resume(db, svc, token)
    if check.status is not LinkStatus.OK or check.enrollment is None:
        return check, None
    return check, _begin_session(db, svc, check.enrollment, "resume_link.used", meta, now)


def send_resume_link(
    db: Session,
    svc: Services,
    practice: Practice,
    enrollment: Enrollment,
    actor: Actor,
    meta: RequestMeta,
) -> None:
    client = db.get(Client, enrollment.client_id)
    if client is None:
        return
    # A new link retires the earlier ones: only the newest resume link in the inbox works.
    enrollment.resume_nonce = new_id()
    db.add(enrollment)
    enqueue(
        db,
        svc.mail.render(
            "resume",
            purpose="resume",
            to=client.email,
            subject=f"{practice.name}: your link to continue",
            practice=practice,
            client=client,
            link=resume_link(svc, enrollment),
            days=svc.settings.resume_days,
            complete=enrollment.status == EnrollmentStatus.COMPLETE,
        ),
    )
    audit.record(db, actor, "resume_link.sent", "enrollment", enrollment.id, meta)


RESEND_INTERVAL = timedelta(minutes=5)


def _recently_sent(db: Session, email: str, meta: RequestMeta) -> bool:
    """At most one requested link per address every few minutes: nobody can flood a client."""
    since = datetime.now(UTC) - RESEND_INTERVAL
    found = db.exec(
        select(OutboxMessage.id)
        .where(col(OutboxMessage.to_addr) == email)
        .where(col(OutboxMessage.purpose) == "resume")
        .where(col(OutboxMessage.created_at) > since)
        .limit(1)
    ).first()
    return found is not None


def request_new_link(
    db: Session, svc: Services, practice: Practice, email: str, meta: RequestMeta
) -> None:
    """Email a fresh link to whoever owns `email`. Answers nothing: no account enumeration."""
    row = db.exec(
        select(Enrollment)
        .join(Client, col(Client.id) == col(Enrollment.client_id))
        .where(col(Client.email) == email)
        .where(col(Enrollment.status) != EnrollmentStatus.CANCELLED)
        .order_by(col(Enrollment.created_at).desc())
        .limit(1)
    ).first()
    if row is not None and not _recently_sent(db, email, meta):
        # Asked for by whoever typed the address: not evidence that the client acted.
        send_resume_link(db, svc, practice, row, Actor("public", meta.ip or "unknown"), meta)


# -- staff actions on invitations: resend, cancel, show the link ---------------------------


class InvitationRefused(Exception):
    """The enrollment's state does not allow this invitation action; the message says why."""


def open_invitation(db: Session, enrollment_id: str, now: datetime) -> Invitation | None:
    """The newest invitation that can still be used (not used, cancelled or expired)."""
    return db.exec(
        select(Invitation)
        .where(col(Invitation.enrollment_id) == enrollment_id)
        .where(col(Invitation.used_at).is_(None))
        .where(col(Invitation.cancelled_at).is_(None))
        .where(col(Invitation.expires_at) > now)
        .order_by(col(Invitation.created_at).desc(), col(Invitation.id).desc())
    ).first()


def _lock(db: Session, enrollment: Enrollment) -> Enrollment:
    # Serialises staff actions and the client's own use of a link on PostgreSQL (SQLite
    # writers are serialised already), and re-reads the status another request may have set.
    return db.exec(
        select(Enrollment)
        .where(col(Enrollment.id) == enrollment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _retire_unused(db: Session, enrollment_id: str, now: datetime) -> int:
    # Conditional, like the claim in `accept_invitation`: of a use and a cancel, one wins.
    result = db.execute(
        update(Invitation)
        .where(col(Invitation.enrollment_id) == enrollment_id)
        .where(col(Invitation.used_at).is_(None))
        .where(col(Invitation.cancelled_at).is_(None))
        .values(cancelled_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def resend_invitation(
    db: Session,
    svc: Services,
    practice: Practice,
    enrollment: Enrollment,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> str:
    """Email a new invitation. Earlier unused ones stop working, so only the newest link in
    the client's inbox opens. Returns the link; raises InvitationRefused."""
    enrollment = _lock(db, enrollment)
    if enrollment.status == EnrollmentStatus.CANCELLED:
        raise InvitationRefused(
            "This invitation was cancelled, so it can't be resent. Invite the client again."
        )
    if enrollment.status == EnrollmentStatus.COMPLETE:
        raise InvitationRefused("The client has completed onboarding: there is nothing to resend.")
    client = db.get(Client, enrollment.client_id)
    if client is None:
        raise InvitationRefused("This client's record is incomplete.")
    retired = _retire_unused(db, enrollment.id, now)
    link = _new_invitation(db, svc, practice, client, enrollment, now)
    audit.record(db, actor, "invitation.resent", "enrollment", enrollment.id, meta, retired=retired)
    return link


def cancel_invitation(
    db: Session, enrollment: Enrollment, *, actor: Actor, meta: RequestMeta, now: datetime
) -> bool:
    """Stop every unused invitation link. A client who never started is then cancelled too
    (returns True); one who started keeps their progress. Raises InvitationRefused."""
    enrollment = _lock(db, enrollment)
    if enrollment.status == EnrollmentStatus.CANCELLED:
        raise InvitationRefused("This invitation is already cancelled.")
    if enrollment.status == EnrollmentStatus.COMPLETE:
        raise InvitationRefused("The client has completed onboarding: there is nothing to cancel.")
    retired = _retire_unused(db, enrollment.id, now)
    never_started = enrollment.status == EnrollmentStatus.INVITED
    if not retired and not never_started:
        raise InvitationRefused(
            "The client has already used their invitation to start, and there is no unused "
            "invitation to cancel."
        )
    if never_started:
        enrollment.status = EnrollmentStatus.CANCELLED
        db.add(enrollment)
    audit.record(
        db,
        actor,
        "invitation.cancelled",
        "enrollment",
        enrollment.id,
        meta,
        retired=retired,
        enrollment_cancelled=never_started,
    )
    return never_started


def invitation_link(
    db: Session,
    svc: Services,
    enrollment: Enrollment,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> str:
    """A freshly signed link to the newest usable invitation, for staff to pass on by hand.

    Anyone holding it can start the client's onboarding, so each showing is audited.
    Raises InvitationRefused when no invitation can be used.
    """
    if enrollment.status == EnrollmentStatus.CANCELLED:
        raise InvitationRefused("This invitation was cancelled, so it has no link.")
    invitation = open_invitation(db, enrollment.id, now)
    if invitation is None:
        raise InvitationRefused(
            "There is no unused invitation: it was used, has expired or was cancelled. "
            "Resend the invitation to get a new link."
        )
    token = svc.tokens.sign(Purpose.INVITATION, {"i": invitation.id})
    audit.record(
        db,
        actor,
        "invitation.link_viewed",
        "enrollment",
        enrollment.id,
        meta,
        invitation_id=invitation.id,
    )
    return svc.settings.public_url(f"/i/{token}")
