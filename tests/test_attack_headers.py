"""Security headers on every response (each GET route, errors, static files, the data APIs),
cookie flags over http and https, and no session fixation."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from attack_routes import World, build_world, endpoints
from helpers import STAFF_PASSWORD, make_staff, publish_default
from httpx2 import Response
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from portal import invitations
from portal.app import create_app
from portal.db import transaction
from portal.models import Enrollment
from portal.runtime import Runtime
from portal.settings import Settings

HTTPS = "https://portal.example"
YEAR = 31_536_000


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


def app_for(settings: Settings, base_url: str) -> Starlette:
    """Another app on the same database, with a route that fails, as a bug would."""
    changed = settings.model_copy(update={"base_url": base_url})
    paths = ["/boom", "/api/v1/boom", "/fhir/r4/boom"]
    return create_app(changed, extra_routes=[Route(path, boom) for path in paths])


def assert_security_headers(response: Response, *, https: bool, where: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = {}
    for part in csp.split(";"):
        name, *values = part.split()
        directives[name] = values
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("script-src") == ["'self'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    if https:
        hsts = headers.get("strict-transport-security", "")
        assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= YEAR, where
    else:
        assert "strict-transport-security" not in headers, where


@pytest.fixture
def world(app: Starlette, rt: Runtime) -> Iterator[World]:
    yield from build_world(app, rt)


def test_every_get_route_and_error_carries_the_headers(
    app: Starlette, rt: Runtime, world: World
) -> None:
    browser = world.browser  # signed in as staff and as a client: real pages, not redirects
    key = {"authorization": f"Bearer {world.bearer}", "accept": "application/fhir+json"}
    statuses = set()
    for endpoint in endpoints(app):
        if "GET" in endpoint.methods:
            url = world.url(endpoint.path)
            response = browser.get(url, headers=key if endpoint.is_data_api else {})
            assert_security_headers(response, https=False, where=f"GET {url}")
            statuses.add(response.status_code)
    token = browser.cookies["portal_csrf"]
    errors = {
        "page 404": browser.get("/no/such/page"),
        "page 405": browser.post("/policy", data={"csrf_token": token}),
        "static 404": browser.get("/static/nope.css"),
        "api 404": browser.get("/api/v1/nope", headers=key),
        "api 405": browser.post("/api/v1/clients", headers=key),
        "api 401": browser.get("/api/v1/clients"),
        "fhir 404": browser.get("/fhir/r4/Nope", headers=key),
        "fhir 401": browser.get("/fhir/r4/Patient"),
        "csrf 403": browser.post("/link", data={"email": "a@example.com"}),
        "body 413": browser.post("/link", data={"csrf_token": token, "x": "y" * 300_000}),
    }
    for where, response in errors.items():
        assert_security_headers(response, https=False, where=where)
        statuses.add(response.status_code)
    assert {200, 202, 303, 401, 403, 404, 405, 413} <= statuses
    failing = app_for(rt.settings, "http://testserver")
    kinds = {
        "/boom": "text/html",
        "/api/v1/boom": "application/problem+json",
        "/fhir/r4/boom": "application/fhir+json",
    }
    with TestClient(failing, raise_server_exceptions=False) as other:
        for path, kind in kinds.items():
            crashed = other.get(path, headers=key)
            assert crashed.status_code == 500 and "Traceback" not in crashed.text, path
            assert crashed.headers["content-type"].startswith(kind), path
            assert_security_headers(crashed, https=False, where=f"500 {path}")
    failing.state.runtime.engine.dispose()


def test_hsts_exactly_behind_https(app: Starlette, rt: Runtime, world: World) -> None:
    secure = app_for(rt.settings, HTTPS)
    with TestClient(
        secure, base_url=HTTPS, follow_redirects=False, raise_server_exceptions=False
    ) as browser:
        for endpoint in endpoints(secure):
            if "GET" in endpoint.methods:
                url = world.url(endpoint.path)
                assert_security_headers(browser.get(url), https=True, where=f"GET {url}")
        for url in ["/boom", "/no/such/page", "/static/portal.css", "/api/v1/nope"]:
            assert_security_headers(browser.get(url), https=True, where=url)
    secure.state.runtime.engine.dispose()


def set_cookies(response: Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie by name: its attributes, lower-cased names, value under 'value'."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            parsed[key.lower()] = val
        found[name] = parsed
    return found


@pytest.mark.parametrize("base_url", ["http://testserver", HTTPS])
def test_cookie_flags(app: Starlette, rt: Runtime, base_url: str) -> None:
    https = base_url.startswith("https")
    publish_default(rt)
    email = make_staff(rt)
    from helpers import invite

    _, link = invite(rt)
    served = app_for(rt.settings, base_url)
    cookies: dict[str, dict[str, str]] = {}
    with TestClient(served, base_url=base_url, follow_redirects=False) as browser:
        cookies |= set_cookies(browser.get("/"))
        csrf_name = "__Host-portal_csrf" if https else "portal_csrf"
        token = browser.cookies[csrf_name]
        signed_in = browser.post(
            "/staff/login", data={"csrf_token": token, "email": email, "password": STAFF_PASSWORD}
        )
        assert signed_in.status_code == 303
        cookies |= set_cookies(signed_in)
        path = link.removeprefix("http://testserver").removeprefix(HTTPS)
        opened = browser.post(path, data={"csrf_token": token})
        assert opened.status_code == 303
        cookies |= set_cookies(opened)
    served.state.runtime.engine.dispose()
    expected_samesite = {
        csrf_name: "lax",
        "portal_client": "lax",
        "portal_staff": "strict",
        "portal_staff_device": "strict",
    }
    assert expected_samesite.keys() <= cookies.keys(), cookies.keys()
    for name, samesite in expected_samesite.items():
        cookie = cookies[name]
        assert "httponly" in cookie, name
        assert cookie.get("samesite", "").lower() == samesite, name
        assert ("secure" in cookie) is https, name
        assert cookie.get("path") == "/" and "domain" not in cookie, name
        assert len(cookie["value"]) >= 40, name  # unguessable


def test_client_session_fixation(client: TestClient, rt: Runtime, app: Starlette) -> None:
    from helpers import invite, open_link, start_journey

    publish_default(rt)
    start_journey(client, rt, name="Sam Okafor", email="sam@example.com")
    earlier = client.cookies["portal_client"]  # someone else's real session (a shared device)
    planted = secrets.token_urlsafe(32)  # or one an attacker planted
    jordan, invitation = invite(rt, name="Jordan Rivers", email="jordan@example.com")
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, jordan.id)
        assert row is not None
        resume = invitations.resume_link(rt.services, row)
    for brought, link in [(planted, invitation), (earlier, resume)]:
        assert client_works(app, brought) is (brought == earlier)
        plant(client, "portal_client", brought)
        assert open_link(client, link).status_code == 303
        fresh = client.cookies["portal_client"]
        assert fresh not in {planted, earlier}
        assert client_works(app, fresh)
        assert not client_works(app, brought), "a session from before the link still works"


def plant(browser: TestClient, name: str, value: str) -> None:
    """Put a cookie in the browser's jar as if the site had set it (replacing its own)."""
    browser.cookies.delete(name)
    browser.cookies.set(name, value, domain="testserver.local")


def client_works(app: Starlette, session: str) -> bool:
    with TestClient(app, follow_redirects=False) as other:
        other.cookies.set("portal_client", session)
        return other.get("/onboarding/policy").status_code == 200


def test_staff_session_fixation(client: TestClient, rt: Runtime, app: Starlette) -> None:
    from helpers import staff_sign_in

    therapist = make_staff(rt, "therapist", name="Lee Moreno")
    admin = make_staff(rt, "admin", name="Dana Whitfield")
    planted = secrets.token_urlsafe(32)
    plant(client, "portal_staff", planted)
    assert staff_sign_in(client, therapist).status_code == 303
    first = client.cookies["portal_staff"]
    assert first != planted and not staff_works(app, planted)
    # Signing in again (another account, same browser): the earlier key ends.
    assert staff_sign_in(client, admin).status_code == 303
    second = client.cookies["portal_staff"]
    assert second != first
    assert staff_works(app, second) and not staff_works(app, first)


def staff_works(app: Starlette, session: str) -> bool:
    with TestClient(app, follow_redirects=False) as other:
        other.cookies.set("portal_staff", session)
        return other.get("/staff/").status_code == 200
