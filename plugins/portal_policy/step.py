"""Step: read the practice's current social media and communications policy."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlmodel import Session, col, select

from portal import audit
from portal.rows import IDS, core_rows
from portal.steps import StepContext, StepOutcome, SummaryItem
from portal_policy import changes, service
from portal_policy.changes import PolicyChanges
from portal_policy.models import PolicyReading, PolicyVersion


def _reading(ctx: StepContext, version: PolicyVersion) -> PolicyReading | None:
    return ctx.db.exec(
        select(PolicyReading)
        .where(PolicyReading.enrollment_id == ctx.enrollment.id)
        .where(PolicyReading.policy_version_id == version.id)
    ).first()


def _earlier_read(ctx: StepContext, version: PolicyVersion) -> PolicyVersion | None:
    """The newest version before `version` that this client read."""
    return ctx.db.exec(
        select(PolicyVersion)
        .join(PolicyReading, col(PolicyReading.policy_version_id) == col(PolicyVersion.id))
        .where(PolicyReading.enrollment_id == ctx.enrollment.id)
        .where(col(PolicyVersion.version) < version.version)
        .order_by(col(PolicyVersion.version).desc())
    ).first()


def changes_since_read(ctx: StepContext, version: PolicyVersion) -> PolicyChanges | None:
    """What changed since the version the client read before (None for a first reading)."""
    earlier = _earlier_read(ctx, version)
    return None if earlier is None else changes.between(earlier, version)


# Who read the current (highest) version, among some journeys: `complete_among`'s one query,
# built once (the ids are an expanding parameter).
_READ_CURRENT = (
    select(PolicyReading.enrollment_id)
    .where(col(PolicyReading.enrollment_id).in_(IDS))
    .where(PolicyReading.policy_version_id == service.CURRENT_ID)
)


class PolicyStep:
    def is_complete(self, ctx: StepContext) -> bool:
        version = service.current(ctx.db)
        # Read means read *this* version: a new version published mid-journey is read again.
        return version is not None and _reading(ctx, version) is not None

    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        """`is_complete` for many journeys: who read the current version."""
        return set(core_rows(db, _READ_CURRENT, enrollment_ids).scalars())

    def context(self, ctx: StepContext) -> dict[str, Any]:
        version = service.current(ctx.db)
        # A client back to re-acknowledge sees what changed before the whole text.
        since = changes_since_read(ctx, version) if version is not None else None
        return {"policy": version, "policy_changes": since}

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        version = service.current(ctx.db)
        if version is None:
            return StepOutcome(errors={"policy": "The practice has not published its policy yet."})
        if str(version.version) != form.get("policy_version", ""):
            return StepOutcome(
                errors={
                    "policy": "The practice published a new version while you were reading. "
                    "Please read this version."
                }
            )
        if action == "validate":
            return StepOutcome()
        if _reading(ctx, version) is None:
            ctx.db.add(
                PolicyReading(
                    enrollment_id=ctx.enrollment.id, policy_version_id=version.id, read_at=ctx.now
                )
            )
            audit.record(
                ctx.db,
                ctx.actor,
                "policy.read",
                "enrollment",
                ctx.enrollment.id,
                ctx.meta,
                version=version.version,
            )
        return StepOutcome(done=True, stored=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        version = service.current(ctx.db)
        if version is None:
            return []
        return [
            SummaryItem(
                "Policy you read",
                (
                    f"{version.title}, version {version.version}, published "
                    f"{version.published_at:%Y-%m-%d}",
                ),
            )
        ]

    def demo_fill(self, ctx: StepContext) -> None:
        version = service.current(ctx.db)
        assert version is not None, "publish a policy before filling demo data"
        self.submit(ctx, {"policy_version": str(version.version)}, "save")
