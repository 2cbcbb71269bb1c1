"""API keys for EHR systems: issued once, stored hashed, scoped, revocable, audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from helpers import make_staff, post_form, staff_sign_in
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from portal import cli as cli_module
from portal.api import keys
from portal.api.auth import authenticate
from portal.app import create_app
from portal.audit import Actor, AuditEvent, RequestMeta
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.runtime import Runtime, runtime
from portal.settings import Settings

KEY_RE = re.compile(r"^pk_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$")


async def _export_probe(request: Request) -> Response:
    """A stand-in for an endpoint that needs the export scope."""
    rt = runtime(request)
    key = await run_in_threadpool(authenticate, rt.engine, request, keys.Scope.EXPORT)
    return JSONResponse({"ok": key.name})


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The app, plus a test-only route that needs the export scope."""
    probe = Route("/api/v1/test-export", _export_probe, methods=["GET"])
    app = create_app(settings, extra_routes=[probe])
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client
    app.state.runtime.engine.dispose()


@pytest.fixture
def run(settings: Settings) -> Iterator:  # type: ignore[type-arg]
    cli_module._add_plugin_commands()
    env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_SECRET_KEYS": settings.key_list[0],
        "PORTAL_BASE_URL": settings.base_url,
        "PORTAL_SMTP_PORT": str(settings.smtp_port),
    }

    def invoke(*args: str) -> Result:
        open_runtime.cache_clear()
        return CliRunner().invoke(cli_module.cli, list(args), env=env)

    yield invoke
    open_runtime.cache_clear()


