"""What staff record about the acknowledgement outside the portal: the policy discussed in
session (therapists and the admin), a paper acknowledgement with its scan (any staff role
allowed to record paper), and downloading that scan. Every view and change is audited."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import audit
from portal.audit import Actor
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import request_meta, runtime
from portal.settings import Settings
from portal.staff.access import Permission, require
from portal.templating import render
from portal_policy import service as policy_service
from portal_signature import discussion, paper, scans
from portal_signature.staff_forms import parse_date, parse_names, parse_version
from portal_signature.staff_view import published_versions

FORM_ROOM = 64 * 1024  # the text fields and multipart framing, inside the upload cap
TEXT_PART_MAX = 64 * 1024
NO_POLICY = "No policy is published yet, so there is nothing to record."


def scan_limit(settings: Settings) -> int:
    """Largest scan accepted here. The whole request is capped at `max_upload_bytes` by the
    CSRF middleware (a 413 page); below that, this form says what was wrong."""
    return max(1024, settings.max_upload_bytes - FORM_ROOM)


def _first_texts(form: FormData) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in values:
            values[key[:100]] = value
    return values


def _client_url(enrollment_id: str, note: str) -> str:
    return f"/staff/clients/{enrollment_id}?{note}=1#sec-acknowledgement"


async def discussed(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(
        require, rt.engine, rt.settings, request, Permission.RECORD_IN_SESSION
    )
    enrollment_id = request.path_params["enrollment_id"][:32]
    try:
        async with request.form(max_files=0, max_fields=20) as form:
            raw = _first_texts(form)
    except Exception:  # a malformed body is treated as an empty form: the problems are named
        raw = {}
    meta = request_meta(request)
    now = utcnow()

    def work() -> tuple[str, dict[str, Any]]:
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return "missing", {}
            versions = published_versions(db)
            number, version_problem = parse_version(
                raw.get("policy_version"), [v for v, _ in versions]
            )
            day, day_echo, day_problem = parse_date(
                raw.get("discussed_on"), now, what="the policy was discussed"
            )
            errors = {
                key: problem
                for key, problem in (
                    ("policy_version", NO_POLICY if not versions else version_problem),
                    ("discussed_on", day_problem),
                )
                if problem
            }
            policy = policy_service.by_number(db, number) if number is not None else None
            if errors or policy is None or day is None:
                return "invalid", {
                    "enrollment": enrollment,
                    "client": db.get(Client, enrollment.client_id),
                    "practice": db.get(Practice, 1),
                    "policy_versions": versions,
                    "values": {"policy_version": str(number or ""), "discussed_on": day_echo},
                    "errors": errors or {"policy_version": NO_POLICY},
                }
            _row, new = discussion.record(
                db,
                enrollment,
                policy,
                staff_id=me.id,
                discussed_on=day,
                actor=Actor("staff", me.id),
                meta=meta,
                now=now,
            )
            return ("discussed" if new else "discussed_before"), {}

    kind, context = await run_in_threadpool(work)
    if kind == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    if kind == "invalid":
        context["me"] = me
        return render(request, "signature/discussed_form.html", context, status_code=422)
    return RedirectResponse(_client_url(enrollment_id, kind), status_code=303)


async def paper_form(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.RECORD_PAPER)
    enrollment_id = request.path_params["enrollment_id"][:32]

    def work() -> dict[str, Any] | None:
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return None
            # The form shows who the client is: a view of their record.
            audit.record(
                db,
                Actor("staff", me.id),
                "client.viewed",
                "enrollment",
                enrollment.id,
                request_meta(request),
                page="paper_form",
            )
            versions = published_versions(db)
            return {
                "enrollment": enrollment,
                "client": db.get(Client, enrollment.client_id),
                "practice": db.get(Practice, 1),
                "policy_versions": versions,
                "values": {"policy_version": str(versions[0][0]) if versions else ""},
                "errors": {},
            }

    context = await run_in_threadpool(work)
    if context is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    return _paper_page(request, me, context)


def _paper_page(request: Request, me: Any, context: dict[str, Any], status: int = 200) -> Response:
    rt = runtime(request)
    context.update(me=me, accept=scans.ACCEPT, scan_max=scans.size_words(scan_limit(rt.settings)))
    return render(request, "signature/paper_form.html", context, status_code=status)


async def _read_upload(request: Request, limit: int) -> tuple[dict[str, str], bytes, str, str]:
    """(text fields, the file's first limit+1 bytes, its name, problem reading the form)."""
    try:
        async with request.form(max_files=1, max_fields=20, max_part_size=TEXT_PART_MAX) as form:
            raw = _first_texts(form)
            upload = form.get("scan")
            if not isinstance(upload, UploadFile):
                return raw, b"", "", ""
            return raw, await upload.read(limit + 1), upload.filename or "", ""
    except Exception:  # too many files or fields, a malformed body: named, never a 500
        return {}, b"", "", "We couldn't read that form. Attach one file, and send it again."


def check_scan(content: bytes, file_name: str, limit: int) -> tuple[scans.ScanKind | None, str]:
    if not content and not file_name:
        return None, "Choose the scanned file: a PDF, PNG or JPEG."
    if not content:
        return None, "That file is empty. Choose the scanned file again."
    if len(content) > limit:
        return None, (
            f"That file is too large: {scans.size_words(limit)} at most. Scan at a lower "
            "resolution, or save the scan as a PDF."
        )
    kind = scans.sniff(content)
    if kind is None:
        return None, "That file isn't a PDF, PNG or JPEG. Save the scan in one of those formats."
    return kind, ""


async def paper_record(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.RECORD_PAPER)
    enrollment_id = request.path_params["enrollment_id"][:32]
    limit = scan_limit(rt.settings)
    raw, content, file_name, form_problem = await _read_upload(request, limit)
    kind, scan_problem = check_scan(content, file_name, limit)
    meta = request_meta(request)
    now = utcnow()

    def work() -> tuple[str, dict[str, Any]]:
        with transaction(rt.engine) as db:
            enrollment = db.get(Enrollment, enrollment_id)
            if enrollment is None:
                return "missing", {}
            versions = published_versions(db)
            number, version_problem = parse_version(
                raw.get("policy_version"), [v for v, _ in versions]
            )
            names, names_echo, names_problem = parse_names(raw.get("signer_names"))
            day, day_echo, day_problem = parse_date(
                raw.get("signed_on"), now, what="the paper form was signed"
            )
            errors = {
                key: problem
                for key, problem in (
                    ("policy_version", NO_POLICY if not versions else version_problem),
                    ("signer_names", names_problem),
                    ("signed_on", day_problem),
                    ("scan", form_problem or scan_problem),
                )
                if problem
            }
            policy = policy_service.by_number(db, number) if number is not None else None
            if errors or policy is None or day is None or kind is None:
                return "invalid", {
                    "enrollment": enrollment,
                    "client": db.get(Client, enrollment.client_id),
                    "practice": db.get(Practice, 1),
                    "policy_versions": versions,
                    "values": {
                        "policy_version": str(number or ""),
                        "signer_names": names_echo,
                        "signed_on": day_echo,
                    },
                    "errors": errors or {"policy_version": NO_POLICY},
                }
            _row, new = paper.record(
                db,
                enrollment,
                policy,
                signer_names=names,
                signed_on=day,
                file_name=scans.clean_file_name(file_name),
                content=content,
                content_type=kind.content_type,
                staff_id=me.id,
                actor=Actor("staff", me.id),
                meta=meta,
                now=now,
            )
            return ("paper" if new else "paper_before"), {}

    result, context = await run_in_threadpool(work)
    if result == "missing":
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    if result == "invalid":
        return _paper_page(request, me, context, status=422)
    return RedirectResponse(_client_url(enrollment_id, result), status_code=303)


async def paper_download(request: Request) -> Response:
    rt = runtime(request)
    me = await run_in_threadpool(require, rt.engine, rt.settings, request, Permission.VIEW_CLIENTS)
    enrollment_id = request.path_params["enrollment_id"][:32]
    paper_id = request.path_params["paper_id"][:32]
    meta = request_meta(request)

    def work() -> tuple[bytes, str, str] | None:
        with transaction(rt.engine) as db:
            row = paper.scan(db, enrollment_id, paper_id)
            if row is None:
                return None
            audit.record(
                db,
                Actor("staff", me.id),
                "paper_acknowledgement.downloaded",
                "paper_acknowledgement",
                row.id,
                meta,
                enrollment_id=row.enrollment_id,
            )
            name = f"paper-acknowledgement-{row.signed_on.isoformat()}-{row.id[:8]}"
            return row.content, row.content_type, f"{name}.{scans.extension_for(row.content_type)}"

    found = await run_in_threadpool(work)
    if found is None:
        return render(request, "errors/not_found.html", {"me": me}, status_code=404)
    content, content_type, download_name = found
    headers = {"Content-Disposition": f'attachment; filename="{download_name}"'}
    return Response(content, media_type=content_type, headers=headers)


PREFIX = "/staff/clients/{enrollment_id:str}"
routes = [
    Route(f"{PREFIX}/discussed", discussed, methods=["POST"]),
    Route(f"{PREFIX}/paper", paper_form, methods=["GET"]),
    Route(f"{PREFIX}/paper", paper_record, methods=["POST"]),
    Route(f"{PREFIX}/paper/{{paper_id:str}}", paper_download, methods=["GET"]),
]
