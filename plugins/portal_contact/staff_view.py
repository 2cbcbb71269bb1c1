"""The contact rules on the staff side: a board column and the client page's first section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from portal.models import Client, Enrollment
from portal.staff.board import Cell
from portal_contact import service
from portal_contact.choices import ContactChoices
from portal_contact.models import ContactPreference


def rules_in_words(choices: ContactChoices) -> str:
    """One line a receptionist reads at a glance, e.g. "Cell (206) 555-0148: voicemail OK,
    may name the practice. No email." """
    return ". ".join(line.rstrip(".") for line in choices.plain_words()) + "."


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    rows = db.exec(
        select(ContactPreference)
        .where(col(ContactPreference.enrollment_id).in_(enrollment_ids))
        .order_by(col(ContactPreference.revision))
    ).all()
    latest = {row.enrollment_id: row for row in rows}  # ascending: the last one wins
    return {
        enrollment_id: Cell(rules_in_words(ContactChoices.from_json(row.choices)), "ok")
        for enrollment_id, row in latest.items()
    }


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    history = service.history(db, enrollment.id)
    return {
        "contact_now": ContactChoices.from_json(history[0].choices) if history else None,
        "contact_history": [
            (row, rules_in_words(ContactChoices.from_json(row.choices))) for row in history
        ],
    }
