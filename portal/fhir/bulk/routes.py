"""Bulk Data export endpoints: kick-off, status (poll and cancel) and file download.

Mount these before the facade's `Patient/{id}` route, which would otherwise read `$export` as
an id. Only the key that started an export may see it: any other key gets 404, as if it did
not exist. Every call leaves an audit event naming the key (never anyone's details).
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

from sqlmodel import col, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from portal import audit
from portal.api.auth import api_meta
from portal.api.keys import ApiKey, Scope
from portal.api.records import iso
from portal.audit import Actor
from portal.db import transaction
from portal.fhir import PREFIX
from portal.fhir.access import authorize, require_scope
from portal.fhir.bulk import jobs, manifest, params, runner, storage
from portal.fhir.bulk.models import ACTIVE, ExportJob, JobStatus
from portal.fhir.negotiation import require_json
from portal.fhir.outcome import FhirError, fhir_response, outcome
from portal.runtime import Runtime, runtime

NDJSON = "application/fhir+ndjson"
# Pending or running exports one key may have at once; more is 429 until one finishes.
MAX_ACTIVE_PER_KEY = 3
RETRY_AFTER = "2"
GONE = (JobStatus.CANCELLED, JobStatus.EXPIRED)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _record(
    rt: Runtime, request: Request, key: ApiKey, action: str, job_id: str, **detail: Any
) -> None:
    with transaction(rt.engine) as db:
        audit.record(
            db, Actor("api", key.name), action, "export_job", job_id, api_meta(request), **detail
        )


async def kickoff(request: Request) -> Response:
    rt = runtime(request)
    key = await run_in_threadpool(authorize, rt.engine, request, Scope.EXPORT)
    # Every resource exported is a client's record; contact details need contacts:read on top,
    # without which they are left out and the manifest's error file says so.
    await run_in_threadpool(require_scope, rt.engine, request, key, Scope.CLIENTS_READ.value)
    require_json(request)
    asked = params.parse(request, list(runner.BUILDERS))
    level = "patient" if request.url.path.startswith(f"{PREFIX}/Patient/") else "system"

    def create() -> ExportJob:
        with transaction(rt.engine) as db:
            active = db.exec(
                select(func.count())
                .select_from(ExportJob)
                .where(col(ExportJob.api_key_id) == key.id)
                .where(col(ExportJob.status).in_(ACTIVE))
            ).one()
            if active >= MAX_ACTIVE_PER_KEY:
                raise FhirError(
                    429,
                    f"This key has {active} exports running; wait for one to finish "
                    "(or cancel one) before starting another.",
                    headers={"Retry-After": "30"},
                )
            job = ExportJob(
                api_key_id=key.id,
                level=level,
                request_url=str(request.url),
                types=asked.types,
                scopes=list(key.scopes),
                since=asked.since,
                output_format=asked.output_format,
            )
            db.add(job)
            db.flush()
            audit.record(
                db,
                Actor("api", key.name),
                "fhir.export.started",
                "export_job",
                job.id,
                api_meta(request),
                level=level,
                types=asked.types,
                since=iso(asked.since),
            )
            return job

    job = await run_in_threadpool(create)
    loop = getattr(request.app.state, "export_loop", None)
    if loop is not None:
        loop.wake()
    location = manifest.status_url(_base(request), job.id)
    body = outcome("informational", f"Export started; poll {location}", severity="information")
    return fhir_response(body, 202, {"Content-Location": location})


def _owned(rt: Runtime, key: ApiKey, job_id: str) -> ExportJob:
    """The caller's export, or 404 (for another key's export too: its existence is not ours to
    reveal)."""
    job = None
    if storage.is_job_id(job_id):
        with transaction(rt.engine, read_only=True) as db:
            job = db.get(ExportJob, job_id)
    if job is None or job.api_key_id != key.id or job.status in GONE:
        raise FhirError(
            404, "There is no such export: it may have expired, been cancelled or never existed."
        )
    return job


async def status(request: Request) -> Response:
    rt = runtime(request)
    key = await run_in_threadpool(authorize, rt.engine, request, Scope.EXPORT)
    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(_owned, rt, key, job_id)
    if request.method == "DELETE":
        return await _cancel(rt, request, key, job)
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        progress = manifest.progress(job)
        await run_in_threadpool(
            _record, rt, request, key, "fhir.export.polled", job.id, progress=progress
        )
        return Response(
            status_code=202, headers={"X-Progress": progress, "Retry-After": RETRY_AFTER}
        )
    if job.status == JobStatus.FAILED:
        await run_in_threadpool(
            _record, rt, request, key, "fhir.export.polled", job.id, failed=True
        )
        raise FhirError(
            500,
            f"The export failed: {job.failure or 'internal error'}. Start a new export.",
            code="exception",
        )
    body = manifest.manifest(job, _base(request))
    counts = {item["type"]: item["count"] for item in job.output}
    await run_in_threadpool(
        _record, rt, request, key, "fhir.export.manifest", job.id, counts=counts
    )
    headers = {"Expires": format_datetime(job.expires_at, usegmt=True)} if job.expires_at else {}
    # The manifest is plain JSON, not a FHIR resource (IG v2: Content-Type application/json).
    return JSONResponse(body, headers=headers)


async def _cancel(rt: Runtime, request: Request, key: ApiKey, job: ExportJob) -> Response:
    def work() -> bool:
        cancelled = jobs.cancel(rt.engine, job.id)
        if cancelled:
            storage.remove_job_files(rt.settings.export_path, job.id)
            _record(rt, request, key, "fhir.export.cancelled", job.id, was=str(job.status))
        return cancelled

    if not await run_in_threadpool(work):
        raise FhirError(404, "There is no such export: it has expired or was cancelled already.")
    body = outcome("informational", "The export was cancelled.", severity="information")
    return fhir_response(body, 202)


async def download(request: Request) -> Response:
    rt = runtime(request)
    key = await run_in_threadpool(authorize, rt.engine, request, Scope.EXPORT)
    job = await run_in_threadpool(_owned, rt, key, request.path_params["job_id"])
    name = request.path_params["name"]
    entry = manifest.file_entry(job, name) if job.status == JobStatus.COMPLETE else None
    handle = None
    if entry is not None:
        handle = await run_in_threadpool(
            storage.open_for_download, rt.settings.export_path, job.id, name
        )
    if entry is None or handle is None:
        raise FhirError(404, f"This export has no file {name[:60]!r}.")
    await run_in_threadpool(
        _record,
        rt,
        request,
        key,
        "fhir.export.downloaded",
        job.id,
        type=entry["type"],
        count=entry["count"],
    )
    return StreamingResponse(storage.chunks(handle), media_type=NDJSON)


routes: list[BaseRoute] = [
    Route(f"{PREFIX}/$export", kickoff, methods=["GET"]),
    Route(f"{PREFIX}/Patient/$export", kickoff, methods=["GET"]),
    Route(f"{manifest.STATUS_PATH}/{{job_id}}", status, methods=["GET", "DELETE"]),
    Route(f"{manifest.FILE_PATH}/{{job_id}}/{{name}}", download, methods=["GET"]),
]
