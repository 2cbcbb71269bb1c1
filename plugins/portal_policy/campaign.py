"""Re-acknowledgement campaigns: a new version is a change clients are told about in writing.

`start` runs in the transaction that publishes: every client whose latest signed acknowledgement
is of an older version gets an email (through the outbox) with a link to the short flow that
shows what changed and asks for a new signature. It walks the clients in batches by keyset, so
a practice with tens of thousands of clients is never held in memory at once.

Clients who allowed no email are still recorded (the board shows "must re-acknowledge" for them
too) but are not emailed: a request for confidential communications outranks convenience, and
the practice tells them another way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import exists
from sqlmodel import Session, col, select

from portal import audit, invitations
from portal.audit import Actor, RequestMeta
from portal.invitations import Services
from portal.models import Client, Enrollment, EnrollmentStatus, Practice
from portal.outbox import Mail, enqueue
from portal_policy import changes, signed_records
from portal_policy.changes import SectionChanges
from portal_policy.models import PolicyCampaign, PolicyCampaignRecipient, PolicyVersion

BATCH_SIZE = 500
MAIL_PURPOSE = "policy_update"


def start(
    db: Session,
    svc: Services,
    practice: Practice,
    version: PolicyVersion,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> PolicyCampaign:
    """Record the campaign for `version` and notify everyone who signed an earlier one."""
    campaign = PolicyCampaign(
        policy_version_id=version.id,
        policy_version=version.version,
        started_at=now,
        started_by=actor.label,
    )
    db.add(campaign)
    db.flush()
    summaries: dict[int, SectionChanges] = {}
    for batch in _signed_batches(db):
        # Read everything the batch needs first, then add its rows and write them together:
        # no query in between triggers a flush, so the inserts go out as one batch.
        signed = signed_records.latest_signed_versions(
            db, [enrollment.id for enrollment, _ in batch]
        )
        due = [
            (enrollment, client, signed[enrollment.id])
            for enrollment, client in batch
            if signed.get(enrollment.id, version.version) < version.version
        ]
        addresses = {
            enrollment.id: _email_for(db, enrollment, client) for enrollment, client, _ in due
        }
        for number in {number for _, _, number in due} - summaries.keys():
            summaries[number] = _summary(db, number, version)
        for enrollment, client, number in due:
            to = addresses[enrollment.id]
            if to:
                mail = _mail(svc, practice, version, enrollment, client, to, number, summaries)
                enqueue(db, mail)
                campaign.clients_notified += 1
            else:
                campaign.clients_not_emailed += 1
            db.add(
                PolicyCampaignRecipient(
                    campaign_id=campaign.id,
                    enrollment_id=enrollment.id,
                    signed_version=number,
                    emailed=bool(to),
                    notified_at=now,
                )
            )
            audit.record(
                db,
                actor,
                "policy.reacknowledgement_requested",
                "enrollment",
                enrollment.id,
                meta,
                campaign=campaign.id,
                version=version.version,
                signed_version=number,
                emailed=bool(to),
            )
        # Written per batch: the session then holds no strong reference to the batch's rows.
        db.flush()
    db.add(campaign)
    audit.record(
        db,
        actor,
        "policy.campaign_started",
        "policy_campaign",
        campaign.id,
        meta,
        version=version.version,
        notified=campaign.clients_notified,
        not_emailed=campaign.clients_not_emailed,
    )
    return campaign


def _signed_batches(db: Session) -> Iterator[list[tuple[Enrollment, Client]]]:
    """Live enrollments with any acknowledgement, BATCH_SIZE at a time, by id (keyset)."""
    try:
        from portal_signature.models import Acknowledgement
    except ImportError:
        return  # without the signature plugin nobody signed anything
    has_ack = exists().where(col(Acknowledgement.enrollment_id) == col(Enrollment.id))
    after = ""
    while True:
        batch = list(
            db.exec(
                select(Enrollment, Client)
                .join(Client, col(Client.id) == col(Enrollment.client_id))
                .where(col(Enrollment.status) != EnrollmentStatus.CANCELLED)
                .where(has_ack)
                .where(col(Enrollment.id) > after)
                .order_by(col(Enrollment.id))
                .limit(BATCH_SIZE)
            ).all()
        )
        if not batch:
            return
        yield [(enrollment, client) for enrollment, client in batch]
        after = batch[-1][0].id


def _email_for(db: Session, enrollment: Enrollment, client: Client) -> str | None:
    """Where the client allowed email, or None when they allowed none."""
    try:
        from portal_contact.service import allows_email
    except ImportError:
        # No contact preferences are kept at all: the address they were invited at.
        return client.email
    return allows_email(db, enrollment.id)


def _summary(db: Session, signed: int, version: PolicyVersion) -> SectionChanges:
    old = db.exec(select(PolicyVersion).where(PolicyVersion.version == signed)).first()
    return SectionChanges() if old is None else changes.between(old, version).sections


def _mail(
    svc: Services,
    practice: Practice,
    version: PolicyVersion,
    enrollment: Enrollment,
    client: Client,
    to: str,
    signed: int,
    summaries: dict[int, SectionChanges],
) -> Mail:
    return svc.mail.render(
        "policy_updated",
        purpose=MAIL_PURPOSE,
        to=to,
        subject=f"{practice.name}: We've updated our {version.title}",
        practice=practice,
        client=client,
        title=version.title,
        version=version.version,
        signed_version=signed,
        changes=summaries[signed],
        # One link per client; resume_link does not rotate the nonce, so links already in
        # the client's inbox keep working.
        link=invitations.resume_link(svc, enrollment),
        days=svc.settings.resume_days,
        new_link_url=svc.settings.public_url("/link"),
    )
