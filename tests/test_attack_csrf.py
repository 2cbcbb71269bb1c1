"""CSRF on every state-changing route, cookies never standing in for an API key, and no GET
that writes. The routes come from the app (see attack_routes), so a new one cannot be missed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import cast

import pytest
from attack_routes import UNSAFE, World, build_world, changed_tables, endpoints, snapshot
from helpers import csrf_token
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.runtime import Runtime
from portal.settings import Settings

# Tables a GET may write, each with the reason. Anything else changing on a GET is a bug.
GET_MAY_WRITE = {
    "audit_event": "viewing a client's records (staff page, API, export) is itself audited",
    "audit_chain_head": "the audit log's hash chain moves on with each audit event",
    "staff_session": "a staff session's last-seen time is touched (at most once a minute)",
    "export_job": "FHIR Bulk Data defines the $export kick-off as a GET; it needs an API key",
}
# Data-API routes that answer without a key: the API's own description.
PUBLIC_DATA_ROUTES = {"/api/v1/openapi.json", "/api/v1/docs", "/fhir/r4/metadata"}


@pytest.fixture
def world(app: Starlette, rt: Runtime) -> Iterator[World]:
    yield from build_world(app, rt)


def test_every_state_changing_route_refuses_a_missing_or_forged_token(
    app: Starlette, rt: Runtime, world: World
) -> None:
    browser = world.browser
    real = csrf_token(browser)
    forged = secrets.token_urlsafe(32)
    checked = []
    for endpoint in endpoints(app):
        if endpoint.is_data_api:
            continue
        for method in sorted(endpoint.methods & UNSAFE):
            url = world.url(endpoint.path)
            attempts = {
                "no token": {"data": {"note": "x"}},
                "forged field": {"data": {"csrf_token": forged, "note": "x"}},
                "forged header": {"data": {"note": "x"}, "headers": {"x-csrf-token": forged}},
            }
            for label, kwargs in attempts.items():
                before = snapshot(rt)
                response = browser.request(method, url, **kwargs)  # type: ignore[arg-type]
                assert response.status_code == 403, f"{method} {url} ({label})"
                assert "has expired or was sent from somewhere else" in response.text
                assert changed_tables(before, snapshot(rt)) == set(), f"{method} {url} wrote"
            checked.append(f"{method} {endpoint.path}")
    # The sweep reached the host's, the staff side's and the plugins' forms.
    assert {
        "POST /onboarding/{key:str}",
        "POST /staff/login",
        "POST /staff/clients/{enrollment_id:str}/countersign",
        "POST /testimonial/withdraw/{code:str}",
        "POST /staff/admin/webhooks/{endpoint_id:str}/rotate",
    } <= set(checked)
    # Control: the same browser, with its real token, does change state: the sessions and
    # sample values above are live, so the refusals were the token's doing.
    before = snapshot(rt)
    url = world.url("/staff/clients/{enrollment_id:str}/mrn")
    assert browser.post(url, data={"csrf_token": real, "mrn": "MRN-7731"}).status_code == 303
    assert "client" in changed_tables(before, snapshot(rt))


def test_data_api_never_takes_a_cookie_session_for_a_key(
    app: Starlette, rt: Runtime, world: World
) -> None:
    browser = world.browser  # signed in as an admin and as a client, with a CSRF token
    token = csrf_token(browser)
    seen = set()
    for endpoint in endpoints(app):
        if not endpoint.is_data_api:
            continue
        url = world.url(endpoint.path)
        for method in sorted(endpoint.methods - {"HEAD"}):
            before = snapshot(rt)
            response = browser.request(
                method,
                url,
                headers={"x-csrf-token": token, "accept": "application/fhir+json"},
                json={"mrn": "MRN-1"} if method == "PUT" else None,
            )
            if endpoint.path in PUBLIC_DATA_ROUTES:
                assert response.status_code == 200, f"{method} {url}"
            else:
                assert response.status_code == 401, f"{method} {url} took a cookie session"
                assert "www-authenticate" in response.headers
            assert changed_tables(before, snapshot(rt)) <= {"audit_event"}
            seen.add(f"{method} {endpoint.path}")
    assert {
        "PUT /api/v1/clients/{client_id}/mrn",
        "DELETE /fhir/r4/$export-status/{job_id}",
    } <= seen


def test_no_get_changes_state(app: Starlette, rt: Runtime, world: World) -> None:
    browser = world.browser
    fhir = {"authorization": f"Bearer {world.bearer}", "accept": "application/fhir+json"}
    wrote: dict[str, set[str]] = {}
    for endpoint in endpoints(app):
        if "GET" not in endpoint.methods:
            continue
        url = world.url(endpoint.path)
        headers = {"authorization": f"Bearer {world.bearer}"} if endpoint.is_data_api else {}
        if endpoint.path.startswith("/fhir/"):
            headers = {**fhir, "prefer": "respond-async"}
        for method in ("GET", "HEAD"):
            before = snapshot(rt)
            response = browser.request(method, url, headers=headers)
            assert response.status_code < 500, f"{method} {url}: {response.status_code}"
            changed = changed_tables(before, snapshot(rt))
            unexpected = changed - GET_MAY_WRITE.keys()
            assert not unexpected, f"{method} {url} wrote to {sorted(unexpected)}"
            if changed:
                wrote[f"{method} {endpoint.path}"] = changed
    # The sweep reached audited views and the export kick-off, with live sessions and a key.
    assert {"audit_event", "export_job"} <= set().union(*wrote.values())
    assert {k for k, v in wrote.items() if "export_job" in v} <= {
        "GET /fhir/r4/$export",
        "GET /fhir/r4/Patient/$export",
        "HEAD /fhir/r4/$export",
        "HEAD /fhir/r4/Patient/$export",
    }


def test_a_new_route_is_swept_and_an_unknown_parameter_stops_the_sweep(
    settings: Settings,
) -> None:
    async def handler(request: Request) -> Response:
        return PlainTextResponse("changed")

    widgets = Mount("/widgets", routes=[Route("/{widget_id:str}", handler, methods=["POST"])])
    app = create_app(settings, extra_routes=[widgets])
    try:
        found = {e.path: e.methods for e in endpoints(app)}
        assert "POST" in found["/widgets/{widget_id:str}"]
        world = World({}, {}, cast(TestClient, None), bearer="", enrollment_id="")
        with pytest.raises(pytest.fail.Exception, match="no sample value for path parameter"):
            world.url("/widgets/{widget_id:str}")
    finally:
        app.state.runtime.engine.dispose()


def test_probes_and_static_files_get_no_token_but_pages_do(client: TestClient) -> None:
    """A token (and its cookie) is made only where a form may be shown: a health probe
    called many times a second, or a stylesheet, needs none; a page does."""
    for path in ("/healthz", "/static/portal.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers, path
        assert response.headers["x-frame-options"] == "DENY"  # security headers all the same
    assert client.cookies.get("portal_csrf") is None
    page = client.get("/")
    assert page.status_code == 200
    assert client.cookies.get("portal_csrf") and "portal_csrf=" in page.headers["set-cookie"]
