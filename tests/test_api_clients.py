"""/api/v1: clients, lookup by record number, the change feed, and their errors."""

from __future__ import annotations

import pytest
from helpers import api_key, onboard, publish_default, settle_change_log
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction
from portal.models import Client
from portal.runtime import Runtime

PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _clients(rt: Runtime, count: int) -> list[str]:
    with transaction(rt.engine) as db:
        rows = [Client(full_name=f"Client {n}", email=f"c{n}@example.com") for n in range(count)]
        db.add_all(rows)
        db.flush()
        return [row.id for row in rows]


def _audit_actions(rt: Runtime) -> list[str]:
    with transaction(rt.engine, read_only=True) as db:
        return [e.action for e in db.exec(select(AuditEvent).order_by(AuditEvent.id))]


def test_one_client_with_status_per_step_and_the_sections_its_scopes_allow(
    rt: Runtime, client: TestClient
) -> None:
    publish_default(rt)
    enrollment = onboard(rt, "Jordan Avery", "jordan@example.com")
    full = api_key(rt)
    response = client.get(f"/api/v1/clients/{enrollment.client_id}", headers=bearer(full))
    assert response.status_code == 200
    record = response.json()
    assert record["id"] == enrollment.client_id
    assert record["name"] == "Jordan Avery"
    assert record["enrollment"]["status"] == "complete"
    assert record["steps"] and all(step["complete"] for step in record["steps"])
    assert {s.key for s in rt.api_sections} <= set(record)

    narrow = api_key(rt, "clients:read", name="Narrow")
    record = client.get(f"/api/v1/clients/{enrollment.client_id}", headers=bearer(narrow)).json()
    hidden = {s.key for s in rt.api_sections if s.scope == "contacts:read"}
    assert not hidden & set(record)  # no contact details without the contacts scope
    assert "api.client_read" in _audit_actions(rt)


