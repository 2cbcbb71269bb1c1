"""Run one export job: clients in keyset batches, resources built per batch, written as NDJSON.

Memory stays flat however many clients there are: a batch is read, turned into resources,
written out and dropped before the next one, each in a short transaction of its own.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from portal.api.sections import ApiSection
from portal.db import is_outage, transaction
from portal.fhir import resources
from portal.fhir.bulk import jobs, selection, storage
from portal.fhir.bulk.models import ExportJob
from portal.runtime import Runtime

log = logging.getLogger("portal.export")

Builder = Callable[[Runtime, resources.Batch], list[dict[str, Any]]]
# The resource types an export can hold, in the order of the manifest. Each builds its resources
# from a batch read once for all of them.
BUILDERS: dict[str, Builder] = {
    resources.PATIENT: resources.build_patients,
    resources.CONSENT: resources.build_consents,
}
ERROR_TYPE = "OperationOutcome"
# How often a running export records its progress, renews its lease (jobs.LEASE, far longer)
# and finds out it was cancelled: a write transaction per batch cost more than the batch's reads.
PROGRESS_SECONDS = 1.0


class Interrupted(Exception):
    """The process is stopping; the job goes back to the queue."""


def run(
    rt: Runtime,
    job: ExportJob,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = selection.BATCH,
) -> None:
    """Write the job's files and mark it complete. Raises jobs.LostJob when the job was
    cancelled or taken over meanwhile, Interrupted when `should_stop()` turns true."""
    root = rt.settings.export_path
    storage.remove_job_files(root, job.id)  # a job taken over from a dead worker starts over
    staging = storage.staging_dir(root, job.id, job.attempts)
    with transaction(rt.engine, read_only=True) as db:
        start = selection.since_position(db, job.since) if job.since is not None else None
        total = selection.count(db, start)
    jobs.progress(rt.engine, job, 0, total)
    reported = time.monotonic()
    done = 0
    after = ""
    with storage.NdjsonWriter(staging) as writer:
        while not should_stop():
            with collector_paused(), transaction(rt.engine, read_only=True) as db:
                clients = selection.batch(db, after, start, batch_size)
                if clients:
                    loaded = resources.load_batch(rt, db, clients, job.scopes, job.types)
                    for resource_type in job.types:
                        writer.write(resource_type, BUILDERS[resource_type](rt, loaded))
                    del loaded
            if not clients:
                break
            after = clients[-1].id
            done += len(clients)
            del clients  # nothing of this batch survives into the next
            if time.monotonic() - reported >= PROGRESS_SECONDS:
                jobs.progress(rt.engine, job, done, total)
                reported = time.monotonic()
        else:
            raise Interrupted(job.id)
        notice = withheld_notice(rt.api_sections, job.scopes)
        if notice is not None:
            writer.write(ERROR_TYPE, [notice])
        counts = dict(writer.counts)
    output = [
        {"type": t, "file": storage.file_name(t), "count": counts[t]}
        for t in job.types
        if counts.get(t)
    ]
    errors = [
        {"type": t, "file": storage.file_name(t), "count": counts[t]}
        for t in [ERROR_TYPE]
        if counts.get(t)
    ]
    final = storage.job_dir(root, job.id)
    storage.publish(staging, final)
    try:
        jobs.complete(
            rt.engine, job, hours=rt.settings.export_hours, output=output, errors=errors, done=done
        )
    except jobs.LostJob:
        shutil.rmtree(final, ignore_errors=True)
        raise


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one batch is read, built and written.

    A batch allocates some 100,000 small dicts and lists, freed by reference counting when it
    is dropped; on the way their allocations set off collections that walk every tracked
    object of the process, which took ~40% of an export's time. What a batch leaves in cycles
    (if anything) waits for the collector at most until the batch is done, so memory stays
    bounded by a batch. Process-wide, like every gc switch: other threads go without
    collections for a batch's time (well under a second) too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def withheld_notice(
    sections: Sequence[ApiSection], scopes: Collection[str]
) -> dict[str, Any] | None:
    """An informational OperationOutcome naming what the key's scopes kept out of the files
    (the manifest's `error` array is for such messages too), or None when nothing was."""
    hidden = [s for s in sections if s.scope not in scopes and (s.fhir.consents or s.fhir.telecom)]
    if not hidden:
        return None
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "information",
                "code": "suppressed",
                "diagnostics": (
                    f"{section.title}: not included, this API key lacks the scope "
                    f"{section.scope!r}."
                ),
            }
            for section in hidden
        ],
    }


def execute(rt: Runtime, job: ExportJob, should_stop: Callable[[], bool]) -> None:
    """Run a claimed job to its end state, whatever happens (the worker's entry point)."""
    root = rt.settings.export_path
    try:
        run(rt, job, should_stop)
    except Interrupted:
        jobs.release(rt.engine, job)
    except jobs.LostJob:
        log.info("export %s stopped: cancelled or taken over", job.id)
    except Exception as exc:
        if is_outage(exc):
            # The database went away mid-export: not the job's fault. Hand it back to be
            # started over; if even that fails, its lease runs out and a worker retakes it.
            log.warning(
                "export %s interrupted: database unavailable (%s)", job.id, type(exc).__name__
            )
            with contextlib.suppress(Exception):
                jobs.release(rt.engine, job)
            return
        # The job id, the error class and where it happened; never the message, which may
        # quote data.
        where = "".join(traceback.format_tb(exc.__traceback__))
        log.error("export %s failed: %s\n%s", job.id, type(exc).__name__, where)
        jobs.fail(rt.engine, job, f"internal error ({type(exc).__name__})")
    finally:
        # Only this attempt's unpublished files: a worker that took the job over keeps its own.
        shutil.rmtree(storage.staging_dir(root, job.id, job.attempts), ignore_errors=True)
