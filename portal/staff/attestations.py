"""The staff-facing social media policy: published versions and each staff member's attestation.

Both tables are append-only. A new text is a new version; attesting again (to a newer version)
is a new row. The admin's overview is computed from the rows, never stored.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from sqlalchemy import JSON, Column, Text, UniqueConstraint, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.db import UTCDateTime, new_id
from portal.models import Practice
from portal.staff.models import StaffAccount

# The renderer the client policy uses: same Markdown rules (no raw HTML), same placeholders.
# The policy plugin ships with the host and has no type marker (py.typed).
from portal_policy.rendering import (  # type: ignore[import-untyped]
    PolicyTemplateError,
    RenderedPolicy,
    render_policy,
)
from portal_policy.service import blank_details, practice_details  # type: ignore[import-untyped]

DEFAULT_FILE = "staff_policy.md"
MAX_SOURCE = 100_000


class StaffPolicyVersion(SQLModel, table=True):
    """A published version of the staff policy: never updated."""

    __tablename__ = "staff_policy_version"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    version: int = Field(unique=True)
    title: str = Field(max_length=200)
    source_markdown: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    # [[anchor, title], ...] for the table of contents.
    toc: list[list[str]] = Field(sa_column=Column(JSON, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    published_by: str = Field(max_length=100)


class StaffAttestation(SQLModel, table=True):
    """A staff member attested to one version. One per account and version; never updated."""

    __tablename__ = "staff_attestation"
    __table_args__ = (UniqueConstraint("account_id", "policy_version_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="staff_account.id", index=True, max_length=32)
    policy_version_id: str = Field(foreign_key="staff_policy_version.id", max_length=32)
    version: int
    # What was attested to, as evidence: the text's hash and the words of the statement.
    content_hash: str = Field(max_length=64)
    statement: str = Field(max_length=300)
    typed_name: str = Field(max_length=120)
    attested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class StaffPolicyError(ValueError):
    """Why a publication or an attestation was refused; `field` names the form field."""

    def __init__(self, message: str, field: str = "__all__") -> None:
        super().__init__(message)
        self.field = field


class AlreadyAttested(StaffPolicyError):
    """This account attested to this version before (a form sent twice): nothing to do."""


def default_source() -> str:
    """The staff policy this product ships; each practice edits it."""
    return resources.files("portal.staff").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")


def current(db: Session) -> StaffPolicyVersion | None:
    return db.exec(
        select(StaffPolicyVersion).order_by(col(StaffPolicyVersion.version).desc())
    ).first()


def render(source: str, practice: Practice) -> RenderedPolicy:
    """Render for preview or publication; raises StaffPolicyError naming the problem."""
    if len(source) > MAX_SOURCE:
        raise StaffPolicyError(
            f"The policy is too long: {MAX_SOURCE:,} characters at most.", "source"
        )
    details = practice_details(practice)
    try:
        return render_policy(source, details)
    except PolicyTemplateError as exc:
        raise StaffPolicyError(str(exc), "source") from None


def publish(
    db: Session,
    source: str,
    practice: Practice,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> StaffPolicyVersion:
    """Store a new immutable version; refuses blank practice details and an unchanged text."""
    rendered = render(source, practice)
    names = blank_details(source, practice)
    if names:
        raise StaffPolicyError(
            f"The policy uses practice details that are blank: {names}. Fill them in first.",
            "source",
        )
    latest = current(db)
    if latest is not None and latest.content_hash == rendered.content_hash:
        raise StaffPolicyError(
            f"This text is identical to version {latest.version}; nothing was published.",
            "source",
        )
    number = (db.exec(select(func.max(StaffPolicyVersion.version))).one() or 0) + 1
    version = StaffPolicyVersion(
        version=number,
        title=rendered.title[:200],
        source_markdown=unicodedata.normalize("NFC", source.replace("\r\n", "\n")),
        html=rendered.html,
        toc=[[section.anchor, section.title] for section in rendered.sections],
        text=rendered.text,
        content_hash=rendered.content_hash,
        published_at=now,
        published_by=actor.label[:100],
    )
    db.add(version)
    audit.record(
        db,
        actor,
        "staff_policy.published",
        "staff_policy_version",
        version.id,
        meta,
        version=number,
        content_hash=rendered.content_hash,
    )
    return version


def publish_default_staff_policy(
    db: Session, actor: Actor, now: datetime, meta: RequestMeta | None = None
) -> StaffPolicyVersion:
    """Publish the shipped staff policy with the practice's details (for `portal demo`)."""
    practice = db.get(Practice, 1)
    if practice is None:
        raise StaffPolicyError("Set the practice's details first.")
    return publish(
        db, default_source(), practice, actor=actor, meta=meta or RequestMeta.none(), now=now
    )