def _rt(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


def _new_key(
    rt: Runtime, name: str = "Acme EHR", scopes: tuple[str, ...] = ("clients:read",)
) -> str:
    with transaction(rt.engine) as db:
        _, secret = keys.create(
            db,
            name=name,
            scopes=scopes,
            actor=Actor("cli", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    return secret


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_cli_add_prints_a_working_key_last(run, api: TestClient) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "api-key", "add", "Acme EHR", "--scope", "clients:read", "--scope", "contacts:read"
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert KEY_RE.match(key)
    response = api.get("/api/v1/whoami", headers=_bearer(key))
    assert response.status_code == 200
    assert response.json() == {"name": "Acme EHR", "scopes": ["clients:read", "contacts:read"]}
    # The default scope, and the list shows both keys without their secrets.
    default = run("api-key", "add", "Other")
    other = default.output.strip().splitlines()[-1]
    assert api.get("/api/v1/whoami", headers=_bearer(other)).json()["scopes"] == ["clients:read"]
    listed = run("api-key", "list")
    assert "Acme EHR" in listed.output and "Other" in listed.output
    assert key not in listed.output and "last used" in listed.output


def test_cli_refuses_bad_input(run, api: TestClient) -> None:  # type: ignore[no-untyped-def]
    assert run("api-key", "add", "X", "--scope", "write:all").exit_code != 0
    assert run("api-key", "add", "<b>x</b>").exit_code != 0
    assert run("api-key", "add", "x" * 10_000).exit_code != 0
    assert run("api-key", "add", "Dup").exit_code == 0
    duplicate = run("api-key", "add", "Dup")
    assert duplicate.exit_code != 0 and "exists already" in duplicate.output
    missing = run("api-key", "revoke", "Nobody")
    assert missing.exit_code != 0 and "No API key" in missing.output


def test_cli_revoke_stops_the_key(run, api: TestClient) -> None:  # type: ignore[no-untyped-def]
    key = run("api-key", "add", "Acme EHR").output.strip().splitlines()[-1]
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 200
    result = run("api-key", "revoke", "Acme EHR")
    assert result.exit_code == 0, result.output
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 401
    assert "revoked" in run("api-key", "list").output


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer garbage",
        "Bearer pk_abcdefgh_" + "A" * 43,
        "Bearer " + "x" * 10_000,
        "Bearer <script>alert(1)</script>",
    ],
)
def test_missing_or_bad_keys_get_401_problems(api: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and body["detail"]
    assert body["type"] == "about:blank"


def test_a_wrong_secret_with_a_real_public_id_is_refused(api: TestClient) -> None:
    key = _new_key(_rt(api))
    forged = key[: len("pk_12345678_")] + ("A" if key[-1] != "A" else "B") * 43
    assert api.get("/api/v1/whoami", headers=_bearer(forged)).status_code == 401


def test_whoami_is_audited_with_the_key_name_and_no_secret(api: TestClient) -> None:
    rt = _rt(api)
    key = _new_key(rt)
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 200
    events = _events(rt, "api.whoami")
    assert [e.actor for e in events] == ["api:Acme EHR"]
    with transaction(rt.engine) as db:
        everything = db.exec(select(AuditEvent)).all()
        assert all(key not in str(e.model_dump()) for e in everything)
        stored = db.exec(select(keys.ApiKey)).one()
        assert key not in str(stored.model_dump())
        assert stored.key_hash == keys.hash_key(key) and stored.last_used_at is not None


def test_missing_scope_is_403(api: TestClient) -> None:
    rt = _rt(api)
    reader = _new_key(rt, "Reader", ("clients:read",))
    exporter = _new_key(rt, "Exporter", ("clients:read", "export"))
    refused = api.get("/api/v1/test-export", headers=_bearer(reader))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "export" in refused.json()["detail"]
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert [e.actor for e in _events(rt, "api.forbidden")] == ["api:Reader"]
    allowed = api.get("/api/v1/test-export", headers=_bearer(exporter))
    assert allowed.status_code == 200 and allowed.json() == {"ok": "Exporter"}


def test_last_used_is_written_at_most_once_a_minute(api: TestClient) -> None:
    rt = _rt(api)
    key = _new_key(rt)

    def stored() -> keys.ApiKey:
        with transaction(rt.engine, read_only=True) as db:
            found = keys.verify(db, key)
        assert found is not None
        return found

    assert stored().last_used_at is None
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 200
    first = stored().last_used_at
    assert first is not None
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 200
    assert stored().last_used_at == first  # a read-only check: no write for every call
    assert not keys.use_is_due(stored(), first + timedelta(seconds=30))
    assert keys.use_is_due(stored(), first + keys.LAST_USED_EVERY)


def test_only_admins_manage_keys(api: TestClient) -> None:
    rt = _rt(api)
    assert api.get("/staff/admin/api-keys").status_code == 303  # to sign-in
    staff_sign_in(api, make_staff(rt, "front_desk"))
    assert api.get("/staff/admin/api-keys").status_code == 403
    refused = post_form(api, "/staff/admin/api-keys", {"name": "X", "scope": "export"})
    assert refused.status_code == 403
    post_form(api, "/staff/logout", {})
    staff_sign_in(api, make_staff(rt, "therapist"))
    assert api.get("/staff/admin/api-keys").status_code == 403
    with transaction(rt.engine) as db:
        assert db.exec(select(keys.ApiKey)).first() is None


def test_admin_creates_a_key_shown_once_and_revokes_it(api: TestClient) -> None:
    rt = _rt(api)
    staff_sign_in(api, make_staff(rt, "admin"))
    empty = api.get("/staff/admin/api-keys")
    assert empty.status_code == 200 and "No API keys yet" in empty.text
    created = post_form(
        api, "/staff/admin/api-keys", {"name": "Acme EHR", "scope": ["clients:read", "export"]}
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    assert "shown only once" in created.text
    match = re.search(r'value="(pk_[a-z0-9]{8}_[A-Za-z0-9_-]{43})"', created.text)
    assert match
    key = match.group(1)
    with transaction(rt.engine) as db:
        row = db.exec(select(keys.ApiKey)).one()
        assert row.scopes == ["clients:read", "export"]
        assert row.key_hash == keys.hash_key(key) and key not in str(row.model_dump())
    assert [e.action for e in _events(rt, "api_key.created")] == ["api_key.created"]
    # Never again: the list shows the name and the public part only.
    listing = api.get("/staff/admin/api-keys")
    assert "Acme EHR" in listing.text and key not in listing.text
    assert f"pk_{row.public_id}_" in listing.text
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 200
    revoked = post_form(api, f"/staff/admin/api-keys/{row.id}/revoke", {})
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("done=revoked")
    assert api.get("/api/v1/whoami", headers=_bearer(key)).status_code == 401
    assert "Revoked" in api.get("/staff/admin/api-keys").text
    again = post_form(api, f"/staff/admin/api-keys/{row.id}/revoke", {})
    assert again.headers["location"].endswith("done=already")
    assert post_form(api, "/staff/admin/api-keys/nope/revoke", {}).status_code == 404
    assert len(_events(rt, "api_key.revoked")) == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"scope": "clients:read"}, "name"),
        ({"name": "x" * 10_000, "scope": "clients:read"}, "name"),
        ({"name": "<b>Acme</b>", "scope": "clients:read"}, "name"),
        ({"name": "Acme"}, "scope"),
        ({"name": "Acme", "scope": "admin:all"}, "scope"),
    ],
)
def test_admin_form_refuses_bad_input(api: TestClient, data: dict[str, str], field: str) -> None:
    rt = _rt(api)
    staff_sign_in(api, make_staff(rt, "admin"))
    response = post_form(api, "/staff/admin/api-keys", data)
    assert response.status_code == 422
    assert 'id="err-' + field + '"' in response.text and 'aria-invalid="true"' in response.text
    assert "<b>Acme</b>" not in response.text
    with transaction(rt.engine) as db:
        assert db.exec(select(keys.ApiKey)).first() is None


def test_admin_form_refuses_a_duplicate_name(api: TestClient) -> None:
    rt = _rt(api)
    _new_key(rt)
    staff_sign_in(api, make_staff(rt, "admin"))
    response = post_form(api, "/staff/admin/api-keys", {"name": "Acme EHR", "scope": "export"})
    assert response.status_code == 422 and "exists already" in response.text
