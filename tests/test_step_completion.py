"""Step statuses for many journeys at once (`Wizard.completion`, each step's `complete_among`)
answer exactly what asking each step's `is_complete` one journey at a time answers."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from helpers import api_key, onboard, publish_default
from sqlmodel import Session
from starlette.testclient import TestClient

from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime
from portal.steps import BatchCompletion, StepContext, StepOutcome, StepSpec, SummaryItem
from portal.wizard import Wizard
from portal_policy.publishing import publish_new_version
from portal_policy.rendering import default_policy_source
from portal_signature.models import Party


def _one_at_a_time(rt: Runtime, db: Session, enrollment: Enrollment) -> list[bool]:
    ctx = _context(rt, db, enrollment)
    return [spec.handler.is_complete(ctx) for spec in rt.wizard.steps]


def _context(rt: Runtime, db: Session, enrollment: Enrollment) -> StepContext:
    practice = db.get(Practice, 1)
    client = db.get(Client, enrollment.client_id)
    assert practice is not None and client is not None
    return rt.step_context(db, practice, client, enrollment, RequestMeta.none(), utcnow())


def _statuses(rt: Runtime, ids: list[str]) -> dict[str, tuple[list[bool], list[bool]]]:
    """enrollment id -> (batched answer, one-at-a-time answer)."""
    with transaction(rt.engine, read_only=True) as db:
        enrollments = [db.get(Enrollment, i) for i in ids]
        assert all(enrollments)
        rows = [e for e in enrollments if e is not None]
        batched = rt.wizard.completion(db, rows, lambda e: _context(rt, db, e))
        return {e.id: (batched[e.id], _one_at_a_time(rt, db, e)) for e in rows}


def _choose_signers_only(rt: Runtime, enrollment_id: str) -> None:
    """Say who signs (one adult, the client) without signing: the step stays incomplete."""
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        spec = rt.wizard.get("sign")
        assert spec is not None
        form = {"phase": "who", "party": Party.INDIVIDUAL}
        assert spec.handler.submit(_context(rt, db, enrollment), form, "save").ok


def test_every_built_in_step_answers_for_many_journeys_at_once(rt: Runtime) -> None:
    assert all(isinstance(spec.handler, BatchCompletion) for spec in rt.wizard.steps)
    keys = [spec.key for spec in rt.wizard.steps]
    assert keys == ["policy", "contact", "testimonial", "sign"]
    publish_default(rt)
    invited = onboard(rt, "Invited Only", "invited@example.com", steps=0).id
    partway = onboard(rt, "Part Way", "partway@example.com", steps=2).id
    unsigned = onboard(rt, "Not Signed", "unsigned@example.com", steps=3).id
    _choose_signers_only(rt, unsigned)
    done = onboard(rt, "All Done", "done@example.com").id
    ids = [invited, partway, unsigned, done]

    found = _statuses(rt, ids)
    assert found[invited][0] == [False, False, False, False]
    assert found[partway][0] == [True, True, False, False]
    assert found[unsigned][0] == [True, True, True, False]
    assert found[done][0] == [True, True, True, True]
    assert all(batched == single for batched, single in found.values())

    # A new policy version: reading and signing are due again, the other answers stand.
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        source = default_policy_source() + "\n## Video sessions\n\nA secure video service.\n"
        publish_new_version(
            db, rt.services, source, practice,
            actor=Actor("cli", "t"), meta=RequestMeta(), now=utcnow(),
        )  # fmt: skip
    found = _statuses(rt, ids)
    assert found[done][0] == [False, True, True, False]
    assert all(batched == single for batched, single in found.values())


class _OneAtATime:
    """A step handler without `complete_among`, counting the journeys it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def is_complete(self, ctx: StepContext) -> bool:
        self.asked.append(ctx.enrollment.id)
        return ctx.client.full_name.startswith("Done")

    def context(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        return StepOutcome(done=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        return []

    def demo_fill(self, ctx: StepContext) -> None:
        return None


class _Batched(_OneAtATime):
    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        return {i for i in enrollment_ids if i.startswith("e1")}


def test_a_step_without_the_batch_method_is_asked_one_journey_at_a_time(rt: Runtime) -> None:
    plain, batched = _OneAtATime(), _Batched()
    wizard = Wizard(
        [
            StepSpec("plain", "Plain", 100, "plain.html", plain),
            StepSpec("batched", "Batched", 200, "batched.html", batched),
        ]
    )
    with transaction(rt.engine, read_only=True) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        clients = {"e1": Client(full_name="Done Dana"), "e2": Client(full_name="New Noor")}
        enrollments = [Enrollment(id=i, client_id=i) for i in clients]
        made: list[str] = []

        def context(enrollment: Enrollment) -> StepContext:
            made.append(enrollment.id)
            client = clients[enrollment.id]
            return rt.step_context(db, practice, client, enrollment, RequestMeta(), utcnow())

        assert wizard.completion(db, enrollments, context) == {
            "e1": [True, True],
            "e2": [False, False],
        }
    assert plain.asked == ["e1", "e2"] and batched.asked == []
    assert made == ["e1", "e2"]  # one context per journey, only for the steps that need it


def test_the_api_record_shows_each_step_status(rt: Runtime, client: TestClient) -> None:
    publish_default(rt)
    partway = onboard(rt, "Part Way", "partway@example.com", steps=2)
    with transaction(rt.engine) as db:
        never_invited = Client(full_name="Walk In", email="walkin@example.com")
        db.add(never_invited)
        db.flush()
        walk_in = never_invited.id
    headers = {"Authorization": f"Bearer {api_key(rt, 'clients:read')}"}
    record = client.get(f"/api/v1/clients/{partway.client_id}", headers=headers).json()
    assert [(s["key"], s["complete"]) for s in record["steps"]] == [
        ("policy", True),
        ("contact", True),
        ("testimonial", False),
        ("sign", False),
    ]
    record = client.get(f"/api/v1/clients/{walk_in}", headers=headers).json()
    assert record["enrollment"] is None
    assert [s["complete"] for s in record["steps"]] == [False] * 4
    page = client.get("/api/v1/clients?limit=10", headers=headers).json()["data"]
    by_id = {c["id"]: [s["complete"] for s in c["steps"]] for c in page}
    assert by_id[partway.client_id] == [True, True, False, False]
    assert by_id[walk_in] == [False] * 4
