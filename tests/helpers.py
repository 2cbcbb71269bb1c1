"""Small helpers the tests share: posting forms like a browser does, and inviting a client."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from httpx2 import Response
from sqlalchemy import event
from starlette.testclient import TestClient

from portal import invitations
from portal.audit import Actor, RequestMeta
from portal.changes import Position
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime
from portal_contact.step import DEMO_FORM
from portal_policy import service as policy_service
from portal_policy.models import PolicyVersion


def csrf_token(client: TestClient) -> str:
    token = client.cookies.get("portal_csrf")
    if token is None:
        client.get("/")
        token = client.cookies.get("portal_csrf")
    assert token, "the app did not set a CSRF cookie"
    return token


def hidden(page: str, name: str) -> str:
    """The value of a hidden input in `page`."""
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in the page"
    return html.unescape(match.group(1))


def post_form(client: TestClient, url: str, data: dict[str, Any], **kwargs: Any) -> Response:
    return client.post(url, data={"csrf_token": csrf_token(client), **data}, **kwargs)


def submit_step(client: TestClient, key: str, data: dict[str, Any]) -> Response:
    """Open a step like a browser, then submit its form (with the form's one-time id)."""
    page = client.get(f"/onboarding/{key}")
    assert page.status_code == 200, page.text
    return post_form(
        client, f"/onboarding/{key}", {"form_id": hidden(page.text, "form_id"), **data}
    )


def publish_default(rt: Runtime) -> PolicyVersion:
    """Publish the policy this product ships, as `portal policy publish --default` does."""
    with transaction(rt.engine) as db:
        return policy_service.publish_default(
            db, actor=Actor("cli", "test"), meta=RequestMeta.none(), now=utcnow()
        )


def invite(
    rt: Runtime, name: str = "Jordan Rivers", email: str = "jordan@example.com"
) -> tuple[Enrollment, str]:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        return invitations.invite(
            db,
            rt.services,
            practice,
            full_name=name,
            email=email,
            actor=Actor("staff", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )


def open_link(client: TestClient, link: str) -> Response:
    """Follow an emailed link: the landing page, then its confirm button."""
    path = link.removeprefix("http://testserver")
    landing = client.get(path)
    assert landing.status_code == 200, landing.text
    return post_form(client, path, {})


def start_journey(client: TestClient, rt: Runtime, **kwargs: str) -> Enrollment:
    enrollment, link = invite(rt, **kwargs)
    response = open_link(client, link)
    assert response.status_code == 303
    return enrollment


STAFF_PASSWORD = "correct horse battery staple"


def make_staff(
    rt: Runtime, role: str = "front_desk", email: str | None = None, name: str = "Pat Kim"
) -> str:
    """Create a staff account directly; returns its email."""
    from portal.staff import accounts

    address = email or f"{role}@harborlight.example"
    with transaction(rt.engine) as db:
        accounts.create(
            db,
            email=address,
            name=name,
            role=role,
            password=STAFF_PASSWORD,
            actor=Actor("cli", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    return address


def staff_sign_in(client: TestClient, email: str, password: str = STAFF_PASSWORD) -> Response:
    client.get("/staff/login")
    return post_form(client, "/staff/login", {"email": email, "password": password})


def onboard(
    rt: Runtime,
    name: str = "Jordan Avery",
    email: str = "jordan@example.com",
    steps: int | None = None,
) -> Enrollment:
    """A client who filled their first `steps` steps (None: all) with realistic answers."""
    from portal.demo import onboard_client

    with transaction(rt.engine) as db:
        return onboard_client(db, rt, name, email, steps)


def api_key(rt: Runtime, *scopes: str, name: str = "Test EHR") -> str:
    """A new API key with `scopes` (default: all); returns the secret to send as Bearer."""
    from portal.api import keys

    with transaction(rt.engine) as db:
        _, secret = keys.create(
            db,
            name=name,
            scopes=list(scopes) or [s.value for s in keys.Scope],
            actor=Actor("cli", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    return secret


def settle_change_log(rt: Runtime, timeout: float = 30.0) -> Position:
    """The change log's last position, once every committed change is below the safe horizon.

    On PostgreSQL the horizon waits for every writing transaction on the server, other test
    sessions' included, so it may lag for a moment; a test that reads the log waits here first."""
    from sqlmodel import col, select

    from portal import changes

    deadline = time.monotonic() + timeout
    while True:
        with transaction(rt.engine, read_only=True) as db:
            newest = col(changes.ClientChange.txid).desc(), col(changes.ClientChange.seq).desc()
            last = db.exec(select(changes.ClientChange).order_by(*newest).limit(1)).first()
            head = changes.head(db)
        if last is None or changes.position_of(last) == head:
            return head
        assert time.monotonic() < deadline, "the change log's safe horizon did not move"
        time.sleep(0.05)


def add_client(
    rt: Runtime,
    name: str,
    email: str,
    *,
    allow_email: str | None = None,
    until: str | None = None,
) -> str:
    """A client who went through the journey as `portal demo` fills it: every step, or the
    steps before `until`. `allow_email` is the address they allowed for email."""
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        now = utcnow()
        enrollment, link = invitations.invite(
            db,
            rt.services,
            practice,
            full_name=name,
            email=email,
            actor=Actor("staff", "t"),
            meta=RequestMeta(),
            now=now,
        )
        invitations.accept_invitation(db, rt.services, link.rsplit("/", 1)[-1], RequestMeta(), now)
        client = db.get(Client, enrollment.client_id)
        assert client is not None
        ctx = rt.step_context(db, practice, client, enrollment, RequestMeta(), now)
        for spec in rt.wizard.steps:
            if spec.key == until:
                break
            if spec.key == "contact" and allow_email:
                form = {**DEMO_FORM, "email_address": allow_email, "email_warning_accepted": "yes"}
                assert spec.handler.submit(ctx, form, "save").ok
            else:
                spec.handler.demo_fill(ctx)
        rt.wizard.complete_if_done(ctx)
        return enrollment.id


@contextmanager
def counting_queries(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
