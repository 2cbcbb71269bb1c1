"""The admin's webhooks page: add (secret shown once), see failures, retry, rotate, disable."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from datetime import timedelta

import pytest
from helpers import invite, make_staff, post_form, staff_sign_in
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.runtime import Runtime
from portal.webhooks import delivery
from portal.webhooks.models import WebhookEndpoint

PAGE = "/staff/admin/webhooks"
SECRET_IN_PAGE = re.compile(r'value="(whsec_[A-Za-z0-9_-]{43})"')


def _only(rt: Runtime) -> WebhookEndpoint:
    with transaction(rt.engine, read_only=True) as db:
        return db.exec(select(WebhookEndpoint)).one()


def _actions(rt: Runtime) -> list[str]:
    with transaction(rt.engine, read_only=True) as db:
        query = select(AuditEvent.action).where(col(AuditEvent.action).startswith("webhook."))
        return list(db.exec(query.order_by(col(AuditEvent.id))))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_only_admins_manage_webhooks(client: TestClient, rt: Runtime) -> None:
    assert client.get(PAGE).status_code == 303  # to sign-in
    staff_sign_in(client, make_staff(rt, "front_desk"))
    assert client.get(PAGE).status_code == 403
    refused = post_form(client, PAGE, {"url": "https://ehr.example/hook"})
    assert refused.status_code == 403
    with transaction(rt.engine, read_only=True) as db:
        assert db.exec(select(WebhookEndpoint)).all() == []


def test_admin_adds_a_webhook_and_sees_its_secret_once(client: TestClient, rt: Runtime) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    empty = client.get(PAGE)
    assert empty.status_code == 200 and "No webhooks yet" in empty.text
    added = post_form(client, PAGE, {"url": "https://ehr.example/hook", "name": "Acme EHR"})
    assert added.status_code == 200
    assert added.headers["cache-control"] == "no-store"
    match = SECRET_IN_PAGE.search(added.text)
    assert match and "shown only once" in added.text
    row = _only(rt)
    assert row.secret == match.group(1) and row.name == "Acme EHR"
    listing = client.get(PAGE)
    assert "Acme EHR" in listing.text and "https://ehr.example/hook" in listing.text
    assert match.group(1) not in listing.text and "Nothing sent yet" in listing.text
    assert _actions(rt) == ["webhook.created"]
    with transaction(rt.engine, read_only=True) as db:
        event = db.exec(select(AuditEvent).where(AuditEvent.action == "webhook.created")).one()
    assert event.actor.startswith("staff:")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "http://ehr.example/hook"}, "url", "must use https://"),
        ({"url": ""}, "url", "Give the URL"),
        ({"url": "https://u:p@ehr.example/"}, "url", "no user name or password"),
        ({"url": "https://ehr.example/" + "a" * 5000}, "url", "too long"),
        ({"url": "https://ehr.example/hook", "name": "<b>x</b>"}, "name", "letters, digits"),
    ],
)
def test_admin_form_explains_bad_input_next_to_the_field(
    client: TestClient, rt: Runtime, data: dict[str, str], field: str, message: str
) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    response = post_form(client, PAGE, data)
    assert response.status_code == 422
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', response.text, re.S)
    assert message in response.text.replace("&#39;", "'")
    assert SECRET_IN_PAGE.search(response.text) is None


def test_admin_form_refuses_a_taken_name(client: TestClient, rt: Runtime) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    post_form(client, PAGE, {"url": "https://ehr.example/hook", "name": "Acme"})
    again = post_form(client, PAGE, {"url": "https://other.example/hook", "name": "Acme"})
    assert again.status_code == 422 and "exists already" in again.text


def test_admin_sees_a_failing_webhook_and_retries_it(client: TestClient, rt: Runtime) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    post_form(client, PAGE, {"url": f"http://127.0.0.1:{_closed_port()}/hook", "name": "Down"})
    row = _only(rt)
    not_failing = post_form(client, f"{PAGE}/{row.id}/retry", {})
    assert not_failing.headers["location"].endswith("done=not-failing")

    invite(rt)
    start = utcnow()
    deadline = start + timedelta(seconds=30)
    while asyncio.run(delivery.deliver_once(rt.engine, rt.settings, start)) != (0, 1):
        assert utcnow() < deadline, "the change never passed the safe horizon"
        time.sleep(0.05)
    page = client.get(PAGE).text
    assert "Failing since" in page and "ConnectionRefusedError" in page and "Retry now" in page
    assert _only(rt).next_attempt_at > utcnow()

    retried = post_form(client, f"{PAGE}/{row.id}/retry", {})
    assert retried.status_code == 303 and retried.headers["location"].endswith("done=retry")
    assert _only(rt).next_attempt_at <= utcnow()
    assert _only(rt).attempts == 1  # the backoff carries on if it is still down
    assert "webhook.retry_requested" in _actions(rt)


def test_admin_rotates_the_secret_then_disables(client: TestClient, rt: Runtime) -> None:
    staff_sign_in(client, make_staff(rt, "admin"))
    first = SECRET_IN_PAGE.search(post_form(client, PAGE, {"url": "https://ehr.example/hook"}).text)
    assert first
    row = _only(rt)
    assert row.name == "ehr.example"

    rotated = post_form(client, f"{PAGE}/{row.id}/rotate", {})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    second = SECRET_IN_PAGE.search(rotated.text)
    assert second and second.group(1) != first.group(1)
    assert _only(rt).secret == second.group(1)
    assert _only(rt).previous_secret == first.group(1)

    disabled = post_form(client, f"{PAGE}/{row.id}/disable", {})
    assert disabled.status_code == 303 and disabled.headers["location"].endswith("done=disabled")
    assert "Disabled" in client.get(disabled.headers["location"]).text
    again = post_form(client, f"{PAGE}/{row.id}/disable", {})
    assert again.headers["location"].endswith("done=already")
    refused = post_form(client, f"{PAGE}/{row.id}/rotate", {})
    assert refused.status_code == 409 and "disabled" in refused.text
    for action in ("disable", "retry", "rotate"):
        assert post_form(client, f"{PAGE}/nope/{action}", {}).status_code == 404
    assert _actions(rt) == ["webhook.created", "webhook.secret_rotated", "webhook.disabled"]
