"""An export job's life in the database: claimed, renewed, completed, released, failed, expired.

Every transition is a short transaction of its own and a conditional UPDATE on the job's status
and attempt number, so a worker that lost its job (cancelled by the EHR, or reclaimed by another
worker after its lease ran out) finds out at its next batch instead of overwriting the winner.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import col, select

from portal import audit
from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.fhir.bulk import selection, storage
from portal.fhir.bulk.models import ExportJob, JobStatus

log = logging.getLogger("portal.export")

# A running job renews its lease with its progress (at most once a second, runner.PROGRESS_SECONDS);
# a worker that died loses it after this long.
LEASE = timedelta(minutes=5)
# A job that brought its worker down this many times is failed rather than tried forever.
MAX_ATTEMPTS = 3
SYSTEM = Actor("system", "bulk-export")


class LostJob(Exception):
    """The job is no longer this worker's: cancelled, or reclaimed after the lease ran out."""


def claim(engine: Engine, now: datetime | None = None) -> ExportJob | None:
    """Take the oldest pending job (or one whose worker vanished) and take its snapshot.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several processes claim at once without ever
    taking the same job; SQLite serialises writers anyway (BEGIN IMMEDIATE)."""
    now = now or utcnow()
    with transaction(engine) as db:
        query = (
            select(ExportJob)
            .where(
                or_(
                    col(ExportJob.status) == JobStatus.PENDING,
                    and_(
                        col(ExportJob.status) == JobStatus.RUNNING,
                        col(ExportJob.locked_until) < now,
                    ),
                )
            )
            .order_by(col(ExportJob.created_at), col(ExportJob.id))
            .limit(1)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        while (job := db.exec(query).first()) is not None and job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            job.failure = f"the export was interrupted {job.attempts} times"
            job.finished_at = now
            job.locked_until = None
            db.add(job)
            db.flush()
            log.error("export %s failed: interrupted %s times", job.id, job.attempts)
        if job is None:
            return None
        snapshot = selection.take_snapshot(db)
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = now
        job.locked_until = now + LEASE
        job.transaction_time = snapshot.transaction_time
        job.position_txid = snapshot.position.txid
        job.position_seq = snapshot.position.seq
        job.done_clients = 0
        db.add(job)
        return job


def _mine(job: ExportJob) -> Any:
    return and_(
        col(ExportJob.id) == job.id,
        col(ExportJob.status) == JobStatus.RUNNING,
        col(ExportJob.attempts) == job.attempts,
    )


def _update_mine(engine: Engine, job: ExportJob, **values: Any) -> None:
    with transaction(engine) as db:
        result = db.execute(update(ExportJob).where(_mine(job)).values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostJob(job.id)


def progress(engine: Engine, job: ExportJob, done: int, total: int) -> None:
    """Record progress and renew the lease; LostJob if the job was cancelled or taken over."""
    _update_mine(
        engine,
        job,
        done_clients=done,
        total_clients=max(total, done),
        locked_until=utcnow() + LEASE,
    )


def complete(
    engine: Engine,
    job: ExportJob,
    *,
    hours: int,
    output: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    done: int,
) -> None:
    now = utcnow()
    with transaction(engine) as db:
        result = db.execute(
            update(ExportJob)
            .where(_mine(job))
            .values(
                status=JobStatus.COMPLETE,
                finished_at=now,
                expires_at=now + timedelta(hours=hours),
                locked_until=None,
                output=output,
                errors=errors,
                done_clients=done,
                total_clients=done,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostJob(job.id)
        counts = {item["type"]: item["count"] for item in output}
        audit.record(
            db, SYSTEM, "fhir.export.completed", "export_job", job.id, clients=done, counts=counts
        )


def release(engine: Engine, job: ExportJob) -> None:
    """Hand a job back unfinished (the process is stopping): another worker starts it over,
    and the interruption does not count as an attempt."""
    with contextlib.suppress(LostJob):
        _update_mine(
            engine, job, status=JobStatus.PENDING, locked_until=None, attempts=job.attempts - 1
        )


def fail(engine: Engine, job: ExportJob, reason: str) -> None:
    with contextlib.suppress(LostJob):
        _update_mine(
            engine,
            job,
            status=JobStatus.FAILED,
            failure=reason[:300],
            finished_at=utcnow(),
            locked_until=None,
        )


def cancel(engine: Engine, job_id: str) -> bool:
    """Stop a pending or running job, or withdraw a finished one; False when already gone."""
    with transaction(engine) as db:
        result = db.execute(
            update(ExportJob)
            .where(col(ExportJob.id) == job_id)
            .where(
                col(ExportJob.status).in_(
                    [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETE, JobStatus.FAILED]
                )
            )
            .values(status=JobStatus.CANCELLED, locked_until=None, finished_at=utcnow())
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def expire(engine: Engine, root: Path, hours: int, now: datetime | None = None) -> int:
    """Delete the files of exports past their lifetime and forget failures as old; the rows
    stay (for `_since`), their status URLs answer 404 from now on."""
    now = now or utcnow()
    with transaction(engine) as db:
        ids = list(
            db.exec(
                select(ExportJob.id).where(
                    or_(
                        and_(
                            col(ExportJob.status) == JobStatus.COMPLETE,
                            col(ExportJob.expires_at) < now,
                        ),
                        and_(
                            col(ExportJob.status) == JobStatus.FAILED,
                            col(ExportJob.finished_at) < now - timedelta(hours=hours),
                        ),
                    )
                )
            )
        )
        if ids:
            db.execute(
                update(ExportJob).where(col(ExportJob.id).in_(ids)).values(status=JobStatus.EXPIRED)
            )
    for job_id in ids:
        storage.remove_job_files(root, job_id)
    return len(ids)
