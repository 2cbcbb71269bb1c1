"""The "testimonial" section of a client's API record: the decision in force, and on request
every decision and withdrawal, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from portal.api.records import iso
from portal.api.sections import ApiSection, ClientRef
from portal.settings import Settings
from portal_testimonial import fhir_testimonial
from portal_testimonial.choices import CHOICES, PLACEMENTS
from portal_testimonial.models import TestimonialDecision
from portal_testimonial.service import DECISION, WITHDRAWAL, chains, in_force

DATE_TIME = {"type": "string", "format": "date-time"}
_COMMON: dict[str, Any] = {
    "id": {"type": "string"},
    "choice": {
        "type": "string",
        "enum": list(CHOICES),
        "description": "no, or yes as: anonymous, initials, first_name.",
    },
    "placements": {
        "type": "array",
        "items": {"type": "string", "enum": list(PLACEMENTS)},
        "uniqueItems": True,
        "description": "Where the client's words may appear; empty for no.",
    },
    "source": {"type": "string", "enum": ["client", "staff"]},
}
ROW: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "kind", "choice", "placements", "recorded_at", "source"],
    "properties": {
        **_COMMON,
        "kind": {"type": "string", "enum": [DECISION, WITHDRAWAL]},
        "recorded_at": DATE_TIME,
    },
}
SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "The testimonial decision in force (null until the client decided).",
    "additionalProperties": False,
    "required": ["id", "choice", "placements", "decided_at", "withdrawn", "withdrawn_at", "source"],
    "properties": {
        **_COMMON,
        "decided_at": {
            **DATE_TIME,
            "description": "When the decision in force was recorded (a withdrawal is one).",
        },
        "withdrawn": {
            "type": "boolean",
            "description": "True when the client withdrew an earlier yes (the choice is then no).",
        },
        "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
        "history": {
            "type": "array",
            "items": ROW,
            "description": "Every decision and withdrawal, newest first (only with history).",
        },
    },
}


def row_json(row: TestimonialDecision) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "choice": row.choice,
        "placements": list(row.placements),
        "recorded_at": iso(row.created_at),
        "source": row.source,
    }


def current_json(row: TestimonialDecision) -> dict[str, Any]:
    withdrawn = row.kind == WITHDRAWAL
    return {
        "id": row.id,
        "choice": row.choice,
        "placements": list(row.placements),
        "decided_at": iso(row.created_at),
        "withdrawn": withdrawn,
        "withdrawn_at": iso(row.created_at) if withdrawn else None,
        "source": row.source,
    }


def load(db: Session, refs: Sequence[ClientRef], history: bool) -> dict[str, Any]:
    clients = {ref.enrollment_id: ref.client_id for ref in refs if ref.enrollment_id}
    if not clients:
        return {}
    values: dict[str, Any] = {}
    for enrollment_id, ordered in chains(db, clients).items():
        value = current_json(in_force(ordered))
        if history:
            value["history"] = [row_json(row) for row in reversed(ordered)]
        values[clients[enrollment_id]] = value
    return values


def section(settings: Settings) -> ApiSection:
    return ApiSection(
        key="testimonial",
        title="Whether the practice may share the client's testimonial, and where",
        scope="clients:read",
        schema=SCHEMA,
        load=load,
        fhir=fhir_testimonial.MAPPING,
    )
