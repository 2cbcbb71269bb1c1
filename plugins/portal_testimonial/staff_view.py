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


# Each enrollment's decisions (plain columns, no objects), for the one in force: the same rule
# as the API's and the client's page (the supersedes chain; timestamps can tie).
_DECISIONS = (
    select(
        col(TestimonialDecision.id),
        col(TestimonialDecision.enrollment_id),
        col(TestimonialDecision.supersedes_id),
        col(TestimonialDecision.kind),
        col(TestimonialDecision.choice),
        col(TestimonialDecision.placements),
    )
    .where(col(TestimonialDecision.enrollment_id).in_(IDS))
    .order_by(col(TestimonialDecision.created_at), col(TestimonialDecision.id))
)


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    found: dict[str, list[TestimonialDecision]] = {}
    for row in core_rows(db, _DECISIONS, enrollment_ids):
        found.setdefault(row.enrollment_id, []).append(as_model(TestimonialDecision, row))
    return {
        enrollment_id: short(service.in_force(service.chain_order(rows)))
        for enrollment_id, rows in found.items()
    }


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    rows = service.history(db, enrollment.id)
    return {
        "testimonial_history": [
            (row, decision_words(row.choice, row.placements)) for row in reversed(rows)
        ],
        "testimonial_consents": bool(rows) and is_consent(service.in_force(rows).choice),
    }
