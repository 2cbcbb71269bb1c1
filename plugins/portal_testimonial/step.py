"""Step: may the practice share what the client says about their experience?

Ethics codes forbid soliciting testimonials, so this asks for consent without nudging: "no"
first, every option the same kind of control, nothing chosen in advance.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from portal.rows import IDS, core_rows
from portal.steps import StepContext, StepOutcome, SummaryItem
from portal_testimonial import service
from portal_testimonial.choices import (
    CHOICES,
    NO,
    PLACEMENTS,
    decision_words,
    is_consent,
)
from portal_testimonial.models import TestimonialDecision

CHOICE_MISSING = "Please choose one of the options (choosing No is fine)."
CHOICE_UNKNOWN = "Please choose one of the options listed."
PLACEMENTS_MISSING = "You chose yes: please tick at least one place where your words may appear."
PLACEMENTS_UNKNOWN = "Please tick only the places listed."
CHECKED = "yes"  # the value every placement checkbox sends


# Journeys, among some, with a decision in force (built once; the ids expand).
_NEWER = aliased(TestimonialDecision)
_DECIDED = (
    select(TestimonialDecision.enrollment_id)
    .where(col(TestimonialDecision.enrollment_id).in_(IDS))
    .where(~exists().where(col(_NEWER.supersedes_id) == TestimonialDecision.id))
)


def placement_field(key: str) -> str:
    # One field per checkbox: the host keeps only the first value of a repeated name.
    return f"placement_{key}"


def _read(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def parse(form: Mapping[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """Return (choice, placement keys, errors); never raises on odd input."""
    errors: dict[str, str] = {}
    choice = _read(form, "choice")
    if not choice:
        errors["choice"] = CHOICE_MISSING
    elif choice not in CHOICES:
        errors["choice"] = CHOICE_UNKNOWN
        choice = ""  # never echo junk back into the page
    ticked: list[str] = []
    for key in PLACEMENTS:
        value = _read(form, placement_field(key))
        if value == CHECKED:
            ticked.append(key)
        elif value:
            errors["placements"] = PLACEMENTS_UNKNOWN
    if choice == NO:
        # Ticks left over from a "yes" first considered: "no" must never be harder to give.
        ticked = []
    elif is_consent(choice) and not ticked and "placements" not in errors:
        errors["placements"] = PLACEMENTS_MISSING
    return choice, ticked, errors


def _values(choice: str, placements: list[str]) -> dict[str, Any]:
    return {"choice": choice, "placements": placements}


class TestimonialStep:
    def is_complete(self, ctx: StepContext) -> bool:
        return service.current(ctx.db, ctx.enrollment.id) is not None

    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        """`is_complete` for many journeys: who has a decision in force (one nothing
        supersedes)."""
        return set(core_rows(db, _DECIDED, enrollment_ids).scalars())

    def context(self, ctx: StepContext) -> dict[str, Any]:
        decision = service.current(ctx.db, ctx.enrollment.id)
        # Only the client's own earlier answer is ever shown as chosen.
        chosen = _values(decision.choice, decision.placements) if decision else _values("", [])
        return {
            "choices": CHOICES,
            "placements": PLACEMENTS,
            "placement_field": placement_field,
            "checked_value": CHECKED,
            "current_values": chosen,
        }

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        choice, placements, errors = parse(form)
        if errors:
            return StepOutcome(errors=errors, values=_values(choice, placements))
        if action == "validate":
            return StepOutcome()
        latest = service.current(ctx.db, ctx.enrollment.id)
        if latest is not None and (latest.choice, latest.placements) == (choice, placements):
            return StepOutcome(done=True)  # unchanged: nothing new to record
        service.decide(
            ctx.db, ctx.enrollment, choice, placements, actor=ctx.actor, meta=ctx.meta, now=ctx.now
        )
        return StepOutcome(done=True, stored=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        decision = service.current(ctx.db, ctx.enrollment.id, ctx.as_of)
        if decision is None:
            return []
        lines = [decision_words(decision.choice, decision.placements)]
        if is_consent(decision.choice):
            url = service.withdraw_url(ctx.settings, decision)
            lines.append(f"You can withdraw this at any time: {url}")
        elif decision.kind == service.WITHDRAWAL:
            lines.append(f"You withdrew your earlier consent on {decision.created_at:%Y-%m-%d}.")
        return [SummaryItem("Testimonials", tuple(lines))]

    def demo_fill(self, ctx: StepContext) -> None:
        self.submit(ctx, {"choice": NO}, "save")
