"""Testimonial consent on the staff side: a board column and a client-page section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from portal.models import Client, Enrollment
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


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    """The decision in force of each journey, by the same rule as the API's and the client's
    page (the supersedes chain; timestamps can tie)."""
    return {
        enrollment_id: short(service.in_force(ordered))
        for enrollment_id, ordered in service.chains(db, enrollment_ids).items()
    }


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    rows = service.history(db, enrollment.id)
    return {
        "testimonial_history": [
            (row, decision_words(row.choice, row.placements)) for row in reversed(rows)
        ],
        "testimonial_consents": bool(rows) and is_consent(service.in_force(rows).choice),
    }
