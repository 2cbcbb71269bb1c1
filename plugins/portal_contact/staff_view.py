"""The contact rules on the staff side: a board column and the client page's first section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from portal.models import Client, Enrollment
from portal.rows import IDS, core_rows
from portal.staff.board import Cell
from portal_contact import service
from portal_contact.choices import ContactChoices
from portal_contact.models import ContactPreference


def rules_in_words(choices: ContactChoices) -> str:
    """One line a receptionist reads at a glance, e.g. "Cell (206) 555-0148: voicemail OK,
    may name the practice. No email." """
    return ". ".join(line.rstrip(".") for line in choices.plain_words()) + "."


# Each enrollment's latest revision wins (ascending order; plain columns, no objects).
_LATEST = (
    select(col(ContactPreference.enrollment_id), col(ContactPreference.choices))
    .where(col(ContactPreference.enrollment_id).in_(IDS))
    .order_by(col(ContactPreference.revision))
)


def board_cells(db: Session, enrollment_ids: Sequence[str]) -> dict[str, Cell]:
    latest = {row.enrollment_id: row.choices for row in core_rows(db, _LATEST, enrollment_ids)}
    return {
        enrollment_id: Cell(rules_in_words(ContactChoices.from_json(choices)), "ok")
        for enrollment_id, choices in latest.items()
    }


def client_section(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    history = service.history(db, enrollment.id)
    return {
        "contact_now": ContactChoices.from_json(history[0].choices) if history else None,
        "contact_history": [
            (row, rules_in_words(ContactChoices.from_json(row.choices))) for row in history
        ],
    }