def statement(version: StaffPolicyVersion) -> str:
    """The words a staff member agrees to; stored with the attestation."""
    return f"I have read the {version.title} (version {version.version}) and will follow it."[:300]


def latest_attestation(db: Session, account_id: str) -> StaffAttestation | None:
    return db.exec(
        select(StaffAttestation)
        .where(col(StaffAttestation.account_id) == account_id)
        .order_by(col(StaffAttestation.version).desc())
    ).first()


def _same_name(typed: str, name: str) -> bool:
    def norm(text: str) -> str:
        return unicodedata.normalize("NFC", " ".join(text.split())).casefold()

    return norm(typed) == norm(name)


def attest(
    db: Session,
    account: StaffAccount,
    *,
    version_number: str,
    confirmed: bool,
    typed_name: str,
    meta: RequestMeta,
    now: datetime,
) -> StaffAttestation:
    """Record that `account` attests to the current version. `version_number` is the version
    the form showed: a version published meanwhile must be read first."""
    version = current(db)
    if version is None:
        raise StaffPolicyError("No staff policy has been published yet.")
    if version_number != str(version.version):
        raise StaffPolicyError(
            f"A newer version (version {version.version}) was published while the page was "
            "open. Please read it below, then attest."
        )
    errors: dict[str, str] = {}
    if not confirmed:
        errors["confirm"] = "Tick the box to confirm you have read the policy and will follow it."
    typed = " ".join(typed_name.split())
    if not typed:
        errors["typed_name"] = "Type your full name to sign."
    elif not _same_name(typed, account.name):
        errors["typed_name"] = f"Type your name as your account has it: {account.name}"
    if errors:
        field, message = next(iter(errors.items()))
        raise StaffPolicyError(message, field)
    row = StaffAttestation(
        account_id=account.id,
        policy_version_id=version.id,
        version=version.version,
        content_hash=version.content_hash,
        statement=statement(version),
        typed_name=typed[:120],
        attested_at=now,
        ip=meta.ip[:64],
        user_agent=meta.user_agent[:300],
    )
    try:
        # A double click sends the form twice: the second one finds the first one's row.
        with db.begin_nested():
            db.add(row)
    except IntegrityError:
        raise AlreadyAttested(f"You already attested to version {version.version}.") from None
    audit.record(
        db,
        Actor("staff", account.id),
        "staff_policy.attested",
        "staff_account",
        account.id,
        meta,
        version=version.version,
        content_hash=version.content_hash,
    )
    return row


@dataclass(frozen=True)
class RosterRow:
    account: StaffAccount
    attested: StaffAttestation | None  # to the current version
    latest: StaffAttestation | None  # to any version


def roster(db: Session, version: StaffPolicyVersion | None) -> list[RosterRow]:
    """Every active account with its attestation to `version`; those who haven't come first."""
    accounts = db.exec(
        select(StaffAccount)
        .where(col(StaffAccount.disabled_at).is_(None))
        .order_by(func.lower(col(StaffAccount.name)), col(StaffAccount.id))
    ).all()
    latest: dict[str, StaffAttestation] = {}
    for row in db.exec(select(StaffAttestation).order_by(col(StaffAttestation.version))):
        latest[row.account_id] = row  # ascending: the last one seen is the newest
    rows = []
    for account in accounts:
        newest = latest.get(account.id)
        done = newest if version and newest and newest.policy_version_id == version.id else None
        rows.append(RosterRow(account, done, newest))
    return sorted(rows, key=lambda r: r.attested is not None)
