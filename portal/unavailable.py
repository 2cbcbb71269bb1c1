"""What the app answers while the database cannot be reached: 503 "try again shortly".

An outage (see `portal.db.is_outage`: a lost or refused connection, a connect timeout, SQLite's
write lock held past the busy timeout) is not a bug: the person, or the EHR, is told to come
back shortly, with `Retry-After`, in the format of the part of the site they asked. Every other
database error (an integrity error, a missing table) goes on to the 500 handler.
"""

from __future__ import annotations

import logging

from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import Response

from portal.api.problems import ApiProblem, problem_response
from portal.db import is_outage
from portal.fhir import outcome as fhir_outcome
from portal.templating import render

log = logging.getLogger("portal.unavailable")

RETRY_AFTER_SECONDS = 30
DETAIL = "The database is unreachable for the moment; retry after the Retry-After delay."
# Registered as exception handlers in portal.app; `handle` sorts outages from bugs.
HANDLED: tuple[type[Exception], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError)


async def handle(request: Request, exc: Exception) -> Response:
    if not is_outage(exc):
        # Re-raised, it reaches the 500 handler (and the traceback the log), as if unhandled.
        raise exc
    # One line without request data (a path's first segment, the driver's error class).
    cause = getattr(exc, "orig", None) or exc
    section = request.url.path.split("/")[1]
    log.warning("database unavailable on %s /%s: %s", request.method, section, type(cause).__name__)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    path = request.url.path
    if path.startswith("/api/"):
        return problem_response(ApiProblem(503, "Service Unavailable", DETAIL, headers=headers))
    if fhir_outcome.is_fhir_path(path):
        error = fhir_outcome.FhirError(503, DETAIL, code="transient", headers=headers)
        return fhir_outcome.error_response(error)
    return render(request, "errors/unavailable.html", {}, status_code=503, headers=headers)
