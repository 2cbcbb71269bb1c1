"""/api/v1/clients: list (keyset), one client, lookup by the EHR's record number, set it."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal import audit, changes, identifiers
from portal.api import params
from portal.api.auth import api_meta, authenticate
from portal.api.keys import Scope
from portal.api.problems import ApiProblem
from portal.api.records import client_records
from portal.audit import Actor
from portal.db import transaction
from portal.models import Client
from portal.rows import as_model, core_rows, every_column
from portal.runtime import runtime

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_BODY = 4096
# Built once (every read runs it); read as a Core row, like the records it is answered with.
_BY_ID = every_column(Client).where(col(Client.id) == bindparam("id"))


def _not_found() -> ApiProblem:
    return ApiProblem(404, "Not Found", "No client has this id.")


def _encode_after(client_id: str) -> str:
    return base64.urlsafe_b64encode(client_id.encode()).decode().rstrip("=")


def _decode_after(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = ""
    if not _ID_RE.match(raw):
        raise params.bad_request("'after' is not a cursor this API returned.")
    return raw


def _mrn_param(raw: str) -> str:
    """The record number to look up, held to the rules for setting one: a value no client can
    have is a mistake worth naming (and PostgreSQL refuses NUL bytes in a query)."""
    try:
        mrn = identifiers.clean_mrn(raw)
    except identifiers.InvalidMrn as exc:
        raise params.bad_request(f"'mrn': {exc}") from exc
    if mrn is None:
        raise params.bad_request("'mrn' is empty: give the record number to look up.")
    return mrn


async def list_clients(request: Request) -> Response:
    """A page of clients in a stable order; `next_cursor` continues after the last one."""
    rt = runtime(request)
    query = request.query_params
    params.only(query, {"limit", "after", "mrn", "history"})
    limit = params.limit(query)
    after = _decode_after(query["after"]) if "after" in query else None
    mrn = _mrn_param(query["mrn"]) if "mrn" in query else None
    history = params.boolean(query, "history")
    meta = api_meta(request)

    def work() -> dict[str, Any]:
        with transaction(rt.engine, read_only=True) as db:
            key = authenticate(rt.engine, request, Scope.CLIENTS_READ, db)
            # Read first: a sync that starts from here misses nothing committed before the page.
            sync_cursor = changes.head(db).encode()
            statement = every_column(Client).order_by(col(Client.id)).limit(limit + 1)
            if after is not None:
                statement = statement.where(col(Client.id) > after)
            if mrn is not None:
                statement = statement.where(col(Client.mrn) == mrn)
            clients = [as_model(Client, row) for row in core_rows(db, statement)]
            more = len(clients) > limit
            clients = clients[:limit]
            data = client_records(rt, db, clients, key.scopes, history=history)
        audit.record_alone(
            rt.engine, Actor("api", key.name), "api.clients_listed", "api_key", key.id, meta,
            count=len(data), by_mrn=mrn is not None, history=history,
        )  # fmt: skip
        return {
            "data": data,
            "next_cursor": _encode_after(clients[-1].id) if more else None,
            "sync_cursor": sync_cursor,
        }

    return JSONResponse(await rt.in_db_thread(work))


async def get_client(request: Request) -> Response:
    rt = runtime(request)
    query = request.query_params
    params.only(query, {"history"})
    history = params.boolean(query, "history")
    client_id = request.path_params["client_id"]
    meta = api_meta(request)

    def work() -> dict[str, Any]:
        # Authentication, the read and its audit event in one trip to a database thread.
        with transaction(rt.engine, read_only=True) as db:
            key = authenticate(rt.engine, request, Scope.CLIENTS_READ, db)
            client = None
            if _ID_RE.match(client_id):
                row = core_rows(db, _BY_ID, id=client_id).first()
                client = as_model(Client, row) if row is not None else None
            found = client_records(rt, db, [client], key.scopes, history=history) if client else []
        if not found:
            # A miss names only the key: the id asked for could be anything the caller typed.
            audit.record_alone(
                rt.engine, Actor("api", key.name), "api.client_read", "api_key", key.id, meta,
                count=0,
            )  # fmt: skip
            raise _not_found()
        record = found[0]
        audit.record_alone(
            rt.engine, Actor("api", key.name), "api.client_read", "client", client_id, meta,
            history=history,
        )  # fmt: skip
        return record

    return JSONResponse(await rt.in_db_thread(work))


async def put_mrn(request: Request) -> Response:
    """Set (or clear, with null) the EHR's record number on a client."""
    rt = runtime(request)
    params.only(request.query_params, set())
    client_id = request.path_params["client_id"]
    key = await rt.in_db_thread(lambda: authenticate(rt.engine, request, Scope.IDENTIFIERS_WRITE))
    body = await _json_object(request)
    if set(body) != {"mrn"}:
        raise ApiProblem(422, "Unprocessable Content", 'The body must be {"mrn": "..."} only.')
    meta = api_meta(request)

    def work() -> dict[str, Any]:
        with transaction(rt.engine) as db:
            client = db.get(Client, client_id) if _ID_RE.match(client_id) else None
            if client is None:
                raise _not_found()
            try:
                identifiers.set_mrn(
                    db, client, body["mrn"], actor=Actor("api", key.name), meta=meta
                )
            except identifiers.InvalidMrn as exc:
                raise ApiProblem(422, "Unprocessable Content", str(exc)) from exc
            except identifiers.MrnTaken as exc:
                raise ApiProblem(
                    409, "Conflict", "Another client already has this record number."
                ) from exc
            return {"id": client.id, "mrn": client.mrn}

    return JSONResponse(await rt.in_db_thread(work))


async def _json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiProblem(415, "Unsupported Media Type", "Send the body as application/json.")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(413, "Content Too Large", f"The body may be at most {MAX_BODY} bytes.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "Bad Request", "The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiProblem(422, "Unprocessable Content", "The body must be a JSON object.")
    return body
