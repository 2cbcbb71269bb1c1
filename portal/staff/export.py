"""The consent board as CSV: the board's own keyset query, page by page, so a practice of
100,000 clients streams without loading at once. Cells are made safe for spreadsheets."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from portal.db import transaction
from portal.staff.board import STATUSES, BoardColumn, BoardFilter, BoardPage, BoardQuery, search

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FIXED_HEADINGS = ("Name", "Email", "Status", "Invited")

# Called once at the end, in a transaction of its own: (session, rows sent, finished?).
Finish = Callable[[Session, int, bool], None]


def safe_cell(text: str) -> str:
    """Prefixed with ' when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def headings(columns: Sequence[BoardColumn]) -> list[str]:
    return [*FIXED_HEADINGS, *(column.title for column in columns)]


def page_rows(page: BoardPage, columns: Sequence[BoardColumn]) -> list[list[str]]:
    rows = []
    for row in page.rows:
        cells = [page.cells[c.key].get(row.enrollment_id) for c in columns]
        rows.append(
            [
                row.full_name,
                row.email,
                STATUSES.get(row.status, str(row.status)),
                row.created_at.strftime("%Y-%m-%d"),
                *(cell.text if cell else "" for cell in cells),
            ]
        )
    return rows


def _encode(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def stream(
    engine: Engine,
    query: BoardQuery,
    columns: Sequence[BoardColumn],
    finish: Finish,
    filters: Sequence[BoardFilter] = (),
) -> Iterator[str]:
    """CSV text, one board page per chunk, each page read in a short transaction of its own
    (a long export never holds a transaction open). `finish` records how far it got, also
    when the download stops early."""
    sent, finished = 0, False
    try:
        # The byte-order mark makes spreadsheet programs read the file as UTF-8.
        yield "\ufeff" + _encode([headings(columns)])
        cursor = ""
        while True:
            with transaction(engine, read_only=True) as db:
                page = search(db, dataclasses.replace(query, after=cursor), columns, filters)
                chunk = page_rows(page, columns)
            if chunk:
                yield _encode(chunk)
                sent += len(chunk)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        finished = True
    finally:
        with transaction(engine) as db:
            finish(db, sent, finished)
