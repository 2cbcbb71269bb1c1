"""Publishing and looking up policy versions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal import audit, changes
from portal.audit import Actor, RequestMeta
from portal.models import Practice
from portal_policy.models import PolicyVersion
from portal_policy.rendering import (
    PolicyTemplateError,
    PracticeDetails,
    default_policy_source,
    missing_details,
    render_policy,
)

LABELS = {
    "practice_name": "name",
    "practice_phone": "phone",
    "practice_email": "email",
    "practice_website": "website",
    "licensing_board": "licensing board",
    "crisis_line": "crisis line",
}


def practice_details(practice: Practice) -> PracticeDetails:
    return PracticeDetails(
        name=practice.name,
        phone=practice.phone,
        email=practice.email,
        website=practice.website,
        licensing_board=practice.licensing_board,
        crisis_line=practice.crisis_line,
    )


def current(db: Session) -> PolicyVersion | None:
    return db.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc())).first()


_CURRENT_NUMBER = select(func.max(col(PolicyVersion.version)))
# The current version's id, as a subquery for batch queries of the steps.
CURRENT_ID = (
    select(PolicyVersion.id).order_by(col(PolicyVersion.version).desc()).limit(1).scalar_subquery()
)


def current_number(db: Session) -> int | None:
    """The current version's number, without loading its text (the board asks on every page)."""
    return db.exec(_CURRENT_NUMBER).one()


def by_number(db: Session, version: int) -> PolicyVersion | None:
    return db.exec(select(PolicyVersion).where(PolicyVersion.version == version)).first()


def blank_details(source: str, practice: Practice) -> str:
    """The practice details `source` uses that are blank, in words ("" when none is)."""
    missing = missing_details(source, practice_details(practice))
    return ", ".join(sorted(LABELS.get(name, name) for name in missing))


def publish_default(
    db: Session, *, actor: Actor, meta: RequestMeta, now: datetime
) -> PolicyVersion:
    """Publish the policy this product ships, with the practice's details."""
    practice = db.get(Practice, 1)
    if practice is None:
        raise PolicyTemplateError("Set the practice's details first: portal practice set")
    return publish(db, default_policy_source(), practice, actor=actor, meta=meta, now=now)


def publish(
    db: Session,
    source: str,
    practice: Practice,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> PolicyVersion:
    """Render with the practice's details and store a new immutable version.

    Raises PolicyTemplateError when the text is unusable, a detail it uses is blank, or it is
    identical to the current version.
    """
    details = practice_details(practice)
    names = blank_details(source, practice)
    if names:
        raise PolicyTemplateError(
            f"The policy uses practice details that are blank: {names}. "
            "Set them with `portal practice set` first."
        )
    rendered = render_policy(source, details)
    latest = current(db)
    if latest is not None and latest.content_hash == rendered.content_hash:
        raise PolicyTemplateError(
            f"This text is identical to version {latest.version}; nothing was published."
        )
    number = (db.exec(select(func.max(PolicyVersion.version))).one() or 0) + 1
    version = PolicyVersion(
        version=number,
        title=rendered.title,
        source_markdown=source,
        practice_snapshot=asdict(details),
        html=rendered.html,
        toc=[[section.anchor, section.title] for section in rendered.sections],
        text=rendered.text,
        content_hash=rendered.content_hash,
        published_at=now,
        published_by=actor.label,
    )
    db.add(version)
    # Every client's policy step (and acknowledgement status) changes with a new version.
    changes.append_everyone(db, "policy_version", now)
    audit.record(
        db,
        actor,
        "policy.published",
        "policy_version",
        version.id,
        meta,
        version=number,
        content_hash=rendered.content_hash,
    )
    return version
