"""Step: read the practice's current social media and communications policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import select

from portal import audit
from portal.steps import StepContext, StepOutcome, SummaryItem
from portal_policy import service
from portal_policy.models import PolicyReading, PolicyVersion


def _reading(ctx: StepContext, version: PolicyVersion) -> PolicyReading | None:
    return ctx.db.exec(
        select(PolicyReading)
        .where(PolicyReading.enrollment_id == ctx.enrollment.id)
        .where(PolicyReading.policy_version_id == version.id)
    ).first()


class PolicyStep:
    def is_complete(self, ctx: StepContext) -> bool:
        version = service.current(ctx.db)
        # Read means read *this* version: a new version published mid-journey is read again.
        return version is not None and _reading(ctx, version) is not None

    def context(self, ctx: StepContext) -> dict[str, Any]:
        return {"policy": service.current(ctx.db)}

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
