"""Which clients an export covers, read in keyset batches, and what ``_since`` means here.

transactionTime and ``_since``
------------------------------
An EHR syncs by exporting with ``_since=<transactionTime of its previous export>``. Comparing
``_since`` with change timestamps would miss changes: a transaction stamps its change at, say,
10:00:00 but commits at 10:00:02, after an export with transactionTime 10:00:01 had already read
the data without it. The next export, ``_since=10:00:01``, would skip a change "made" at 10:00:00.

So a job takes a *snapshot* when a worker starts it: ``transaction_time = now`` and
``position = portal.changes.head(db)``, read in the same transaction and stored on the job.
``head`` is the last change below the change log's safe horizon: every change at or before that
position had committed (and so is in this export's files, read afterwards), and every change
still in flight lands *after* it in log order (see ``portal.changes``). Then:

- ``_since`` equal to the transactionTime of an earlier job: the export covers the clients with a
  change after that job's stored position. Nothing is missed, however commits interleaved; a
  change in flight during the earlier export is exported again (a duplicate, never a gap).
- any other ``_since``: clients with a change from ``portal.changes.first_at_or_after`` on, i.e.
  stamped at or after ``_since``. Stamps are not commit order, so this path is approximate; it
  is for a first sync from an arbitrary date. Exact incremental sync passes transactionTime back.

Job rows outlive their files (they expire to status "expired", not deleted), so the exact path
works however long the EHR waits between exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, true, tuple_
from sqlmodel import Session, col, select

from portal import changes
from portal.changes import ClientChange, Position
from portal.db import utcnow
from portal.fhir.bulk.models import ExportJob
from portal.models import Client
from portal.rows import as_model, core_rows

BATCH = 500


@dataclass(frozen=True)
class Snapshot:
    transaction_time: datetime
    position: Position


def take_snapshot(db: Session) -> Snapshot:
    """The job's transactionTime and change-log head, read in the caller's transaction."""
    return Snapshot(utcnow(), changes.head(db))


def since_position(db: Session, since: datetime) -> Position:
    """Where in the change log an export with this ``_since`` starts (module docstring)."""
    earlier = db.exec(
        select(ExportJob)
        .where(col(ExportJob.transaction_time) == since)
        .where(col(ExportJob.position_txid).is_not(None))
        .order_by(col(ExportJob.created_at))
        .limit(1)
    ).first()
    if earlier is not None and earlier.position_seq is not None:
        return Position(earlier.position_txid or 0, earlier.position_seq)
    return changes.first_at_or_after(db, since)


def _changed_after(start: Position | None) -> Any:
    """SQL condition on Client: some change after `start` (no condition without a start)."""
    if start is None:
        return true()
    return exists().where(
        col(ClientChange.client_id) == col(Client.id),
        tuple_(col(ClientChange.txid), col(ClientChange.seq)) > (start.txid, start.seq),
    )


def count(db: Session, start: Position | None) -> int:
    """How many clients the export covers (for progress; new clients may join while it runs)."""
    total = db.exec(select(func.count()).select_from(Client).where(_changed_after(start))).one()
    return int(total)


def batch(db: Session, after_id: str, start: Position | None, size: int = BATCH) -> list[Client]:
    """The next `size` clients by id after `after_id`: the last batch costs what the first does.

    Core rows of the columns the resources read (id, MRN, name, creation), not ORM objects,
    which would cost more than the rest of a Patient."""
    query = (
        select(col(Client.id), col(Client.mrn), col(Client.full_name), col(Client.created_at))
        .where(col(Client.id) > after_id)
        .where(_changed_after(start))
        .order_by(col(Client.id))
        .limit(size)
    )
    return [as_model(Client, row) for row in core_rows(db, query)]
