"""Headers, CSRF and size limits on every response and every state-changing route."""

from __future__ import annotations

from starlette.routing import Route
from starlette.testclient import TestClient

from portal.middleware.access_log import redact_path
from portal.runtime import Runtime


def test_security_headers_on_pages(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # only behind https


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    for path in ["/", "/policy", "/link", "/nope"]:
        text = client.get(path).text
        assert "<script>" not in text and " style=" not in text and "onclick" not in text


def test_every_state_changing_route_requires_a_csrf_token(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    posts = [
        route.path
        for route in app.routes
        if isinstance(route, Route) and route.methods and "POST" in route.methods
    ]
    assert "/onboarding/{key:str}" in posts
    for path in posts:
        url = path.replace("{key:str}", "policy").replace("{token:str}", "abc")
        url = url.replace("{code:str}", "abc").replace("{version:int}", "1")
        response = client.post(url, data={"anything": "1"})
        assert response.status_code == 403, f"{path} accepted a POST without a CSRF token"


def test_no_get_route_is_refused_for_lack_of_a_token(client: TestClient) -> None:
    assert client.get("/link").status_code == 200


def test_oversized_body_is_refused(client: TestClient, rt: Runtime) -> None:
    client.get("/")
    token = client.cookies["portal_csrf"]
    body = {"csrf_token": token, "email": "x" * (rt.settings.max_form_bytes + 10)}
    response = client.post("/link", data=body)
    assert response.status_code == 413


def test_friendly_not_found_page(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "couldn't find that page" in response.text


def test_access_log_masks_credentials_in_paths() -> None:
    assert redact_path("/i/eyJpIjoiYWJj.token") == "/i/***"
    assert redact_path("/r/abc") == "/r/***"
    assert redact_path("/testimonial/withdraw/secret") == "/testimonial/withdraw/***"
    assert redact_path("/onboarding/contact") == "/onboarding/contact"


def test_multipart_forms_carry_the_token_too(client: TestClient) -> None:
    client.get("/")
    token = client.cookies["portal_csrf"]
    files = {"scan": ("scan.pdf", b"%PDF-1.4 test", "application/pdf")}
    refused = client.post("/link", data={"email": "a@example.com"}, files=files)
    assert refused.status_code == 403
    accepted = client.post(
        "/link", data={"email": "a@example.com", "csrf_token": token}, files=files
    )
    assert accepted.status_code != 403
