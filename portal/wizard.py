"""The onboarding wizard engine: step order, completion, resume, and the journey's end.

It runs inside one transaction per request and knows nothing about what a step asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import AuditEvent
from portal.models import Enrollment, EnrollmentStatus, FormSubmission
from portal.steps import BatchCompletion, StepContext, StepOutcome, StepSpec, SummaryItem

REOPENED = "onboarding.reopened"
COMPLETION_EVENTS = ("onboarding.completed", REOPENED, "onboarding.reacknowledged")


@dataclass(frozen=True)
class ProgressItem:
    spec: StepSpec
    complete: bool
    reachable: bool  # done already, or the first one still to do


class Wizard:
    def __init__(self, steps: list[StepSpec]) -> None:
        if not steps:
            raise RuntimeError("no onboarding steps are registered")
        self.steps = steps
        self._by_key = {step.key: step for step in steps}
        # Decided once: the protocol check inspects the handler's attributes.
        self._batched = [isinstance(step.handler, BatchCompletion) for step in steps]

    def get(self, key: str) -> StepSpec | None:
        return self._by_key.get(key)

    def progress(self, ctx: StepContext) -> list[ProgressItem]:
        items: list[ProgressItem] = []
        blocked = False
        for spec in self.steps:
            complete = spec.handler.is_complete(ctx)
            items.append(ProgressItem(spec, complete, reachable=not blocked))
            blocked = blocked or not complete
        return items

    def completion(
        self,
        db: Session,
        enrollments: Sequence[Enrollment],
        context: Callable[[Enrollment], StepContext | None],
    ) -> dict[str, list[bool]]:
        """Enrollment id -> whether each step (in order) is complete, for many journeys.

        A step whose handler offers `complete_among` answers for all of them in one go; any
        other step is asked one journey at a time, in the context `context` builds (None: the
        journey has no context, the practice not being set up, so the step is not complete)."""
        done: dict[str, list[bool]] = {e.id: [] for e in enrollments}
        contexts: dict[str, StepContext | None] = {}
        for spec, batched in zip(self.steps, self._batched, strict=True):
            if batched and enrollments:
                complete = cast(BatchCompletion, spec.handler).complete_among(db, list(done))
                for enrollment_id, flags in done.items():
                    flags.append(enrollment_id in complete)
                continue
            for enrollment in enrollments:
                if enrollment.id not in contexts:
                    contexts[enrollment.id] = context(enrollment)
                ctx = contexts[enrollment.id]
                done[enrollment.id].append(ctx is not None and spec.handler.is_complete(ctx))
        return done

    def first_incomplete(self, ctx: StepContext) -> StepSpec | None:
        for item in self.progress(ctx):
            if not item.complete:
                return item.spec
        return None

    def can_visit(self, ctx: StepContext, key: str) -> bool:
        return any(item.spec.key == key and item.reachable for item in self.progress(ctx))

    def summary(self, ctx: StepContext, as_of: datetime | None = None) -> list[SummaryItem]:
        view = dataclasses.replace(ctx, as_of=as_of) if as_of is not None else ctx
        return [line for spec in self.steps for line in spec.handler.summary(view)]

    def submit(
        self, ctx: StepContext, spec: StepSpec, form: Mapping[str, str], form_id: str
    ) -> StepOutcome | None:
        """Run a step's submission once. Returns None when this form was already submitted."""
        # One submission at a time per client journey (two tabs, two signers at once): lock the
        # enrollment row (PostgreSQL; SQLite's writers are serialised by BEGIN IMMEDIATE).
        # populate_existing: the row was read before the lock; without a refresh a request that
        # waited here would still see the journey as unfinished and complete it a second time
        # (a second "completed" event, a second receipt email).
        ctx.db.exec(
            select(Enrollment)
            .where(Enrollment.id == ctx.enrollment.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if form_id and self._seen(ctx, form_id):
            return None
        action = form.get("action", "save")[:40]
        outcome = self.dry_run(ctx, spec, form, action) if action == "validate" else None
        if outcome is not None:
            return outcome
        savepoint = ctx.db.begin_nested()
        outcome = spec.handler.submit(ctx, form, action)
        if not outcome.ok:
            # A submission with errors stores nothing, whatever the handler began.
            savepoint.rollback()
            return outcome
        try:
            savepoint.commit()
        except IntegrityError:
            # A unique constraint caught a concurrent duplicate (two tabs, a double click).
            raise ReplayedForm from None
        if outcome.ok and outcome.stored and form_id:
            ctx.db.add(
                FormSubmission(form_id=form_id[:64], enrollment_id=ctx.enrollment.id, step=spec.key)
            )
            try:
                ctx.db.flush()
            except IntegrityError:
                # A concurrent copy of this form won the race; the caller rolls everything back.
                raise ReplayedForm from None
        self.complete_if_done(ctx)
        return outcome

    def dry_run(
        self, ctx: StepContext, spec: StepSpec, form: Mapping[str, str], action: str = "validate"
    ) -> StepOutcome:
        """Validate without storing: for inline validation as the client types."""
        savepoint = ctx.db.begin_nested()
        try:
            return spec.handler.submit(ctx, form, action)
        finally:
            savepoint.rollback()

    def _seen(self, ctx: StepContext, form_id: str) -> bool:
        query = select(FormSubmission.id).where(FormSubmission.form_id == form_id[:64])
        return ctx.db.exec(query).first() is not None

    def complete_if_done(self, ctx: StepContext) -> bool:
        enrollment = ctx.enrollment
        if enrollment.status == EnrollmentStatus.COMPLETE:
            return self._complete_again(ctx)
        if self.first_incomplete(ctx) is not None:
            return False
        enrollment.status = EnrollmentStatus.COMPLETE
        enrollment.completed_at = ctx.now
        ctx.db.add(enrollment)
        audit.record(
            ctx.db, ctx.actor, "onboarding.completed", "enrollment", enrollment.id, ctx.meta
        )
        for spec in self.steps:
            if spec.on_journey_complete is not None:
                spec.on_journey_complete(ctx)
        return True

    def _complete_again(self, ctx: StepContext) -> bool:
        """A complete journey reopens when a step needs doing again (a new policy version to
        acknowledge). Finishing it again is recorded and runs the completion hooks again (a new
        receipt). The audit trail remembers the reopening across requests, so no extra state
        is kept: the first submission while a step is outstanding records it."""
        incomplete = self.first_incomplete(ctx)
        reopened = self._last_completion_event(ctx) == REOPENED
        enrollment = ctx.enrollment
        if incomplete is not None:
            if not reopened:
                audit.record(
                    ctx.db,
                    ctx.actor,
                    REOPENED,
                    "enrollment",
                    enrollment.id,
                    ctx.meta,
                    step=incomplete.key,
                )
            return False
        if reopened:
            audit.record(
                ctx.db,
                ctx.actor,
                "onboarding.reacknowledged",
                "enrollment",
                enrollment.id,
                ctx.meta,
            )
            for spec in self.steps:
                if spec.on_journey_complete is not None:
                    spec.on_journey_complete(ctx)
        return True

    def _last_completion_event(self, ctx: StepContext) -> str | None:
        query = (
            select(AuditEvent.action)
            .where(col(AuditEvent.enrollment_id) == ctx.enrollment.id)
            .where(col(AuditEvent.action).in_(COMPLETION_EVENTS))
            .order_by(col(AuditEvent.id).desc())
            .limit(1)
        )
        return ctx.db.exec(query).first()


class ReplayedForm(Exception):
    """The same form was submitted twice at the same moment."""
