"""Calling /fhir/r4 in tests: authenticated GETs and walking a search to its last page."""

from __future__ import annotations

from typing import Any

from fhir_validation import validate
from httpx2 import Response
from starlette.testclient import TestClient

FHIR_JSON = "application/fhir+json; charset=utf-8"


def fhir_get(client: TestClient, url: str, key: str | None, **headers: str) -> Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.get(url, headers=headers)


def outcome_of(response: Response, status: int) -> dict[str, Any]:
    """The OperationOutcome of an error response, checked: status, media type, validity."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    validate(body)
    return body


def diagnostics(response: Response, status: int) -> str:
    return str(outcome_of(response, status)["issue"][0]["diagnostics"])


def all_pages(
    client: TestClient, url: str, key: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every resource a search returns, following next links; and the Bundles seen."""
    resources: list[dict[str, Any]] = []
    bundles: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = fhir_get(client, next_url, key)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == FHIR_JSON
        bundle = response.json()
        validate(bundle)
        assert bundle["type"] == "searchset"
        bundles.append(bundle)
        for entry in bundle.get("entry", []):
            assert entry["search"] == {"mode": "match"}
            resource = entry["resource"]
            assert entry["fullUrl"] == (
                f"http://testserver/fhir/r4/{resource['resourceType']}/{resource['id']}"
            )
            resources.append(resource)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith("http://testserver/fhir/r4/")
        next_url = links.get("next")
        assert len(bundles) < 200, "the search never ends"
    return resources, bundles
