"""Testimonial consent on the staff side: a board column and a client-page section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from portal.models import Client, Enrollment
from portal.rows import IDS, as_model, core_rows
from portal.staff.board import Cell
from portal_testimonial import service
from portal_testimonial.choices import decision_words, is_consent
from portal_testimonial.models import TestimonialDecision


def short(decision: TestimonialDecision) -> Cell:
    if decision.kind == service.WITHDRAWAL:
        return Cell("No (withdrawn)", "neutral")
    if not is_consent(decision.choice):
        return Cell("No", "neutral")
    return Cell(decision_words(decision.choice, decision.placements), "ok")


# The newest decision of each enrollment wins (ascending order; plain columns, no objects).
_LATEST = (
    select(
        col(TestimonialDecision.enrollment_id),
        col(TestimonialDecision.kind),
        col(TestimonialDecision.choice),
        col(TestimonialDecision.placements),
    )
    .where(col(TestimonialDecision.enrollment_id).in_(IDS))
    .order_by(col(TestimonialDecision.created_at), col(TestimonialDecision.id))
)


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    latest = {row.enrollment_id: row for row in core_rows(db, _LATEST, enrollment_ids)}
    return {
        enrollment_id: short(as_model(TestimonialDecision, row))
        for enrollment_id, row in latest.items()
    }


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    rows = service.history(db, enrollment.id)
    return {
        "testimonial_history": [
            (row, decision_words(row.choice, row.placements)) for row in reversed(rows)
        ],
        "testimonial_consents": bool(rows) and is_consent(rows[-1].choice),
    }
