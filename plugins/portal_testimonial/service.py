"""Recording and reading testimonial decisions. Nothing here updates or deletes a row."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, exists, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal.rows import IDS, as_model, core_rows
from portal.settings import Settings
from portal_testimonial.choices import CHOICES, NO, PLACEMENTS, is_consent, ordered_placements
from portal_testimonial.models import TestimonialDecision

DECISION = "decision"
WITHDRAWAL = "withdrawal"
SOURCES = frozenset({"client", "staff"})
MAX_CODE_CHARS = 64
# One alias for "a later row", made once: building a fresh alias per call cost about 2 ms of
# SQLAlchemy column bookkeeping, paid per client on every API page (see docs/benchmarks.md).
_NEWER = aliased(TestimonialDecision)


def current(
    db: Session, enrollment_id: str, as_of: datetime | None = None
) -> TestimonialDecision | None:
    """The decision in force: the row no other row supersedes (or the latest at `as_of`)."""
    if as_of is not None:
        # The chain is linear, so the newest row written by then was the one in force.
        return db.exec(
            select(TestimonialDecision)
            .where(TestimonialDecision.enrollment_id == enrollment_id)
            .where(col(TestimonialDecision.created_at) <= as_of)
            .order_by(col(TestimonialDecision.created_at).desc())
        ).first()
    query = (
        select(TestimonialDecision)
        .where(TestimonialDecision.enrollment_id == enrollment_id)
        .where(~exists().where(col(_NEWER.supersedes_id) == TestimonialDecision.id))
        .order_by(col(TestimonialDecision.created_at).desc())
    )
    return db.exec(query).first()


def history(db: Session, enrollment_id: str) -> list[TestimonialDecision]:
    """Every row of the enrollment, oldest first, following the supersedes chain."""
    rows = list(
        db.exec(
            select(TestimonialDecision)
            .where(TestimonialDecision.enrollment_id == enrollment_id)
            .order_by(col(TestimonialDecision.created_at))
        )
    )
    return chain_order(rows)


def chain_order(rows: list[TestimonialDecision]) -> list[TestimonialDecision]:
    """One enrollment's rows (oldest first by time) in the order of their supersedes chain."""
    # Timestamps can tie (same request, coarse clocks); the chain is the true order.
    by_parent = {row.supersedes_id: row for row in rows}
    chain: list[TestimonialDecision] = []
    row = by_parent.get(None)
    while row is not None and len(chain) < len(rows):
        chain.append(row)
        row = by_parent.get(row.id)
    linked = {row.id for row in chain}
    return chain + [row for row in rows if row.id not in linked]


# Built once (the ids expand): the columns the API, FHIR and the board read, as Core rows.
_CHAINS = (
    select(
        col(TestimonialDecision.id),
        col(TestimonialDecision.enrollment_id),
        col(TestimonialDecision.created_at),
        col(TestimonialDecision.choice),
        col(TestimonialDecision.placements),
        col(TestimonialDecision.kind),
        col(TestimonialDecision.source),
        col(TestimonialDecision.supersedes_id),
    )
    .where(col(TestimonialDecision.enrollment_id).in_(IDS))
    .order_by(col(TestimonialDecision.created_at), col(TestimonialDecision.id))
)


def chains(db: Session, enrollment_ids: Collection[str]) -> dict[str, list[TestimonialDecision]]:
    """Enrollment id -> its decisions in chain order (`chain_order`), for many journeys in one
    query; read-only rows, not objects of the session. A journey with none is left out."""
    found: dict[str, list[TestimonialDecision]] = {}
    for row in core_rows(db, _CHAINS, enrollment_ids):
        found.setdefault(row.enrollment_id, []).append(as_model(TestimonialDecision, row))
    return {enrollment_id: chain_order(rows) for enrollment_id, rows in found.items()}


def in_force(ordered: list[TestimonialDecision]) -> TestimonialDecision:
    """Among one enrollment's rows in chain order, the one in force (as `current`): the
    newest that nothing supersedes."""
    superseded = {row.supersedes_id for row in ordered if row.supersedes_id}
    return [row for row in ordered if row.id not in superseded][-1]


def by_code(db: Session, code: str) -> TestimonialDecision | None:
    """The decision row a withdrawal link points at, or None for an unknown code."""
    if not code or len(code) > MAX_CODE_CHARS:
        return None
    return db.exec(
        select(TestimonialDecision).where(TestimonialDecision.withdraw_code == code)
    ).first()


