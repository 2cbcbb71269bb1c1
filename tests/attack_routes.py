"""Every route of the app with sample path values, for tests that must cover each one.

The list comes from the app itself (host, plugins, mounts), so a new route is covered the day it
is added; a path parameter this module has no value for fails the test that asked for it, which
is the cue to add one to `World.values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from helpers import (
    api_key,
    invite,
    make_staff,
    onboard,
    open_link,
    publish_default,
    staff_sign_in,
)
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from portal import invitations
from portal.api.keys import ApiKey
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Enrollment
from portal.outbox import OutboxMessage
from portal.runtime import Runtime
from portal.staff import accounts
from portal.webhooks import admin as webhook_admin
from portal_signature import paper
from portal_testimonial.models import TestimonialDecision

PARAM = re.compile(r"{(\w+)(?::\w+)?}")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Machine-facing prefixes: bearer keys only, no cookies, so no CSRF check.
DATA_API = ("/api/", "/fhir/")


@dataclass(frozen=True)
class Endpoint:
    path: str  # the route's template, e.g. /staff/clients/{enrollment_id:str}
    methods: frozenset[str]

    @property
    def is_data_api(self) -> bool:
        return self.path.startswith(DATA_API)


def endpoints(app: Starlette) -> list[Endpoint]:
    found: list[Endpoint] = []
    _walk(app.routes, "", found)
    return found


def _walk(routes: list[BaseRoute], prefix: str, found: list[Endpoint]) -> None:
    for route in routes:
        if isinstance(route, Route):
            found.append(Endpoint(prefix + route.path, frozenset(route.methods or ())))
        elif isinstance(route, Mount) and route.routes:
            _walk(list(route.routes), prefix + route.path, found)
        elif isinstance(route, Mount):  # an ASGI app such as StaticFiles: files under it
            found.append(Endpoint(prefix + route.path + "/{file}", frozenset({"GET", "HEAD"})))
        else:
            pytest.fail(f"the attack tests don't know how to call {route!r}: teach attack_routes")


@dataclass
class World:
    """A practice with one of everything a route can name, and a browser signed in twice over:
    as an admin on the staff side and as a client with a completed journey."""

    values: dict[str, str]
    by_path: dict[str, dict[str, str]]
    browser: TestClient
    bearer: str
    enrollment_id: str

    def url(self, template: str) -> str:
        values = {**self.values, **self.by_path.get(template, {})}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                pytest.fail(
                    f"no sample value for path parameter {name!r} of {template}: "
                    "add one to World.values in tests/attack_routes.py"
                )
            return values[name]

        return PARAM.sub(value, template)


def build_world(app: Starlette, rt: Runtime) -> Iterator[World]:
    policy = publish_default(rt)
    admin = make_staff(rt, "admin", name="Dana Whitfield")
    other = make_staff(rt, "therapist", name="Lee Moreno")
    done = onboard(rt, "Morgan Ellis", "morgan.ellis@example.com")
    _, invitation = invite(rt, name="Casey Brooks", email="casey.brooks@example.com")
    secret = api_key(rt)
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, done.id)
        assert enrollment is not None
        record, _ = paper.record(
            db,
            enrollment,
            policy,
            signer_names=["Morgan Ellis"],
            signed_on=date.today(),
            file_name="scan.pdf",
            content=b"%PDF-1.4 paper acknowledgement",
            content_type="application/pdf",
            staff_id=_account_id(db, admin),
            actor=Actor("staff", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
        endpoint, _ = webhook_admin.create(
            db,
            url="https://ehr.example/hooks",
            name="EHR",
            actor=Actor("cli", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
        code = db.exec(
            select(TestimonialDecision.withdraw_code)
            .where(col(TestimonialDecision.enrollment_id) == done.id)
            .where(col(TestimonialDecision.withdraw_code).is_not(None))
        ).first()
        assert code, "the demo journey should leave a testimonial decision with a withdraw code"
        values = {
            "enrollment_id": done.id,
            "client_id": done.client_id,
            "id": done.client_id,
            "paper_id": record.id,
            "code": code,
            "version": str(policy.version),
            "account_id": _account_id(db, other),
            "message_id": str(db.exec(select(OutboxMessage.id)).first()),
            "key_id": db.exec(select(ApiKey.id)).one(),
            "endpoint_id": endpoint.id,
            "key": rt.wizard.steps[0].key,
            "name": "Patient.ndjson",
            "file": "portal.css",
        }
        resume = invitations.resume_link(rt.services, enrollment)
    by_path = {
        "/i/{token:str}": {"token": invitation.rsplit("/", 1)[-1]},
        "/r/{token:str}": {"token": resume.rsplit("/", 1)[-1]},
    }
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        assert staff_sign_in(browser, admin).status_code == 303
        assert open_link(browser, resume).status_code == 303
        kickoff = browser.get(
            "/fhir/r4/$export",
            headers={
                "authorization": f"Bearer {secret}",
                "prefer": "respond-async",
                "accept": "application/fhir+json",
            },
        )
        assert kickoff.status_code == 202, kickoff.text
        values["job_id"] = kickoff.headers["content-location"].rsplit("/", 1)[-1]
        yield World(values, by_path, browser, secret, done.id)


def _account_id(db: Any, email: str) -> str:
    account = accounts.by_email(db, email)
    assert account is not None
    return account.id


def snapshot(rt: Runtime) -> dict[str, list[str]]:
    """Every row of every table, as text: comparing two snapshots finds any write at all."""
    tables: dict[str, list[str]] = {}
    with transaction(rt.engine, read_only=True) as db:
        for table in SQLModel.metadata.sorted_tables:
            rows = db.execute(sa_select(table)).all()
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
    return tables


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> set[str]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
