"""RFC 9457 problem details: every API error is `application/problem+json`."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere under /api/v1; the handler turns it into a problem+json response."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def problem_response(problem: ApiProblem) -> Response:
    body: dict[str, object] = {
        # No documentation page per problem type (yet): RFC 9457 says use about:blank then.
        "type": "about:blank",
        "title": problem.title or HTTPStatus(problem.status).phrase,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    """The app's exception handler for ApiProblem."""
    if not isinstance(exc, ApiProblem):
        exc = ApiProblem(500, "Internal Server Error")
    return problem_response(exc)
