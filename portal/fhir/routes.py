"""The /fhir/r4 endpoints: metadata, Patient and Consent read and search.

Add `*fhir_routes.routes` to the app's routes, `FhirError: handle_fhir_error` to its exception
handlers, and answer unmatched /fhir paths with `outcome.unmatched`. Each request: negotiate
(JSON only), parse the parameters strictly, authenticate, read in one read-only transaction,
then leave one audit event naming the key, the resource type and the count.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portal import audit
from portal.api.auth import api_meta
from portal.api.keys import ApiKey, Scope
from portal.audit import Actor
from portal.db import transaction
from portal.fhir import PREFIX, consent_search, params, patient_search, resources
from portal.fhir.access import authorize, require_scope
from portal.fhir.capability import capability_statement
from portal.fhir.dates import window
from portal.fhir.negotiation import require_json
from portal.fhir.outcome import FhirError, fhir_response
from portal.fhir.paging import CURSOR, base_url, decode, encode, searchset
from portal.models import Client
from portal.runtime import Runtime, runtime


class FhirIdConvertor(Convertor[str]):
    """Only FHIR ids match a resource route, so `Patient/$export` reaches the bulk routes."""

    regex = r"[A-Za-z0-9\-.]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhir_id", FhirIdConvertor())


async def metadata(request: Request) -> Response:
    """The CapabilityStatement. No key needed: FHIR clients read it before anything else."""
    require_json(request)
    params.check_names(request.query_params, params.COMMON)
    rt = runtime(request)
    return fhir_response(capability_statement(base_url(request), rt.settings.ehr_mrn_system))


async def search_patients(request: Request) -> Response:
    rt, query = runtime(request), request.query_params
    require_json(request)
    params.check_names(query, {"identifier", "_id", "_lastUpdated", *params.PAGING, *params.COMMON})
    criteria = patient_search.PatientQuery(
        identifiers=params.tokens(query, "identifier"),
        ids=params.ids(query, "_id"),
        last_updated=window(query),
    )
    count = params.count(query)
    after = decode(query[CURSOR], "Patient", 1)[0] if CURSOR in query else None
    key = await rt.in_db_thread(partial(authorize, rt.engine, request, Scope.CLIENTS_READ))

    def work() -> tuple[list[dict[str, Any]], str | None]:
        with transaction(rt.engine, read_only=True) as db:
            found, last = patient_search.search(rt, db, criteria, key.scopes, after, count)
        _audit_search(rt, request, key, "Patient", len(found))
        return found, last

    found, last = await rt.in_db_thread(work)
    cursor = encode("Patient", last) if last else None
    return fhir_response(searchset(request, "Patient", found, cursor))


async def read_patient(request: Request) -> Response:
    rt, resource_id = runtime(request), request.path_params["id"]
    require_json(request)
    params.check_names(request.query_params, params.COMMON)
    key = await rt.in_db_thread(partial(authorize, rt.engine, request, Scope.CLIENTS_READ))

    def work() -> dict[str, Any] | None:
        with transaction(rt.engine, read_only=True) as db:
            client = db.get(Client, resource_id)
            patient = resources.patients(rt, db, [client], key.scopes)[0] if client else None
        _audit_read(rt, request, key, "Patient", resource_id if patient else None)
        return patient

    patient = await rt.in_db_thread(work)
    if patient is None:
        raise FhirError(404, f"No Patient has the id {resource_id!r}.")
    return fhir_response(patient)


async def search_consents(request: Request) -> Response:
    rt, query = runtime(request), request.query_params
    require_json(request)
    allowed = {"patient", "status", "category", "_lastUpdated", *params.PAGING, *params.COMMON}
    params.check_names(query, allowed)
    criteria = consent_search.ConsentQuery(
        patients=params.references(query, "patient", "Patient", base_url(request)),
        statuses=params.codes(query, "status", consent_search.STATUSES),
        categories=params.tokens(query, "category"),
        last_updated=window(query),
    )
    count = params.count(query)
    after = decode(query[CURSOR], "Consent", 2) if CURSOR in query else None
    key = await rt.in_db_thread(partial(authorize, rt.engine, request, Scope.CLIENTS_READ))

    def work() -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        with transaction(rt.engine, read_only=True) as db:
            position = (after[0], after[1]) if after else None
            found, last = consent_search.search(rt, db, criteria, key.scopes, position, count)
        _audit_search(rt, request, key, "Consent", len(found))
        return found, last

    found, last = await rt.in_db_thread(work)
    cursor = encode("Consent", *last) if last else None
    return fhir_response(searchset(request, "Consent", found, cursor))


async def read_consent(request: Request) -> Response:
    rt, resource_id = runtime(request), request.path_params["id"]
    require_json(request)
    params.check_names(request.query_params, params.COMMON)
    key = await rt.in_db_thread(partial(authorize, rt.engine, request, Scope.CLIENTS_READ))
    not_found = FhirError(404, f"No Consent has the id {resource_id!r}.")
    # The id's prefix names the section that made it ("ack-12"); the longest prefix wins.
    owners = sorted(
        (s for s in rt.api_sections if s.fhir.consent_prefix and s.fhir.consent_owner),
        key=lambda s: len(s.fhir.consent_prefix),
        reverse=True,
    )
    section = next((s for s in owners if resource_id.startswith(s.fhir.consent_prefix + "-")), None)
    if section is None or section.fhir.consent_owner is None:
        await rt.in_db_thread(partial(_audit_read, rt, request, key, "Consent", None))
        raise not_found
    if section.scope != Scope.CLIENTS_READ:
        await rt.in_db_thread(partial(require_scope, rt.engine, request, key, section.scope))
    owner_of = section.fhir.consent_owner
    row_id = resource_id.removeprefix(section.fhir.consent_prefix + "-")

    def work() -> tuple[str, dict[str, Any]] | None:
        consent = None
        with transaction(rt.engine, read_only=True) as db:
            client_id = owner_of(db, row_id)
            client = db.get(Client, client_id) if client_id else None
            if client is not None:
                mine = resources.consents_by_client(rt, db, [client], key.scopes)[client.id]
                consent = next((c for c in mine if c["id"] == resource_id), None)
        found = (client.id, consent) if client is not None and consent is not None else None
        _audit_read(rt, request, key, "Consent", found[0] if found else None, resource_id)
        return found

    found = await rt.in_db_thread(work)
    if found is None:
        raise not_found
    return fhir_response(found[1])


def _audit_search(rt: Runtime, request: Request, key: ApiKey, resource_type: str, n: int) -> None:
    # Parameter names only: values may be record numbers or ids.
    names = sorted(set(request.query_params.keys()))
    audit.record_alone(
        rt.engine, Actor("api", key.name), "fhir.search", "api_key", key.id, api_meta(request),
        resource_type=resource_type, count=n, parameters=names,
    )  # fmt: skip


def _audit_read(
    rt: Runtime,
    request: Request,
    key: ApiKey,
    resource_type: str,
    client_id: str | None,
    resource_id: str | None = None,
) -> None:
    """A read names the client it showed; a miss names only the key (the id asked for could
    be anything the caller typed)."""
    detail: dict[str, Any] = {"resource_type": resource_type, "count": 1 if client_id else 0}
    if client_id and resource_id:
        detail["resource_id"] = resource_id
    subject = ("client", client_id) if client_id else ("api_key", key.id)
    audit.record_alone(
        rt.engine, Actor("api", key.name), "fhir.read", *subject, api_meta(request), **detail
    )


routes: list[BaseRoute] = [
    Route(f"{PREFIX}/metadata", metadata, methods=["GET"]),
    Route(f"{PREFIX}/Patient", search_patients, methods=["GET"]),
    Route(f"{PREFIX}/Patient/{{id:fhir_id}}", read_patient, methods=["GET"]),
    Route(f"{PREFIX}/Consent", search_consents, methods=["GET"]),
    Route(f"{PREFIX}/Consent/{{id:fhir_id}}", read_consent, methods=["GET"]),
]
