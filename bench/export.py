"""FHIR bulk export measured in-process: the real worker code (`jobs.claim`, `runner.run`).

Speed is timed on a plain run; memory on a second run under tracemalloc (which slows Python
down, so it is not timed), as the peak of traced allocations above what was live before.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from bench import dataset
from bench.report import Row
from portal.app import create_app
from portal.db import transaction
from portal.fhir.bulk import jobs, runner
from portal.fhir.bulk.models import ExportJob, JobStatus
from portal.runtime import Runtime


@dataclass(frozen=True)
class ExportRun:
    clients: int
    resources: int
    seconds: float
    peak_mb: float


def _export(rt: Runtime, traced: bool) -> tuple[int, int, float, float]:
    with transaction(rt.engine) as db:
        db.add(
            ExportJob(
                api_key_id="bench",
                level="system",
                request_url="http://bench/fhir/r4/$export",
                types=list(runner.BUILDERS),
                scopes=["clients:read", "contacts:read", "export"],
                output_format="application/fhir+ndjson",
            )
        )
    job = jobs.claim(rt.engine)
    assert job is not None
    if traced:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    began = time.perf_counter()
    try:
        runner.run(rt, job)
        seconds = time.perf_counter() - began
        peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20 if traced else 0.0
    finally:
        if traced:
            tracemalloc.stop()
    with transaction(rt.engine, read_only=True) as db:
        done = db.get(ExportJob, job.id)
        assert done is not None and done.status == JobStatus.COMPLETE, done
        resources = sum(entry["count"] for entry in done.output)
        return done.done_clients, resources, seconds, peak


def measure(url: str) -> ExportRun:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(dataset.settings_for(url, export_dir=str(Path(folder) / "exports")))
        rt: Runtime = app.state.runtime
        try:
            clients, resources, seconds, _ = _export(rt, traced=False)
            _, _, _, peak = _export(rt, traced=True)
        finally:
            rt.engine.dispose()
    return ExportRun(clients, resources, seconds, peak)


def rows(small: ExportRun, large: ExportRun, database: str) -> list[Row]:
    speed = large.resources / large.seconds
    growth = large.peak_mb - small.peak_mb
    return [
        Row(
            f"FHIR bulk export of {large.clients:,} clients",
            database,
            f"{large.resources:,} resources in {large.seconds:.1f} s = {speed:,.0f}/s",
            ">= 20,000 resources/s",
            speed >= 20_000,
        ),
        Row(
            "FHIR bulk export: peak memory growth",
            database,
            f"{large.peak_mb:.1f} MB at {large.clients:,} clients",
            "< 64 MB",
            large.peak_mb < 64,
        ),
        Row(
            "FHIR bulk export: memory, small vs large",
            database,
            f"{small.peak_mb:.1f} MB at {small.clients:,}, {large.peak_mb:.1f} MB at "
            f"{large.clients:,} ({growth:+.1f} MB)",
            "no growth (< 2 MB)",
            growth < 2,
        ),
    ]
