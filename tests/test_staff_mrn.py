"""Staff set the EHR's record number on the client page; mistakes re-render with the entry kept."""

from __future__ import annotations

from helpers import hidden, make_staff, onboard, publish_default, staff_sign_in
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction
from portal.models import Client
from portal.runtime import Runtime


def _post(client: TestClient, enrollment_id: str, value: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/staff/clients/{enrollment_id}").text
    return client.post(
        f"/staff/clients/{enrollment_id}/mrn",
        data={"mrn": value, "csrf_token": hidden(page, "csrf_token")},
    )


def test_front_desk_sets_changes_and_clears_the_record_number(
    rt: Runtime, client: TestClient
) -> None:
    publish_default(rt)
    first = onboard(rt, "Jordan Avery", "jordan@example.com")
    second = onboard(rt, "Casey Lim", "casey@example.com")
    staff_sign_in(client, make_staff(rt, "front_desk"))

    response = _post(client, first.id, " MRN-77 ")
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "Record number saved." in page and "MRN-77" in page

    taken = _post(client, second.id, "MRN-77")
    assert taken.status_code == 422
    assert "Another client already has this record number" in taken.text
    assert 'value="MRN-77"' in taken.text  # the entry is kept next to the error

    bad = _post(client, second.id, "no spaces allowed")
    assert bad.status_code == 422 and "letters, digits" in bad.text
    assert 'value="no spaces allowed"' in bad.text

    cleared = _post(client, first.id, "")
    assert "Record number removed." in client.get(cleared.headers["location"]).text
    with transaction(rt.engine, read_only=True) as db:
        assert db.get(Client, first.client_id).mrn is None  # type: ignore[union-attr]
        actions = [e.action for e in db.exec(select(AuditEvent))]
    assert "client.mrn_set" in actions and "client.mrn_cleared" in actions


def test_an_unknown_client_is_not_found(rt: Runtime, client: TestClient) -> None:
    publish_default(rt)
    enrollment = onboard(rt)
    page_owner = make_staff(rt, "front_desk")
    staff_sign_in(client, page_owner)
    token = hidden(client.get(f"/staff/clients/{enrollment.id}").text, "csrf_token")
    response = client.post(
        "/staff/clients/0123456789abcdef0123456789abcdef/mrn",
        data={"mrn": "X1", "csrf_token": token},
    )
    assert response.status_code == 404
