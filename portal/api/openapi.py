"""The OpenAPI 3.1 document of /api/v1, built from code at start-up, never a static file.

Each operation below says what its handler in portal/api/ accepts and answers, error by error;
the plugins' sections of a client come from `rt.api_sections`. tests/test_api_openapi.py checks
that every /api/v1 route is here (and nothing else), and holds real responses against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.api import feed, params, schemas
from portal.api.keys import SCOPE_LABELS, Scope
from portal.api.schemas import PROBLEM_MEDIA_TYPE, Schema, ref
from portal.runtime import Runtime, runtime

PREFIX = "/api/v1"
SECURITY_SCHEME = "bearerAuth"


@dataclass(frozen=True)
class ErrorKind:
    name: str  # the component name under components.responses
    description: str
    headers: tuple[tuple[str, Schema], ...] = ()


_CHALLENGE = 'Bearer realm="portal-api"'
ERRORS: dict[int, ErrorKind] = {
    400: ErrorKind(
        "BadRequest",
        "A query parameter is unknown, repeated or malformed, or the body is not JSON; "
        "`detail` names the problem.",
    ),
    401: ErrorKind(
        "Unauthorized",
        "No key, a malformed Authorization header, or a key that is unknown or revoked.",
        (("WWW-Authenticate", {"type": "string", "pattern": f"^{_CHALLENGE}"}),),
    ),
    403: ErrorKind(
        "Forbidden",
        "The key is valid but lacks the scope this operation needs.",
        (("WWW-Authenticate", {"type": "string", "pattern": 'error="insufficient_scope"'}),),
    ),
    404: ErrorKind("NotFound", "No client has this id."),
    409: ErrorKind("Conflict", "Another client already has this record number."),
    413: ErrorKind("ContentTooLarge", "The body is larger than 4096 bytes."),
    415: ErrorKind("UnsupportedMediaType", "The body is not sent as application/json."),
    422: ErrorKind(
        "UnprocessableContent",
        'The body is JSON but not {"mrn": ...}, or the record number is not valid.',
    ),
    429: ErrorKind(
        "TooManyRequests",
        "This key (or, without a key, this address) is over its request budget; retry after "
        "the given number of seconds.",
        (("Retry-After", {"type": "integer", "minimum": 1}),),
    ),
    503: ErrorKind(
        "ServiceUnavailable",
        "The portal's database is unreachable for the moment; retry after the given number of "
        "seconds. Nothing was changed.",
        (("Retry-After", {"type": "integer", "minimum": 1}),),
    ),
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    scope: Scope | None  # with `auth`: None means any live key
    ok: Schema  # the 200 response object
    errors: tuple[int, ...]
    auth: bool = True
    parameters: tuple[Schema, ...] = ()
    body: Schema | None = None


def _query(name: str, schema: Schema, description: str, example: Any = None) -> Schema:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    parameter["description"] = description
    if example is not None:
        parameter["example"] = example
    return parameter


def _limit(default: int, maximum: int) -> Schema:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return _query("limit", schema, f"Page size, 1 to {maximum}.", default)


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


HISTORY = _query(
    "history",
    {"type": "boolean", "default": False},
    "Include each section's earlier revisions (`true`/`false`; `1`/`0` also work).",
)
CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": schemas.CLIENT_ID}
READ_ERRORS = (400, 401, 403, 429)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", f"{PREFIX}/whoami", "whoami", "Keys", "Which key is calling",
        "The key's name and scopes: the first call an integration makes.",
        None, _json(ref("WhoAmI"), "The calling key."), (401, 429),
    ),
    Operation(
        "get", f"{PREFIX}/clients", "listClients", "Clients", "List clients",
        "Clients in a stable order (by id), a page at a time: follow `next_cursor` until it "
        "is null. With `mrn`, the client with that record number (or none).",
        Scope.CLIENTS_READ, _json(ref("ClientList"), "A page of clients."), READ_ERRORS,
        parameters=(
            _limit(params.DEFAULT_LIMIT, params.MAX_LIMIT),
            _query("after", schemas.CURSOR, "The `next_cursor` of the previous page."),
            _query("mrn", schemas.MRN, "Only the client with this record number."),
            HISTORY,
        ),
    ),
    Operation(
        "get", f"{PREFIX}/clients/{{client_id}}", "getClient", "Clients", "One client",
        "One client's record: status per onboarding step and the sections the key's scopes "
        "allow.",
        Scope.CLIENTS_READ, _json(ref("Client"), "The client."), (*READ_ERRORS, 404),
        parameters=(CLIENT_ID, HISTORY),
    ),
    Operation(
        "put", f"{PREFIX}/clients/{{client_id}}/mrn", "setClientMrn", "Clients",
        "Set the EHR's record number",
        "Give the client the EHR's medical record number, or clear it with null. Record "
        "numbers are unique across clients.",
        Scope.IDENTIFIERS_WRITE, _json(ref("MrnResult"), "The number now stored."),
        (400, 401, 403, 404, 409, 413, 415, 422, 429),
        parameters=(CLIENT_ID,),
        body={
            "required": True,
            "content": {
                "application/json": {"schema": ref("MrnBody"), "example": {"mrn": "MRN-001"}}
            },
        },
    ),
    Operation(
        "get", f"{PREFIX}/changes", "listChanges", "Sync", "The change feed",
        "Which clients changed, in commit-safe order. Start with `after=<sync_cursor>` of a "
        "listing (or `since`), then poll with each answer's `next_cursor`: no change is ever "
        "skipped, even when writes commit out of order. `since` may repeat a few entries.",
        Scope.CLIENTS_READ, _json(ref("ChangeFeed"), "Changes after the cursor."), READ_ERRORS,
        parameters=(
            _query("after", schemas.CURSOR, "A `next_cursor` or `sync_cursor` from this API."),
            _query(
                "since", schemas.DATE_TIME,
                "Start at changes stamped at or after this instant (with a time zone). Not "
                "with `after`.", "2026-11-01T09:00:00Z",
            ),
            _limit(feed.DEFAULT_LIMIT, feed.MAX_LIMIT),
        ),
    ),
    Operation(
        "get", f"{PREFIX}/openapi.json", "openapi", "Documentation", "This document",
        "The OpenAPI 3.1 description of this API.",
        None, _json({"type": "object", "required": ["openapi", "info", "paths"]}, "OpenAPI"),
        (429,), auth=False,
    ),
    Operation(
        "get", f"{PREFIX}/docs", "docs", "Documentation", "This API's documentation page",
        "The same description as a page for people.",
        None,
        {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
        (429,), auth=False,
    ),
)  # fmt: skip


def _error_response(kind: ErrorKind, status: int) -> Schema:
    problem = {"allOf": [ref("Problem")], "properties": {"status": {"const": status}}}
    response: Schema = {
        "description": kind.description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": problem}},
    }
    if kind.headers:
        response["headers"] = {
            name: {"required": True, "schema": schema} for name, schema in kind.headers
        }
    return response


def _operation(op: Operation) -> Schema:
    description = op.description
    doc: Schema = {"operationId": op.operation_id, "tags": [op.tag], "summary": op.summary}
    if op.auth:
        needs = f"the scope `{op.scope}`" if op.scope else "any live key"
        description += f"\n\nNeeds {needs}."
        doc["security"] = [{SECURITY_SCHEME: [op.scope.value] if op.scope else []}]
        if op.scope:
            doc["x-required-scope"] = op.scope.value
    else:
        doc["security"] = []
    doc["description"] = description
    if op.parameters:
        doc["parameters"] = list(op.parameters)
    if op.body:
        doc["requestBody"] = op.body
    responses: Schema = {"200": op.ok}
    # Every operation that needs a key reads the database first, so it can find it away.
    for status in (*op.errors, 503) if op.auth else op.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status].name}"}
    doc["responses"] = responses
    return doc


INTRO = """\
Clients of the practice with their onboarding status, contact rules, acknowledgements and
consents, for EHR systems.

