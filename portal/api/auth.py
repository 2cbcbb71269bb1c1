"""Bearer authentication for /api/v1: which key is calling, and may it do this."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from portal import audit
from portal.api.keys import ApiKey, Scope, record_use, use_is_due, verify
from portal.api.problems import ApiProblem
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portal-api"'}
# Longer than any key we issue; refuses huge headers before hashing them.
MAX_HEADER = 200


def _unauthorized(detail: str, error: str | None = None) -> ApiProblem:
    challenge = CHALLENGE["WWW-Authenticate"]
    if error:
        challenge += f', error="{error}"'
    return ApiProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def bearer_token(request: Request) -> str:
    """The key sent as `Authorization: Bearer KEY`, or ApiProblem 401."""
    header = request.headers.get("authorization", "")
    if not header:
        raise _unauthorized("Send your API key as 'Authorization: Bearer KEY'.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(header) > MAX_HEADER or " " in token:
        raise _unauthorized(
            "The Authorization header must be 'Bearer KEY', with one key.", "invalid_request"
        )
    return token


def authenticate(
    engine: Engine, request: Request, scope: Scope | None, reading: Session | None = None
) -> ApiKey:
    """The live key calling, allowed `scope` (None: any key). Raises ApiProblem 401 / 403.

    The key is looked up in `reading` (the caller's read-only transaction, which its request
    reads on with) or else a read-only transaction of its own. Writes run in short
    transactions of their own, so last_used_at and the audit event of a refused scope are
    stored even though the call then fails."""
    token = bearer_token(request)
    # Most calls only read: a write transaction (which SQLite serialises) is opened only to
    # record the key's use, at most once a minute, or a refused scope.
    if reading is not None:
        key = verify(reading, token)
    else:
        with transaction(engine, read_only=True) as db:
            key = verify(db, token)
    allowed = key is not None and (scope is None or scope.value in key.scopes)
    now = utcnow()
    if key is not None and (not allowed or use_is_due(key, now)):
        with transaction(engine) as db:
            if use_is_due(key, now):
                record_use(db, key, now)
            if not allowed:
                record_forbidden(db, key, request, scope.value if scope else "")
    if key is None:
        raise _unauthorized("This API key is unknown or has been revoked.", "invalid_token")
    if not allowed and scope is not None:
        raise ApiProblem(
            403,
            "Forbidden",
            f"This API key lacks the scope {scope.value!r}.",
            headers={"WWW-Authenticate": insufficient_scope(scope.value)},
        )
    return key


def insufficient_scope(scope: str) -> str:
    """The WWW-Authenticate challenge of a 403 for a missing scope (RFC 6750)."""
    return f'{CHALLENGE["WWW-Authenticate"]}, error="insufficient_scope", scope="{scope}"'


def record_forbidden(db: Session, key: ApiKey, request: Request, scope: str) -> None:
    """The audit event of a refused scope (stored even though the request then fails)."""
    audit.record(
        db,
        Actor("api", key.name),
        "api.forbidden",
        "api_key",
        key.id,
        api_meta(request),
        path=request.url.path[:200],
        scope=scope,
    )


def api_meta(request: Request) -> RequestMeta:
    """Who called, for the audit trail: address and user agent (never the key)."""
    return RequestMeta(
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:300],
    )