def test_listing_pages_to_the_end_with_nothing_missed_or_repeated(
    rt: Runtime, client: TestClient
) -> None:
    ids = _clients(rt, 12)
    key = api_key(rt, "clients:read")
    seen: list[str] = []
    url = "/api/v1/clients?limit=5"
    pages = 0
    while url:
        body = client.get(url, headers=bearer(key)).json()
        seen += [c["id"] for c in body["data"]]
        pages += 1
        url = f"/api/v1/clients?limit=5&after={body['next_cursor']}" if body["next_cursor"] else ""
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_lookup_and_set_the_ehr_record_number(rt: Runtime, client: TestClient) -> None:
    first, second = _clients(rt, 2)
    reader = api_key(rt, "clients:read")
    writer = api_key(rt, "clients:read", "identifiers:write", name="Writer")

    response = client.put(
        f"/api/v1/clients/{first}/mrn", json={"mrn": "MRN-001"}, headers=bearer(reader)
    )
    assert response.status_code == 403

    response = client.put(
        f"/api/v1/clients/{first}/mrn", json={"mrn": "MRN-001"}, headers=bearer(writer)
    )
    assert response.status_code == 200 and response.json() == {"id": first, "mrn": "MRN-001"}
    found = client.get("/api/v1/clients?mrn=MRN-001", headers=bearer(reader)).json()["data"]
    assert [c["id"] for c in found] == [first]

    taken = client.put(
        f"/api/v1/clients/{second}/mrn", json={"mrn": "MRN-001"}, headers=bearer(writer)
    )
    assert taken.status_code == 409 and taken.headers["content-type"] == PROBLEM

    for body, status in [
        ({"mrn": "has space"}, 422),
        ({"mrn": "x" * 65}, 422),
        ({"mrn": 5}, 422),
        ({"other": "x"}, 422),
        (["MRN"], 422),
    ]:
        response = client.put(f"/api/v1/clients/{second}/mrn", json=body, headers=bearer(writer))
        assert response.status_code == status, body
        assert response.json()["detail"]
    response = client.put(
        f"/api/v1/clients/{second}/mrn",
        content=b"{not json",
        headers={**bearer(writer), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    response = client.put(
        f"/api/v1/clients/{second}/mrn",
        content=b"mrn=x",
        headers={**bearer(writer), "Content-Type": "text/plain"},
    )
    assert response.status_code == 415

    cleared = client.put(f"/api/v1/clients/{first}/mrn", json={"mrn": None}, headers=bearer(writer))
    assert cleared.json()["mrn"] is None
    assert client.get("/api/v1/clients?mrn=MRN-001", headers=bearer(reader)).json()["data"] == []
    actions = _audit_actions(rt)
    assert "client.mrn_set" in actions and "client.mrn_cleared" in actions
    with transaction(rt.engine, read_only=True) as db:
        details = [e.detail for e in db.exec(select(AuditEvent))]
    assert "MRN-001" not in repr(details)


def test_the_feed_names_changed_clients_and_a_cursor_resumes_after_them(
    rt: Runtime, client: TestClient
) -> None:
    key = api_key(rt, "clients:read")
    first = _clients(rt, 3)
    settle_change_log(rt)
    body = client.get("/api/v1/changes", headers=bearer(key)).json()
    assert sorted(c["client_id"] for c in body["changes"]) == sorted(first)
    assert body["has_more"] is False
    cursor = body["next_cursor"]
    again = client.get(f"/api/v1/changes?after={cursor}", headers=bearer(key)).json()
    assert again["changes"] == [] and again["next_cursor"] == cursor

    writer = api_key(rt, "identifiers:write", name="Writer")
    client.put(f"/api/v1/clients/{first[1]}/mrn", json={"mrn": "A-1"}, headers=bearer(writer))
    settle_change_log(rt)
    later = client.get(f"/api/v1/changes?after={cursor}", headers=bearer(key)).json()
    assert [(c["client_id"], c["records"]) for c in later["changes"]] == [(first[1], ["client"])]

    paged = client.get("/api/v1/changes?limit=2", headers=bearer(key)).json()
    assert len(paged["changes"]) == 2 and paged["has_more"] is True


def test_a_sync_started_from_the_listing_cursor_misses_nothing(
    rt: Runtime, client: TestClient
) -> None:
    _clients(rt, 2)
    settle_change_log(rt)
    key = api_key(rt, "clients:read")
    listing = client.get("/api/v1/clients", headers=bearer(key)).json()
    (new,) = _clients(rt, 1)
    settle_change_log(rt)
    feed = client.get(f"/api/v1/changes?after={listing['sync_cursor']}", headers=bearer(key)).json()
    assert [c["client_id"] for c in feed["changes"]] == [new]


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/clients?limit=0", 400),
        ("/api/v1/clients?limit=501", 400),
        ("/api/v1/clients?limit=ten", 400),
        ("/api/v1/clients?after=garbage", 400),
        ("/api/v1/clients?colour=blue", 400),
        ("/api/v1/clients?limit=1&limit=2", 400),
        ("/api/v1/clients?history=maybe", 400),
        ("/api/v1/clients/0123456789abcdef0123456789abcdef", 404),
        ("/api/v1/clients/not-an-id", 404),
        ("/api/v1/changes?after=garbage", 400),
        ("/api/v1/changes?since=yesterday", 400),
        ("/api/v1/changes?since=2026-01-01T00:00:00", 400),
        ("/api/v1/changes?after=MC4w&since=2026-01-01T00:00:00Z", 400),
        ("/api/v1/nothing-here", 404),
    ],
)
def test_bad_requests_get_a_precise_problem(
    rt: Runtime, client: TestClient, url: str, status: int
) -> None:
    key = api_key(rt)
    response = client.get(url, headers=bearer(key))
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status and response.json()["detail"]


def test_wrong_method_and_missing_key(rt: Runtime, client: TestClient) -> None:
    response = client.delete("/api/v1/clients")
    assert response.status_code == 405 and response.headers["content-type"] == PROBLEM
    response = client.get("/api/v1/clients")
    assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]
    response = client.get("/api/v1/changes", headers=bearer("pk_abcdefgh_" + "x" * 43))
    assert response.status_code == 401


def test_asking_for_a_client_who_is_not_there_is_audited_without_the_id(
    rt: Runtime, client: TestClient
) -> None:
    """Every API access leaves an event, a miss too; it names the key, not what was typed."""
    headers = {"Authorization": f"Bearer {api_key(rt)}"}
    asked = "0123456789abcdef0123456789abcdef"
    assert client.get(f"/api/v1/clients/{asked}", headers=headers).status_code == 404
    with transaction(rt.engine) as db:
        event = db.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()  # type: ignore[union-attr]
    assert event is not None and event.action == "api.client_read"
    assert event.subject_type == "api_key" and event.detail == {"count": 0}
    assert asked not in str(event.model_dump())
