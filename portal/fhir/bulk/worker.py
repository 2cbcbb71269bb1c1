"""Runs export jobs: in `portal serve` (PORTAL_EXPORT_IN_PROCESS) or in `portal export-worker`.

Jobs are claimed from the database, so any number of processes may run this loop; each job runs
in a worker thread (it is blocking database and file work) while the event loop keeps serving.
Files go to PORTAL_EXPORT_DIR: a separate worker process must see the same folder as the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from portal.db import is_outage
from portal.fhir.bulk import jobs, runner
from portal.runtime import Runtime

log = logging.getLogger("portal.export")


async def run_due(rt: Runtime, should_stop: asyncio.Event | None = None) -> int:
    """Expire old exports, then run pending jobs until none is left. Returns how many ran."""
    stopping = should_stop or asyncio.Event()
    settings = rt.settings
    await run_in_threadpool(jobs.expire, rt.engine, settings.export_path, settings.export_hours)
    ran = 0
    while not stopping.is_set():
        job = await run_in_threadpool(jobs.claim, rt.engine)
        if job is None:
            break
        await run_in_threadpool(runner.execute, rt, job, stopping.is_set)
        ran += 1
    return ran


class ExportLoop:
    """Polls for export jobs; `wake()` after a kick-off starts the job at once."""

    def __init__(self, rt: Runtime, interval: float = 5.0) -> None:
        self.rt = rt
        self.interval = interval
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Ask the loop to end; a running job stops after its current batch and is requeued."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                await run_due(self.rt, self._stopping)
            except Exception as exc:  # the loop must outlive a database outage
                if is_outage(exc):  # expected while it lasts: one line, the next pass retries
                    log.warning("export pass: database unavailable (%s)", type(exc).__name__)
                else:
                    log.exception("export pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.interval)
