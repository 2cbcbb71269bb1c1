"""A tiny step plugin: the client confirms they know the portal is not for emergencies.

It shows the shape of every step: a table (append-only: one row per confirmation), a handler
the wizard calls, a template, and a migration branch of its own. The README quotes this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel, select

from portal.db import UTCDateTime, new_id, utcnow
from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.steps import StepContext, StepOutcome, StepSpec, SummaryItem

HERE = Path(__file__).parent


class CrisisNoticeConfirmation(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    confirmed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class CrisisNoticeStep:
    def _confirmation(self, ctx: StepContext) -> CrisisNoticeConfirmation | None:
        query = select(CrisisNoticeConfirmation).where(
            CrisisNoticeConfirmation.enrollment_id == ctx.enrollment.id
        )
        return ctx.db.exec(query).first()

    def is_complete(self, ctx: StepContext) -> bool:
        return self._confirmation(ctx) is not None

    def context(self, ctx: StepContext) -> dict[str, Any]:
        return {"confirmed": self.is_complete(ctx)}

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        if form.get("understood") != "yes":
            # Nothing is written when there is an error; the host re-renders the page with it.
            return StepOutcome(errors={"understood": "Please tick the box to go on."})
        if not self.is_complete(ctx):
            ctx.db.add(CrisisNoticeConfirmation(enrollment_id=ctx.enrollment.id))
        return StepOutcome(done=True, stored=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        confirmed = self._confirmation(ctx)
        if confirmed is None or (ctx.as_of and confirmed.confirmed_at > ctx.as_of):
            return []
        return [SummaryItem("Emergencies", ("You know this portal is not for emergencies.",))]

    def demo_fill(self, ctx: StepContext) -> None:
        ctx.db.add(CrisisNoticeConfirmation(enrollment_id=ctx.enrollment.id))


@hookimpl
def portal_models() -> list[type[SQLModel]]:
    return [CrisisNoticeConfirmation]


@hookimpl
def portal_steps(settings: Settings) -> list[StepSpec]:
    step = CrisisNoticeStep()
    return [StepSpec("crisis", "Emergencies", 50, "crisis_notice/step.html", step)]


@hookimpl
def portal_template_dirs() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def portal_migration_dirs() -> list[Path]:
    return [HERE / "migrations"]
