"""FHIR errors: every failure under /fhir/r4 is an OperationOutcome with a precise HTTP status."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.api.problems import ApiProblem
from portal.fhir import MEDIA_TYPE, PREFIX

CONTENT_TYPE = f"{MEDIA_TYPE}; charset=utf-8"

# The IssueType (http://hl7.org/fhir/issue-type) that best names each status we answer with.
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    422: "processing",
    429: "throttled",
}


class FhirError(Exception):
    """Raised anywhere under /fhir/r4; `handle_fhir_error` answers it as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {diagnostics}")
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_TYPES.get(status, "exception")
        self.headers = headers or {}

    @classmethod
    def from_problem(cls, problem: ApiProblem) -> FhirError:
        """The same refusal as /api/v1 gives (status, detail, WWW-Authenticate), in FHIR's form."""
        detail = problem.detail or problem.title or HTTPStatus(problem.status).phrase
        return cls(problem.status, detail, headers=problem.headers)


def bad_request(diagnostics: str) -> FhirError:
    return FhirError(400, diagnostics)


def outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(body, status_code=status, headers=headers, media_type=CONTENT_TYPE)


def error_response(error: FhirError) -> Response:
    return fhir_response(outcome(error.code, error.diagnostics), error.status, error.headers)


async def handle_fhir_error(request: Request, exc: Exception) -> Response:
    """The app's exception handler for FhirError."""
    if not isinstance(exc, FhirError):
        exc = FhirError(500, "The server failed to answer this request.")
    return error_response(exc)


def is_fhir_path(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


def unmatched(request: Request, exc: Exception) -> Response:
    """The app's 404 / 405 answer for paths under /fhir: an OperationOutcome, not the HTML page."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        headers = exc.headers if isinstance(exc, HTTPException) else None
        error = FhirError(
            405,
            f"{request.method} is not supported here: this FHIR server is read-only.",
            headers=dict(headers or {}),
        )
    else:
        error = FhirError(
            404, f"There is no FHIR endpoint at this path; see {PREFIX}/metadata for what is."
        )
    return error_response(error)
