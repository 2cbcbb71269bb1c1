"""GET /fhir/r4/metadata, content negotiation and the facade's answers to unknown paths."""

from __future__ import annotations

from fhir_http import FHIR_JSON, diagnostics, fhir_get, outcome_of
from fhir_validation import validate
from helpers import api_key
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.settings import Settings


def test_capability_statement_tells_the_truth(client: TestClient) -> None:
    response = fhir_get(client, "/fhir/r4/metadata", None)
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    statement = response.json()
    validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["format"] == ["json"]
    assert statement["implementation"]["url"] == "http://testserver/fhir/r4"
    assert statement["software"]["name"] == "therapy-intake-portal"
    (rest,) = statement["rest"]
    assert rest["mode"] == "server"
    assert "Bearer" in rest["security"]["description"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"Patient", "Consent"}
    for resource in resources.values():
        assert [i["code"] for i in resource["interaction"]] == ["read", "search-type"]
    params = {t: [p["name"] for p in r["searchParam"]] for t, r in resources.items()}
    assert params["Patient"] == ["identifier", "_id", "_lastUpdated", "_count", "_cursor"]
    assert params["Consent"] == [
        "patient",
        "status",
        "category",
        "_lastUpdated",
        "_count",
        "_cursor",
    ]
    assert "urn:intake-portal:mrn" in resources["Patient"]["searchParam"][0]["documentation"]
    assert rest["operation"] == [
        {
            "name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        }
    ]
    assert resources["Patient"]["operation"][0]["definition"].endswith("/patient-export")


def test_json_is_the_only_format(client: TestClient) -> None:
    for fmt in ("json", "application/fhir%2Bjson", "application/fhir+json", "application/json"):
        assert fhir_get(client, f"/fhir/r4/metadata?_format={fmt}", None).status_code == 200
    for accept in ("application/fhir+json", "application/json, text/html", "*/*", ""):
        response = fhir_get(client, "/fhir/r4/metadata", None, Accept=accept)
        assert response.status_code == 200, accept
    for fmt in ("xml", "application/fhir+xml", "ttl", "html"):
        outcome_of(fhir_get(client, f"/fhir/r4/metadata?_format={fmt}", None), 406)
    for accept in ("application/fhir+xml", "text/xml, application/xml", "application/json;q=0"):
        outcome_of(fhir_get(client, "/fhir/r4/metadata", None, Accept=accept), 406)
    # _format overrides Accept, as in FHIR.
    response = fhir_get(
        client, "/fhir/r4/metadata?_format=json", None, Accept="application/fhir+xml"
    )
    assert response.status_code == 200


def test_unknown_parameter_is_named(client: TestClient) -> None:
    detail = diagnostics(fhir_get(client, "/fhir/r4/metadata?mode=full", None), 400)
    assert "'mode'" in detail


def test_unknown_paths_and_methods_answer_in_fhir(client: TestClient) -> None:
    for path in ("/fhir/r4/Observation", "/fhir/r4/Patient/a/b", "/fhir/r4/", "/fhir/r5/x"):
        assert "metadata" in diagnostics(fhir_get(client, path, None), 404)
    response = client.post("/fhir/r4/Patient", json={"resourceType": "Patient"})
    assert "read-only" in diagnostics(response, 405)
    assert "GET" in response.headers["allow"]
    outcome_of(client.delete("/fhir/r4/metadata"), 405)


def test_server_error_is_an_operation_outcome(settings: Settings) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = create_app(settings, extra_routes=[Route("/fhir/r4/boom", boom)])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        outcome = outcome_of(test_client.get("/fhir/r4/boom"), 500)
    assert outcome["issue"][0]["code"] == "exception"
    app.state.runtime.engine.dispose()


def test_rate_limit_passes_through_as_an_operation_outcome(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_rate_per_minute": 2}))
    key = api_key(app.state.runtime, "clients:read")
    with TestClient(app) as test_client:
        statuses = [fhir_get(test_client, "/fhir/r4/Patient", key).status_code for _ in range(2)]
        throttled = fhir_get(test_client, "/fhir/r4/Patient", key)
        # metadata needs no key and is never throttled
        assert fhir_get(test_client, "/fhir/r4/metadata", None).status_code == 200
    assert statuses == [200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"].isdigit()
    body = throttled.json()
    validate(body)
    assert body["issue"][0]["code"] == "throttled"
    app.state.runtime.engine.dispose()
