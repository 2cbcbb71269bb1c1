"""The consent board: what plugins contribute (columns, client-page sections) and the query
behind the list. Filters, sort and search come from the URL so a view can be bookmarked."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple
from urllib.parse import urlencode

from sqlalchemy import func, tuple_
from sqlalchemy import select as sa_select  # sqlmodel's select types at most 4 columns
from sqlmodel import Session, col

from portal.models import Client, Enrollment, EnrollmentStatus
from portal.rows import core_rows
from portal.staff import board_search

PAGE_SIZE = 50


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str = "neutral"  # "ok", "warn", "missing", "neutral": styled, and spelled out in text


@dataclass(frozen=True)
class BoardColumn:
    """A column of the consent board. `values` gets the enrollment ids of one page and
    returns a cell for each (one query per page, not per row)."""

    key: str
    title: str
    order: int
    values: Callable[[Session, Sequence[str]], dict[str, Cell]]


@dataclass(frozen=True)
class ClientSection:
    """A section of the staff client page: `context` loads what `template` shows."""

    key: str
    title: str
    order: int
    template: str
    context: Callable[[Session, Enrollment, Client], dict[str, Any]]


@dataclass(frozen=True)
class BoardFilter:
    """An extra choice in the board's status filter (e.g. "Must re-acknowledge"):
    `condition` returns a SQL condition on Enrollment, or None when it cannot apply now."""

    key: str
    label: str
    condition: Callable[[Session], Any]


@dataclass(frozen=True)
class BoardPanel:
    """A panel above the board (e.g. a campaign's progress): `context` returns what
    `template` shows, or None to show nothing."""

    key: str
    order: int
    template: str
    context: Callable[[Session], dict[str, Any] | None]


SORTS = {
    "invited": (col(Enrollment.created_at), True),
    "name": (func.lower(col(Client.full_name)), False),
}
STATUSES = {s.value: s.value.replace("_", " ").capitalize() for s in EnrollmentStatus}


@dataclass(frozen=True)
class BoardQuery:
    q: str = ""
    status: str = ""
    sort: str = "invited"
    therapist: str = ""  # a staff account id
    invited_before: str = ""  # YYYY-MM-DD, in UTC
    after: str = ""

    @classmethod
    def from_params(cls, params: Any, extra_statuses: Sequence[str] = ()) -> BoardQuery:
        """Read the URL; anything unknown or malformed is ignored rather than refused."""
        status = params.get("status", "")
        allowed = set(STATUSES) | set(extra_statuses)
        sort = params.get("sort", "invited")
        before = str(params.get("invited_before", ""))[:10]
        try:
            date.fromisoformat(before)
        except ValueError:
            before = ""
        return cls(
            q=" ".join(str(params.get("q", "")).split())[:100],
            status=status if status in allowed else "",
            sort=sort if sort in SORTS else "invited",
            therapist=str(params.get("therapist", ""))[:32],
            invited_before=before,
            after=str(params.get("after", ""))[:200],
        )

    def url(self, **changes: str) -> str:
        """This view's URL (for the next page, the CSV download), with `changes` applied."""
        values = {
            "q": self.q,
            "status": self.status,
            "sort": self.sort,
            "therapist": self.therapist,
            "invited_before": self.invited_before,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


class BoardRow(NamedTuple):
    """One client on the board: plain columns, not ORM objects (a page is read on every
    keystroke of a live search, and building objects was a third of its cost)."""

    enrollment_id: str
    status: str
    created_at: datetime
    therapist_id: str | None
    full_name: str
    email: str


@dataclass
class BoardPage:
    rows: list[BoardRow]
    next_cursor: str | None
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)  # column key -> id -> cell


def _cursor(value: Any, row_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(json.dumps([value, row_id]).encode()).decode()


def _decode(cursor: str, sort: str) -> tuple[Any, str] | None:
    """The cursor from the URL, or None (the first page) when it is not one of ours."""
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not (isinstance(value, str) and isinstance(row_id, str)):
            return None
        return (datetime.fromisoformat(value) if sort == "invited" else value), row_id
    except (ValueError, TypeError):
        return None


def search(
    db: Session,
    query: BoardQuery,
    columns: Sequence[BoardColumn],
    filters: Sequence[BoardFilter] = (),
) -> BoardPage:
    """One page of the board, by keyset: the last page costs what the first does."""
    sort_expr, descending = SORTS[query.sort]
    stmt: Any = sa_select(
        col(Enrollment.id),
        col(Enrollment.status),
        col(Enrollment.created_at),
        col(Enrollment.therapist_id),
        col(Client.full_name),
        col(Client.email),
        sort_expr.label("sort_key"),
    ).join(Client, col(Client.id) == col(Enrollment.client_id))
    extra = {f.key: f for f in filters}
    if query.status in extra:
        condition = extra[query.status].condition(db)
        if condition is not None:
            stmt = stmt.where(condition)
        stmt = stmt.where(col(Enrollment.status) != EnrollmentStatus.CANCELLED)
    elif query.status:
        stmt = stmt.where(col(Enrollment.status) == query.status)
    else:
        stmt = stmt.where(col(Enrollment.status) != EnrollmentStatus.CANCELLED)
    if query.therapist:
        stmt = stmt.where(col(Enrollment.therapist_id) == query.therapist)
    if query.invited_before:
        cutoff = datetime.combine(date.fromisoformat(query.invited_before), time(), tzinfo=UTC)
        stmt = stmt.where(col(Enrollment.created_at) < cutoff)
    decoded = _decode(query.after, query.sort) if query.after else None
    if decoded is not None:
        value, last_id = decoded
        key = tuple_(sort_expr, col(Enrollment.id))
        stmt = stmt.where(key < (value, last_id) if descending else key > (value, last_id))
    order = (
        (sort_expr.desc(), col(Enrollment.id).desc())
        if descending
        else (sort_expr.asc(), col(Enrollment.id).asc())
    )
    if query.q:
        matching = board_search.condition(db, query.q.lower())
        if matching is None:
            return BoardPage([], None, {column.key: {} for column in columns})
        stmt = stmt.where(matching)
    found = list(core_rows(db, stmt.order_by(*order).limit(PAGE_SIZE + 1)))
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    rows = [BoardRow._make(row[:6]) for row in found]
    next_cursor = _cursor(found[-1].sort_key, found[-1].id) if more and found else None
    ids = [row.enrollment_id for row in rows]
    cells = {column.key: column.values(db, ids) if ids else {} for column in columns}
    return BoardPage(rows, next_cursor, cells)
