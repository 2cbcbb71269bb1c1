"""A client's record as the API returns it: the host's fields, a status per onboarding step and
the sections the plugins contribute (contact rules, acknowledgements, testimonial consent).

Everything here works on a batch of clients, so a page of the list, one client and a bulk export
share the same code and the same per-client cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal.api.sections import ApiSection, ClientRef
from portal.audit import RequestMeta
from portal.changes import ClientChange
from portal.db import utcnow
from portal.models import Client, Enrollment, EnrollmentStatus, Practice
from portal.rows import IDS, as_model, core_rows, every_column
from portal.runtime import Runtime
from portal.staff.models import StaffAccount
from portal.steps import StepContext

# The batch queries are built once, with the ids as an expanding parameter: building a select
# and its cache key per call cost about as much as running it (a one-client read runs ~15).
_ENROLLMENTS = (
    every_column(Enrollment)
    .where(col(Enrollment.client_id).in_(IDS))
    .order_by(col(Enrollment.created_at), col(Enrollment.id))
)
_LAST_CHANGED = (
    select(col(ClientChange.client_id), func.max(ClientChange.changed_at).label("at"))
    .where(col(ClientChange.client_id).in_(IDS))
    .group_by(col(ClientChange.client_id))
)


_STAFF_NAMES = select(col(StaffAccount.id), col(StaffAccount.name)).where(
    col(StaffAccount.id).in_(IDS)
)


def latest_enrollments(db: Session, client_ids: Sequence[str]) -> dict[str, Enrollment]:
    """Each client's current journey (read as Core rows, oldest first): the newest one not
    cancelled, else the newest."""
    if not client_ids:
        return {}
    cancelled = EnrollmentStatus.CANCELLED
    chosen: dict[str, Enrollment] = {}
    for row in core_rows(db, _ENROLLMENTS, client_ids):
        journey = as_model(Enrollment, row)
        current = chosen.get(journey.client_id)
        if current is None or journey.status != cancelled or current.status == cancelled:
            chosen[journey.client_id] = journey
    return chosen


def visible_sections(sections: Iterable[ApiSection], scopes: Iterable[str]) -> list[ApiSection]:
    allowed = set(scopes)
    return [section for section in sections if section.scope in allowed]


def load_sections(
    db: Session,
    sections: Sequence[ApiSection],
    refs: Sequence[ClientRef],
    *,
    history: bool,
) -> dict[str, dict[str, Any]]:
    """client id -> {section key: value (None when the client has nothing there yet)}."""
    values: dict[str, dict[str, Any]] = {ref.client_id: {} for ref in refs}
    for section in sections:
        loaded: Mapping[str, Any] = section.load(db, refs, history) if refs else {}
        for ref in refs:
            values[ref.client_id][section.key] = loaded.get(ref.client_id)
    return values


def last_changed(db: Session, client_ids: Sequence[str]) -> dict[str, datetime]:
    """When each client's record last changed (their newest change-log entry)."""
    if not client_ids:
        return {}
    rows = core_rows(db, _LAST_CHANGED, client_ids)
    return {row.client_id: row.at for row in rows if row.at is not None}


def step_statuses(
    rt: Runtime,
    db: Session,
    clients: Mapping[str, Client],
    enrollments: Mapping[str, Enrollment],
) -> dict[str, list[dict[str, Any]]]:
    """Client id -> each onboarding step and whether they have completed it (as of now)."""
    now = utcnow()

    def context(enrollment: Enrollment) -> StepContext | None:
        # Only for a step that answers one journey at a time, in the journey's own context:
        # the ORM objects a step handler may expect, not the rows read here (the session's
        # identity map reads the practice once).
        practice = db.get(Practice, 1)
        client, journey = db.get(Client, enrollment.client_id), db.get(Enrollment, enrollment.id)
        if practice is None or client is None or journey is None:
            return None
        return rt.step_context(db, practice, client, journey, RequestMeta.none(), now)

    done = rt.wizard.completion(db, list(enrollments.values()), context)
    steps = rt.wizard.steps
    statuses = {}
    for client_id in clients:
        enrollment = enrollments.get(client_id)
        flags = done[enrollment.id] if enrollment is not None else [False] * len(steps)
        statuses[client_id] = [
            {"key": spec.key, "title": spec.title, "complete": complete}
            for spec, complete in zip(steps, flags, strict=True)
        ]
    return statuses


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def therapist_names(db: Session, enrollments: Iterable[Enrollment]) -> dict[str, str]:
    """Staff id -> name, for the therapists of `enrollments`."""
    ids = list({e.therapist_id for e in enrollments if e.therapist_id})
    return {row.id: row.name for row in core_rows(db, _STAFF_NAMES, ids)} if ids else {}


def enrollment_json(
    enrollment: Enrollment | None, therapists: Mapping[str, str]
) -> dict[str, Any] | None:
    if enrollment is None:
        return None
    therapist_id = enrollment.therapist_id or ""
    return {
        "id": enrollment.id,
        "status": str(enrollment.status),
        "invited_at": iso(enrollment.created_at),
        "started_at": iso(enrollment.started_at),
        "completed_at": iso(enrollment.completed_at),
        "therapist": (
            {"id": therapist_id, "name": therapists[therapist_id]}
            if therapist_id in therapists
            else None
        ),
    }


def client_records(
    rt: Runtime,
    db: Session,
    clients: Sequence[Client],
    scopes: Iterable[str],
    *,
    history: bool = False,
) -> list[dict[str, Any]]:
    """The API representation of `clients`, in the order given."""
    ids = [client.id for client in clients]
    enrollments = latest_enrollments(db, ids)
    refs = [ClientRef(c.id, e.id if (e := enrollments.get(c.id)) else None) for c in clients]
    sections = visible_sections(rt.api_sections, scopes)
    values = load_sections(db, sections, refs, history=history)
    changed = last_changed(db, ids)
    therapists = therapist_names(db, enrollments.values())
    statuses = step_statuses(rt, db, {client.id: client for client in clients}, enrollments)
    records = []
    for client in clients:
        enrollment = enrollments.get(client.id)
        record: dict[str, Any] = {
            "id": client.id,
            "mrn": client.mrn,
            "name": client.full_name,
            "email": client.email,
            "created_at": iso(client.created_at),
            "updated_at": iso(changed.get(client.id, client.created_at)),
            "enrollment": enrollment_json(enrollment, therapists),
            "steps": statuses.get(client.id, []),
        }
        record.update(values[client.id])
        records.append(record)
    return records
