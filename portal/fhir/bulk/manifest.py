"""What the status URL says about a job: progress while it runs, the manifest once complete."""

from __future__ import annotations

from typing import Any

from portal.api.records import iso
from portal.fhir import PREFIX
from portal.fhir.bulk.models import ExportJob, JobStatus

STATUS_PATH = f"{PREFIX}/$export-status"
FILE_PATH = f"{PREFIX}/$export-file"


def status_url(base: str, job_id: str) -> str:
    return f"{base}{STATUS_PATH}/{job_id}"


def file_url(base: str, job_id: str, name: str) -> str:
    return f"{base}{FILE_PATH}/{job_id}/{name}"


def progress(job: ExportJob) -> str:
    """The X-Progress header: a short, human-readable estimate (ASCII, as headers must be)."""
    if job.status == JobStatus.PENDING:
        return "queued"
    total = max(job.total_clients, job.done_clients)
    percent = 100 * job.done_clients // total if total else 0
    return f"{percent}% ({job.done_clients}/{total} clients)"


def manifest(job: ExportJob, base: str) -> dict[str, Any]:
    """The completion manifest (Bulk Data IG v2): file URLs are absolute and need the same key."""

    def items(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"type": e["type"], "url": file_url(base, job.id, e["file"]), "count": e["count"]}
            for e in entries
        ]

    return {
        "transactionTime": iso(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": items(job.output),
        "error": items(job.errors),
    }


def file_entry(job: ExportJob, name: str) -> dict[str, Any] | None:
    """The manifest entry of one of the job's files (output or error), or None."""
    return next((e for e in [*job.output, *job.errors] if e["file"] == name), None)
