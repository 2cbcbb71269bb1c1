"""Which key is calling /fhir/r4 and what it may read: the API's keys, FHIR's error form."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.requests import Request

from portal.api.auth import authenticate, insufficient_scope, record_forbidden
from portal.api.keys import ApiKey, Scope
from portal.api.problems import ApiProblem
from portal.db import transaction
from portal.fhir.outcome import FhirError


def authorize(engine: Engine, request: Request, scope: Scope) -> ApiKey:
    """The live key calling, holding `scope`; else FhirError 401 / 403 (429 passes through)."""
    try:
        return authenticate(engine, request, scope)
    except ApiProblem as problem:
        raise FhirError.from_problem(problem) from None


def require_scope(engine: Engine, request: Request, key: ApiKey, scope: str) -> None:
    """A second scope some resources need (contact preferences: contacts:read). Refusals are
    audited like authenticate's own."""
    if scope in key.scopes:
        return
    with transaction(engine) as db:
        record_forbidden(db, key, request, scope)
    raise FhirError(
        403,
        f"This API key lacks the scope {scope!r}, which this resource needs.",
        headers={"WWW-Authenticate": insufficient_scope(scope)},
    )