def decide(
    db: Session,
    enrollment: Enrollment,
    choice: str,
    placements: Iterable[str],
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
    source: str = "client",
) -> TestimonialDecision:
    """Record a new decision superseding the current one.

    Raises ValueError for input the caller should have validated (unknown keys, a "yes"
    without placements, placements with "no"): forms check first and show the problem.
    """
    keys = list(placements)
    if choice not in CHOICES:
        raise ValueError(f"unknown testimonial choice {choice!r}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    unknown = set(keys) - PLACEMENTS.keys()
    if unknown:
        raise ValueError(f"unknown placements {sorted(unknown)!r}")
    if is_consent(choice) and not keys:
        raise ValueError("a yes needs at least one placement")
    if choice == NO and keys:
        raise ValueError("a no has no placements")
    previous = _lock_and_get_current(db, enrollment.id)
    row = TestimonialDecision(
        enrollment_id=enrollment.id,
        client_id=enrollment.client_id,
        created_at=now,
        choice=choice,
        placements=ordered_placements(keys),
        kind=DECISION,
        source=source,
        withdraw_code=secrets.token_urlsafe(24),
        supersedes_id=previous.id if previous else None,
    )
    db.add(row)
    audit.record(
        db,
        actor,
        "testimonial.decided",
        "enrollment",
        enrollment.id,
        meta,
        decision_id=row.id,
        choice=choice,
        placements=row.placements,
        source=source,
    )
    return row


@dataclass(frozen=True)
class Withdrawal:
    decision: TestimonialDecision  # the row in force afterwards
    recorded: bool  # False when there was no "yes" to withdraw (e.g. a second click)


def withdraw(
    db: Session, code: str, meta: RequestMeta, now: datetime
) -> TestimonialDecision | None:
    """Withdraw consent through a receipt link; None when the code is unknown.

    Returns the new withdrawal row, or the current row unchanged when there is no "yes" to
    withdraw: withdrawing twice records nothing new. See `withdraw_outcome` to tell which.
    """
    outcome = withdraw_outcome(db, code, meta, now)
    return outcome.decision if outcome else None


def withdraw_outcome(db: Session, code: str, meta: RequestMeta, now: datetime) -> Withdrawal | None:
    """Like `withdraw`, also saying whether a withdrawal was recorded just now.

    Any code the enrollment was ever given works, so an older receipt still withdraws the
    consent now in force.
    """
    origin = by_code(db, code)
    if origin is None:
        return None
    # Whoever holds the link acts for the client: the code is the capability.
    return record_withdrawal(
        db,
        origin.enrollment_id,
        source="client",
        actor=Actor("client", origin.enrollment_id),
        via="receipt_link",
        meta=meta,
        now=now,
    )


def record_withdrawal(
    db: Session,
    enrollment_id: str,
    *,
    source: str,
    actor: Actor,
    via: str,
    meta: RequestMeta,
    now: datetime,
) -> Withdrawal | None:
    """Append a withdrawal superseding the consent in force (None: the client never decided).

    `recorded` is False when there is no "yes" in force to withdraw (already "no", or
    withdrawn by a concurrent request): withdrawing twice records nothing new.
    """
    latest = _lock_and_get_current(db, enrollment_id)
    if latest is None:
        return None
    if not is_consent(latest.choice):
        return Withdrawal(latest, recorded=False)
    row = TestimonialDecision(
        enrollment_id=latest.enrollment_id,
        client_id=latest.client_id,
        created_at=now,
        choice=NO,
        placements=[],
        kind=WITHDRAWAL,
        source=source,
        supersedes_id=latest.id,
    )
    db.add(row)
    audit.record(
        db,
        actor,
        "testimonial.withdrawn",
        "enrollment",
        latest.enrollment_id,
        meta,
        decision_id=row.id,
        withdrawn_id=latest.id,
        via=via,
    )
    return Withdrawal(row, recorded=True)


def withdraw_url(settings: Settings, decision: TestimonialDecision) -> str:
    if decision.withdraw_code is None:
        raise ValueError("only decision rows carry a withdrawal code")
    return settings.public_url(f"/testimonial/withdraw/{decision.withdraw_code}")


def _lock_and_get_current(db: Session, enrollment_id: str) -> TestimonialDecision | None:
    # Two appends racing on one enrollment would both supersede the same row; locking the
    # enrollment serialises them on PostgreSQL (SQLite already writes one at a time).
    db.exec(select(Enrollment.id).where(Enrollment.id == enrollment_id).with_for_update()).first()
    return current(db, enrollment_id)