Send an API key as `Authorization: Bearer KEY` (an admin creates keys in the staff pages or
with `portal api-key add`). Each operation names the scope it needs; sections of a client that
need another scope are left out for keys without it. Every call is recorded in the audit trail
under the key's name.

Errors are `application/problem+json` (RFC 9457) with a precise status: 400 for a malformed or
unknown query parameter, 401 without a valid key, 403 without the scope, 404, 409, 413, 415,
422, 429 with `Retry-After` when a key goes over its request budget, and 503 with `Retry-After`
while the database is unreachable. A method a path does not support answers 405 with `Allow`.

Lists are keyset-paginated: follow `next_cursor`, and the last page costs what the first does.
For incremental sync, poll `/api/v1/changes` with a cursor."""


def build(rt: Runtime) -> Schema:
    """The whole document for this app's plugins."""
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    scopes = "\n".join(f"- `{scope.value}`: {SCOPE_LABELS[scope]}" for scope in Scope)
    step_keys = [step.key for step in rt.wizard.steps]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Intake portal API", "version": "1", "description": INTRO},
        "tags": [
            {"name": "Clients", "description": "Clients and their records."},
            {"name": "Sync", "description": "Incremental sync: what changed since a cursor."},
            {"name": "Keys", "description": "The calling API key."},
            {"name": "Documentation", "description": "This description."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas.components(step_keys, rt.api_sections),
            "responses": {kind.name: _error_response(kind, s) for s, kind in ERRORS.items()},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "pk_<8 characters>_<secret>",
                    "description": f"An API key. Scopes:\n\n{scopes}",
                }
            },
        },
    }


def document(request: Request) -> Schema:
    """The document, built once per app (plugins are fixed at start-up)."""
    state = request.app.state
    if getattr(state, "openapi_document", None) is None:
        state.openapi_document = build(runtime(request))
    built: Schema = state.openapi_document
    return built


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document(request))
