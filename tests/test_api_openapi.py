"""/api/v1/openapi.json and /api/v1/docs: a valid OpenAPI 3.1 document that matches the routes
and the real responses (each status, body and header), and its page for people."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from helpers import api_key, make_staff, onboard, publish_default, staff_sign_in
from markupsafe import escape as html_escape
from openapi_validation import (
    check,
    documented_statuses,
    references,
    resolve,
    schema_objects,
    validator,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31
from sqlmodel import select
from starlette.routing import Route
from starlette.testclient import TestClient

from portal.api import openapi
from portal.api.schemas import section_components
from portal.api.sections import ApiSection
from portal.app import create_app
from portal.db import transaction
from portal.models import Client, Enrollment
from portal.runtime import Runtime
from portal.settings import Settings
from portal.staff.models import StaffAccount


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_document_is_valid_openapi_3_1(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    # The OpenAPI Initiative's own schema for 3.1 documents (as bundled by schemathesis).
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert not errors, errors[:3]
    assert doc["openapi"] == "3.1.0"
    for where, schema in schema_objects(doc):
        assert jsonschema_rs.meta.is_valid(schema), f"{where} is not a valid JSON Schema"
    for target in references(doc):
        assert target.startswith("#/components/"), target
        resolve(doc, {"$ref": target})  # raises KeyError when it points at nothing
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for item in doc["paths"].values():
        for op in item.values():
            needs = op.get("x-required-scope")
            if op["security"]:
                assert op["security"] == [{"bearerAuth": [needs] if needs else []}]
                assert "401" in op["responses"] and "429" in op["responses"]
            if needs:
                assert f"`{needs}`" in op["description"] and "403" in op["responses"]


def test_every_api_route_is_documented_and_nothing_else(app: Any, client: TestClient) -> None:
    routed = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/v1/")
        for method in route.methods or ()
        if method != "HEAD"  # Starlette answers HEAD for every GET route
    }
    doc = client.get("/api/v1/openapi.json").json()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routed == documented


def test_plugin_sections_are_components_with_their_definitions_alongside() -> None:
    section = ApiSection(
        key="sms_rules",
        title="Texting rules",
        scope="contacts:read",
        schema={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"rules": {"type": "array", "items": {"$ref": "#/$defs/Rule"}}},
            "required": ["rules"],
            "$defs": {"Rule": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Rule"}}}},
        },
        load=lambda db, refs, history: {},
    )
    found = section_components(section)
    assert set(found) == {"SmsRulesSection", "SmsRulesSectionRule"}
    rule = "#/components/schemas/SmsRulesSectionRule"
    assert found["SmsRulesSection"]["properties"]["rules"]["items"] == {"$ref": rule}
    assert found["SmsRulesSectionRule"]["properties"]["next"] == {"$ref": rule}
    assert "$schema" not in found["SmsRulesSection"]
    rules = validator(
        {"components": {"schemas": found}}, {"$ref": "#/components/schemas/SmsRulesSection"}
    )
    assert rules.is_valid({"rules": [{"next": {}}]})
    assert not rules.is_valid({"rules": [{"next": 5}]})


def _new_client(rt: Runtime) -> str:
    with transaction(rt.engine) as db:
        row = Client(full_name="Walk In", email="walkin@example.com")  # no journey at all
        db.add(row)
        db.flush()
        return row.id


def _seed(rt: Runtime) -> list[str]:
    """Clients in every state a record can be in; their ids, the fully onboarded one first."""
    publish_default(rt)
    full = onboard(rt, "Jordan Avery", "jordan@example.com")
    partial = onboard(rt, "Sam Lee", "sam@example.com", steps=1)
    invited = onboard(rt, "Kim Park", "kim@example.com", steps=0)
    therapist_email = make_staff(rt, "therapist", name="Dr. Rivera")
    with transaction(rt.engine) as db:
        therapist = db.exec(select(StaffAccount).where(StaffAccount.email == therapist_email))
        enrollment = db.get(Enrollment, full.id)
        assert enrollment is not None
        enrollment.therapist_id = therapist.one().id
        db.add(enrollment)
    return [full.client_id, partial.client_id, invited.client_id, _new_client(rt)]


def _calls(client: TestClient, keys: dict[str, str], ids: list[str]) -> list[Any]:
    """A request for each documented (operation, status) but 429, and then some."""
    full, reader, writer, other = keys["full"], keys["reader"], keys["writer"], keys["other"]
    unknown = "pk_abcdefgh_" + "x" * 43
    responses = [client.get("/api/v1/openapi.json"), client.get("/api/v1/docs")]
    for headers in [{}, {"Authorization": "Basic abc"}, bearer(unknown), bearer(full)]:
        responses.append(client.get("/api/v1/whoami", headers=headers))
    responses += [
        client.get(url, headers=bearer(key))
        for key in (full, reader)
        for url in [
            "/api/v1/clients",
            "/api/v1/clients?history=true",
            "/api/v1/clients?limit=1",
            *(f"/api/v1/clients/{i}?history={h}" for i in ids for h in ("true", "false")),
            "/api/v1/changes",
            "/api/v1/changes?limit=1",
            "/api/v1/changes?since=2020-01-01T00:00:00Z",
        ]
    ]
    page = client.get("/api/v1/clients?limit=1", headers=bearer(full)).json()
    responses += [
        client.get(f"/api/v1/clients?limit=1&after={page['next_cursor']}", headers=bearer(full)),
        client.get(f"/api/v1/changes?after={page['sync_cursor']}", headers=bearer(full)),
    ]
    for url in ["/api/v1/clients", f"/api/v1/clients/{ids[0]}", "/api/v1/changes"]:
        responses += [
            client.get(url, headers=bearer(unknown)),
            client.get(url, headers=bearer(writer)),
            client.get(url + "?colour=blue", headers=bearer(full)),
        ]
    responses.append(client.get(f"/api/v1/clients/{'0' * 32}", headers=bearer(full)))
    mrn = f"/api/v1/clients/{ids[0]}/mrn"
    as_json = {**bearer(writer), "Content-Type": "application/json"}
    responses += [
        client.put(mrn, json={"mrn": "MRN-001"}, headers=bearer(writer)),
        client.get("/api/v1/clients?mrn=MRN-001", headers=bearer(full)),
        client.put(mrn.replace(ids[0], ids[1]), json={"mrn": "MRN-001"}, headers=bearer(writer)),
        client.put(mrn, json={"mrn": "no spaces"}, headers=bearer(writer)),
        client.put(mrn, json={"other": 1}, headers=bearer(writer)),
        client.put(mrn, content=b"{", headers=as_json),
        client.put(mrn, content=b"x", headers={**bearer(writer), "Content-Type": "text/plain"}),
        client.put(mrn, json={"mrn": "x" * 5000}, headers=bearer(writer)),
        client.put(f"/api/v1/clients/{'0' * 32}/mrn", json={"mrn": None}, headers=bearer(writer)),
        client.put(mrn, json={"mrn": None}, headers=bearer(other)),
        client.put(mrn, json={"mrn": None}, headers={}),
        client.put(mrn + "?x=1", json={"mrn": None}, headers=bearer(writer)),
        client.put(mrn, json={"mrn": None}, headers=bearer(writer)),
    ]  # fmt: skip
    return responses


def test_real_responses_match_the_document_status_by_status(
    rt: Runtime, client: TestClient, settings: Settings
) -> None:
    ids = _seed(rt)
    keys = {
        "full": api_key(rt),
        "reader": api_key(rt, "clients:read", name="Reader"),
        "writer": api_key(rt, "identifiers:write", name="Writer"),
        "other": api_key(rt, "export", name="Other"),
    }
    doc = client.get("/api/v1/openapi.json").json()
    responses = _calls(client, keys, ids)

    # A budget of one request a minute: after the first call, every operation answers 429.
    throttled_app = create_app(settings.model_copy(update={"api_rate_per_minute": 1}))
    with TestClient(throttled_app) as throttled:
        throttled.get("/api/v1/whoami", headers=bearer(keys["full"]))
        for path, item in doc["paths"].items():
            url = path.replace("{client_id}", ids[0])
            for method in item:
                responses.append(throttled.request(method, url, headers=bearer(keys["full"])))
    throttled_app.state.runtime.engine.dispose()

    # The database away: every operation that needs a key answers 503 (nothing is written).
    away = settings.model_copy(
        update={
            "database_url": "postgresql://portal@127.0.0.1:9/unreachable",
            "check_schema": False,
        }
    )
    unreachable_app = create_app(away)
    with TestClient(unreachable_app) as unreachable:
        for path, item in doc["paths"].items():
            url = path.replace("{client_id}", ids[0])
            for method, op in item.items():
                if op["security"]:
                    answer = unreachable.request(method, url, headers=bearer(keys["full"]))
                    assert answer.status_code == 503, (method, path)
                    responses.append(answer)
    unreachable_app.state.runtime.engine.dispose()

    seen = {check(doc, response) for response in responses}
    assert seen == documented_statuses(doc)  # every documented answer happens, and no other
    record = client.get(f"/api/v1/clients/{ids[0]}?history=true", headers=bearer(keys["full"]))
    assert record.json()["enrollment"]["therapist"]["name"] == "Dr. Rivera"
    assert all(record.json()[s.key] is not None for s in rt.api_sections)  # all were checked


def test_the_document_states_the_parameter_rules_the_handlers_enforce(
    rt: Runtime, client: TestClient
) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    key = api_key(rt)
    listing = doc["paths"]["/api/v1/clients"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")["schema"]
    feed = doc["paths"]["/api/v1/changes"]["get"]
    feed_limit = next(p for p in feed["parameters"] if p["name"] == "limit")["schema"]
    for url, schema in [("/api/v1/clients", limit), ("/api/v1/changes", feed_limit)]:
        low, high = schema["minimum"], schema["maximum"]
        for value, ok in [(low, True), (high, True), (low - 1, False), (high + 1, False)]:
            status = client.get(f"{url}?limit={value}", headers=bearer(key)).status_code
            assert (status == 200) is ok, (url, value, status)
    body = validator(doc, doc["components"]["schemas"]["MrnBody"])
    client_id = _new_client(rt)
    for mrn in ["A-1", "x" * 64, "x" * 65, "-lead", "has space", "", None, "ok:/._-9"]:
        status = client.put(
            f"/api/v1/clients/{client_id}/mrn", json={"mrn": mrn}, headers=bearer(key)
        ).status_code
        # The handler also takes "" (clears, like null): more lenient than the schema, never less.
        assert status == (200 if body.is_valid({"mrn": mrn}) or mrn == "" else 422), mrn


def test_the_docs_page_lists_every_operation_with_a_curl_example(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert f"<code>{method.upper()} {path}</code>" in html
            assert f'id="{op["operationId"]}"' in html
            for parameter in op.get("parameters", []):
                assert f"<code>{parameter['name']}</code>" in html
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    example = 'curl -H "Authorization: Bearer $KEY" "http://testserver/api/v1/clients?limit=50"'
    assert html_escape(example) in html
    assert "-X PUT" in html and "clients:read" in html and "Retry-After" in html
    # The CSP allows no inline script or style.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "style=" not in html


def test_the_document_is_built_from_the_app_s_plugins(rt: Runtime) -> None:
    doc = openapi.build(rt)
    client_schema = doc["components"]["schemas"]["Client"]
    for section in rt.api_sections:
        assert section.key in client_schema["properties"]
        assert section.key not in client_schema["required"]  # absent without the scope
    steps = client_schema["properties"]["steps"]["items"]["properties"]["key"]["enum"]
    assert steps == [step.key for step in rt.wizard.steps]


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_the_documentation_needs_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_the_admin_api_keys_page_links_to_the_documentation(
    rt: Runtime, client: TestClient
) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    page = client.get("/staff/admin/api-keys")
    assert page.status_code == 200
    assert 'href="/api/v1/docs"' in page.text and 'href="/api/v1/openapi.json"' in page.text
