"""FHIR Bulk Data export (portal/fhir/bulk/): kick-off, status, files, `_since`, the worker."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import _settings
from fhir_validation import validate
from helpers import api_key, onboard, publish_default, settle_change_log
from sqlalchemy import insert, literal_column, text
from sqlmodel import select
from starlette.testclient import TestClient

from portal.api.keys import Scope
from portal.api.sections import ApiSection, FhirMapping
from portal.audit import AuditEvent
from portal.changes import ClientChange, Position
from portal.db import transaction, utcnow
from portal.fhir.bulk import jobs, runner, selection, storage, worker
from portal.fhir.bulk.models import ExportJob, JobStatus
from portal.fhir.resources import load_batch
from portal.mail_catcher import MailCatcher
from portal.models import Client, Enrollment
from portal.runtime import Runtime
from portal.settings import Settings

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
EXPORT = "/fhir/r4/$export"


@pytest.fixture
def settings(database_url: str, mail: MailCatcher, tmp_path: Path) -> Settings:
    # Files in the test's own folder; the worker is run explicitly (one test runs it in-process).
    return _settings(
        database_url, smtp_port=mail.port, export_dir=tmp_path / "exports", export_in_process=False
    )


def headers(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **ASYNC, **extra}


def run_worker(rt: Runtime) -> int:
    return asyncio.run(worker.run_due(rt))


def kickoff(client: TestClient, secret: str, url: str = EXPORT, **extra: str) -> str:
    response = client.get(url, headers=headers(secret, **extra))
    assert response.status_code == 202, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    location = response.headers["content-location"]
    assert location.startswith("http://testserver/fhir/r4/$export-status/")
    return location


def finished(client: TestClient, secret: str, location: str) -> dict[str, Any]:
    response = client.get(location, headers=headers(secret))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "expires" in response.headers
    manifest: dict[str, Any] = response.json()
    return manifest


def download(client: TestClient, secret: str, url: str) -> list[dict[str, Any]]:
    response = client.get(url, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def files(client: TestClient, secret: str, manifest: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for item in manifest["output"]:
        lines = download(client, secret, item["url"])
        assert len(lines) == item["count"]
        found[item["type"]] = lines
    return found


def assert_outcome(response: Any, status: int, text_in: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    validate(body)
    assert body["resourceType"] == "OperationOutcome"
    assert text_in in body["issue"][0]["diagnostics"]


def client_ids(rt: Runtime) -> list[str]:
    with transaction(rt.engine, read_only=True) as db:
        return sorted(db.exec(select(Client.id)))


@pytest.fixture
def population(rt: Runtime) -> list[str]:
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    onboard(rt, "Sam Lee", "sam@example.com")
    onboard(rt, "Robin Park", "robin@example.com", steps=1)
    return client_ids(rt)


def test_export_from_kickoff_to_files(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret, f"{EXPORT}?_outputFormat=application/fhir%2Bndjson")
    queued = client.get(location, headers=headers(secret))
    assert queued.status_code == 202
    assert queued.headers["x-progress"] == "queued"
    assert queued.headers["retry-after"].isdigit()

    assert run_worker(rt) == 1
    manifest = finished(client, secret, location)
    assert manifest["request"].endswith("/fhir/r4/$export?_outputFormat=application/fhir%2Bndjson")
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert datetime.fromisoformat(manifest["transactionTime"]) <= utcnow()
    found = files(client, secret, manifest)
    assert [item["type"] for item in manifest["output"]] == ["Patient", "Consent"]
    for resources in found.values():
        for resource in resources:
            validate(resource)
    assert sorted(p["id"] for p in found["Patient"]) == population
    assert any("telecom" in p for p in found["Patient"])
    assert {c["patient"]["reference"] for c in found["Consent"]} <= {
        f"Patient/{i}" for i in population
    }
    # Every consent of every client, each once: the same as the facade builds for the batch.
    with transaction(rt.engine, read_only=True) as db:
        everyone = list(db.exec(select(Client).order_by(Client.id)))
        batch = load_batch(rt, db, everyone, [s.value for s in Scope])
        expected = runner.BUILDERS["Consent"](rt, batch)
    assert sorted(c["id"] for c in found["Consent"]) == sorted(c["id"] for c in expected)


def test_ndjson_lines_are_compact_utf8_json(tmp_path: Path) -> None:
    """One resource per line, compact, UTF-8 unescaped: what json.dumps(ensure_ascii=False,
    separators=(",", ":")) writes, whatever the text holds."""
    names = ["Zoë Ångström", "李小龙", 'Quote " and back\\slash', "tab\tnew\nline\x01", "</script>"]
    patients = [
        {"resourceType": "Patient", "id": f"p{n}", "active": n % 2 == 0, "name": [{"text": t}]}
        for n, t in enumerate(names)
    ]
    with storage.NdjsonWriter(tmp_path) as writer:
        writer.write("Patient", patients[:2])
        writer.write("Patient", patients[2:])
        writer.write("Consent", [])
    assert writer.counts == {"Patient": 5}
    assert [p.name for p in tmp_path.iterdir()] == ["Patient.ndjson"]
    expected = "".join(
        json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n" for p in patients
    )
    assert (tmp_path / "Patient.ndjson").read_bytes() == expected.encode()


def test_audit_names_the_key_and_nobody_else(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt, name="Acme EHR")
    location = kickoff(client, secret)
    assert client.get(location, headers=headers(secret)).status_code == 202
    run_worker(rt)
    manifest = finished(client, secret, location)
    files(client, secret, manifest)
    with transaction(rt.engine, read_only=True) as db:
        events = list(db.exec(select(AuditEvent).where(AuditEvent.subject_type == "export_job")))
    actions = [e.action for e in events]
    for action in ("fhir.export.started", "fhir.export.polled", "fhir.export.completed"):
        assert action in actions
    assert actions.count("fhir.export.manifest") == 1
    assert actions.count("fhir.export.downloaded") == len(manifest["output"])
    assert {e.actor for e in events if e.action != "fhir.export.completed"} == {"api:Acme EHR"}
    detail = json.dumps([e.detail for e in events])
    for identifying in ("Jordan", "Avery", "example.com", "Sam Lee"):
        assert identifying not in detail
    downloaded = [e.detail for e in events if e.action == "fhir.export.downloaded"]
    assert {d["type"] for d in downloaded} == {"Patient", "Consent"}


def test_patient_level_export_and_type_filter(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret, "/fhir/r4/Patient/$export?_type=Patient")
    run_worker(rt)
    manifest = finished(client, secret, location)
    assert [item["type"] for item in manifest["output"]] == ["Patient"]
    assert manifest["output"][0]["count"] == len(population)
    location = kickoff(client, secret, f"{EXPORT}?_type=Consent,Patient&_outputFormat=ndjson")
    run_worker(rt)
    assert [i["type"] for i in finished(client, secret, location)["output"]] == [
        "Patient",
        "Consent",
    ]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("_type=Observation", "'Observation' is not a resource type"),
        ("_type=Patient,", "an empty value"),
        ("_outputFormat=application/fhir%2Bjson", "_outputFormat"),
        ("_since=2026-01-01", "not a FHIR instant"),
        ("_since=2026-01-01T10:00:00", "not a FHIR instant"),
        ("_since=2026-13-01T10:00:00Z", "not a FHIR instant"),
        ("_since=2026-01-01T10:00:00%2B15:00", "not a FHIR instant"),
        ("_since=yesterday", "not a FHIR instant"),
        ("_since=2026-01-01T10:00:00Z&_since=2026-01-02T10:00:00Z", "more than once"),
        ("_typeFilter=Patient%3Factive%3Dtrue", "not supported"),
        ("patient=Patient/123", "not supported"),
    ],
)
def test_bad_kickoff_parameters_are_400(
    client: TestClient, rt: Runtime, query: str, says: str
) -> None:
    secret = api_key(rt)
    response = client.get(f"{EXPORT}?{query}", headers=headers(secret))
    assert_outcome(response, 400, says)
    with transaction(rt.engine, read_only=True) as db:
        assert db.exec(select(ExportJob)).first() is None


def test_kickoff_needs_prefer_async_and_json(client: TestClient, rt: Runtime) -> None:
    secret = api_key(rt)
    auth = {"Authorization": f"Bearer {secret}"}
    assert_outcome(client.get(EXPORT, headers=auth), 400, "Prefer: respond-async")
    xml = {**headers(secret), "Accept": "application/fhir+xml"}
    assert_outcome(client.get(EXPORT, headers=xml), 406)
    # handling=lenient: unsupported parameters are ignored instead of refused.
    lenient = headers(secret, Prefer="respond-async, handling=lenient")
    assert client.get(f"{EXPORT}?_elements=id", headers=lenient).status_code == 202
    # A '+' left unencoded arrives as a space; the IG's spellings are all accepted.
    for value in ("application/fhir+ndjson", "application/ndjson"):
        response = client.get(f"{EXPORT}?_outputFormat={value}", headers=lenient)
        assert response.status_code == 202, response.text


def test_kickoff_scopes(client: TestClient, rt: Runtime) -> None:
    assert_outcome(client.get(EXPORT, headers=ASYNC), 401)
    no_export = api_key(rt, "clients:read", "contacts:read", name="Reader")
    assert_outcome(client.get(EXPORT, headers=headers(no_export)), 403, "export")
    export_only = api_key(rt, "export", name="Exporter")
    assert_outcome(client.get(EXPORT, headers=headers(export_only)), 403, "clients:read")


def test_without_contacts_scope_contact_details_are_left_out_and_said_so(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt, "export", "clients:read")
    location = kickoff(client, secret)
    run_worker(rt)
    manifest = finished(client, secret, location)
    found = files(client, secret, manifest)
    assert all("telecom" not in patient for patient in found["Patient"])
    contact_categories = [
        coding["code"]
        for consent in found.get("Consent", [])
        for category in consent["category"]
        for coding in category["coding"]
    ]
    assert "contact-preferences" not in contact_categories
    [error] = manifest["error"]
    assert error["type"] == "OperationOutcome"
    [notice] = download(client, secret, error["url"])
    validate(notice)
    assert notice["issue"][0]["code"] == "suppressed"
    assert "contacts:read" in notice["issue"][0]["diagnostics"]


def test_another_keys_export_is_not_found(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    owner = api_key(rt, name="Owner")
    other = api_key(rt, name="Other")
    location = kickoff(client, owner)
    run_worker(rt)
    manifest = finished(client, owner, location)
    assert_outcome(client.get(location, headers=headers(other)), 404)
    assert_outcome(client.delete(location, headers=headers(other)), 404)
    file_url = manifest["output"][0]["url"]
    assert_outcome(client.get(file_url, headers=headers(other)), 404)
    assert_outcome(client.get(file_url, headers=ASYNC), 401)
    # The owner still has it all.
    assert client.get(file_url, headers=headers(owner)).status_code == 200
    assert_outcome(client.get(file_url + "x", headers=headers(owner)), 404)
    assert_outcome(client.get(file_url.replace("Patient", "Nope"), headers=headers(owner)), 404)
    assert_outcome(client.get("/fhir/r4/$export-status/../etc", headers=headers(owner)), 404)
    assert_outcome(client.get("/fhir/r4/$export-status/zzz", headers=headers(owner)), 404)


def test_cancel_a_queued_export(client: TestClient, rt: Runtime, population: list[str]) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret)
    response = client.delete(location, headers=headers(secret))
    assert_outcome(response, 202)
    assert_outcome(client.get(location, headers=headers(secret)), 404)
    assert_outcome(client.delete(location, headers=headers(secret)), 404)
    assert run_worker(rt) == 0


def test_cancel_a_finished_export_deletes_its_files(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret)
    run_worker(rt)
    manifest = finished(client, secret, location)
    job_id = location.rsplit("/", 1)[1]
    assert storage.job_dir(rt.settings.export_path, job_id).is_dir()
    assert client.delete(location, headers=headers(secret)).status_code == 202
    assert not storage.job_dir(rt.settings.export_path, job_id).exists()
    assert_outcome(client.get(manifest["output"][0]["url"], headers=headers(secret)), 404)


def test_cancel_while_running_stops_the_worker(rt: Runtime, population: list[str]) -> None:
    job = _job(rt)
    claimed = jobs.claim(rt.engine)
    assert claimed is not None and claimed.id == job.id
    assert jobs.cancel(rt.engine, job.id)
    runner.execute(rt, claimed, lambda: False)
    with transaction(rt.engine, read_only=True) as db:
        assert db.get(ExportJob, job.id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    assert list(rt.settings.export_path.glob(f"{job.id}*")) == []


def test_a_cancel_during_the_run_is_noticed_at_the_next_progress(
    rt: Runtime, population: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    patients = runner.BUILDERS["Patient"]

    def cancelling(rt: Runtime, batch: Any) -> list[dict[str, Any]]:
        batches.append(len(batch.clients))
        assert jobs.cancel(rt.engine, job.id)
        return patients(rt, batch)

    monkeypatch.setitem(runner.BUILDERS, "Patient", cancelling)
    monkeypatch.setattr(runner, "PROGRESS_SECONDS", 0.0)  # progress after every batch
    _job(rt)
    job = jobs.claim(rt.engine)
    assert job is not None
    with pytest.raises(jobs.LostJob):
        runner.run(rt, job, batch_size=1)
    assert batches == [1]  # stopped after the first of three batches


def _job(rt: Runtime, **values: Any) -> ExportJob:
    key_id = values.pop("api_key_id", "k" * 32)
    with transaction(rt.engine) as db:
        job = ExportJob(
            api_key_id=key_id,
            level="system",
            request_url="http://testserver/fhir/r4/$export",
            types=["Patient", "Consent"],
            scopes=["export", "clients:read", "contacts:read"],
            output_format="application/fhir+ndjson",
            **values,
        )
        db.add(job)
    return job


def _patients(rt: Runtime, job_id: str) -> list[str]:
    path = storage.job_dir(rt.settings.export_path, job_id) / "Patient.ndjson"
    if not path.exists():
        return []
    return sorted(json.loads(line)["id"] for line in path.read_text().splitlines())


def test_since_a_transaction_time_exports_exactly_what_changed_after_it(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    first = finished_export(client, rt, secret, EXPORT)
    transaction_time = first["transactionTime"]
    changed, untouched = population[0], population[1]
    with transaction(rt.engine) as db:
        row = db.get(Client, changed)
        assert row is not None
        row.mrn = "MRN-1001"
        db.add(row)
    since = transaction_time.replace("+", "%2B")
    second = finished_export(client, rt, secret, f"{EXPORT}?_type=Patient&_since={since}")
    [patients] = [files(client, secret, second)["Patient"]]
    assert [p["id"] for p in patients] == [changed]
    assert untouched not in [p["id"] for p in patients]
    assert any(i["value"] == "MRN-1001" for i in patients[0]["identifier"])
    # The exact path: the earlier job's stored change-log position, not a timestamp comparison.
    with transaction(rt.engine, read_only=True) as db:
        earlier = db.exec(
            select(ExportJob).order_by(ExportJob.created_at)  # type: ignore[arg-type]
        ).first()
        assert earlier is not None
        moment = datetime.fromisoformat(transaction_time)
        assert selection.since_position(db, moment) == Position(
            earlier.position_txid or 0, earlier.position_seq or 0
        )
    # Nothing changed since the second export: the third is empty.
    third = finished_export(
        client, rt, secret, f"{EXPORT}?_since={second['transactionTime'].replace('+', '%2B')}"
    )
    assert third["output"] == []


def finished_export(client: TestClient, rt: Runtime, secret: str, url: str) -> dict[str, Any]:
    settle_change_log(rt)
    location = kickoff(client, secret, url)
    assert run_worker(rt) == 1
    return finished(client, secret, location)


@pytest.mark.postgresql_only  # SQLite serialises writers: a commit can't land behind an export
def test_since_a_transaction_time_catches_a_change_that_committed_late(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    late = population[2]
    stamped = utcnow()
    with rt.engine.connect() as slow:
        # A change stamped now whose transaction commits only after the export below ran.
        slow.execute(
            insert(ClientChange).values(
                txid=literal_column("pg_current_xact_id()::text::bigint"),
                client_id=late,
                changed_at=stamped,
                tables="client",
            )
        )
        first = finished_export(client, rt, secret, f"{EXPORT}?_type=Patient")
        slow.commit()
    transaction_time = first["transactionTime"]
    assert datetime.fromisoformat(transaction_time) > stamped
    exact = finished_export(client, rt, secret, f"{EXPORT}?_type=Patient&_since={transaction_time}")
    assert [p["id"] for p in files(client, secret, exact)["Patient"]] == [late]
    # Comparing stamps with the same instant would have missed it: why the position is stored.
    moment = datetime.fromisoformat(transaction_time) + timedelta(microseconds=1)
    since = moment.isoformat().replace("+00:00", "Z")
    approximate = finished_export(client, rt, secret, f"{EXPORT}?_since={since}")
    assert approximate["output"] == []


def test_since_any_other_instant_compares_change_stamps(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    before = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S-01:00")
    everything = finished_export(client, rt, secret, f"{EXPORT}?_type=Patient&_since={before}")
    assert everything["output"][0]["count"] == len(population)
    nothing = finished_export(client, rt, secret, f"{EXPORT}?_since={after}")
    assert nothing["output"] == []


def test_too_many_running_exports_is_429(client: TestClient, rt: Runtime) -> None:
    secret = api_key(rt)
    for _ in range(3):
        kickoff(client, secret)
    response = client.get(EXPORT, headers=headers(secret))
    assert_outcome(response, 429)
    assert response.headers["retry-after"].isdigit()


def test_progress_while_running(client: TestClient, rt: Runtime) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret)
    job_id = location.rsplit("/", 1)[1]
    with transaction(rt.engine) as db:
        job = db.get(ExportJob, job_id)
        assert job is not None
        job.status, job.done_clients, job.total_clients = JobStatus.RUNNING, 400, 1000
        job.locked_until = utcnow() + timedelta(minutes=5)
        db.add(job)
    response = client.get(location, headers=headers(secret))
    assert response.status_code == 202
    assert response.headers["x-progress"] == "40% (400/1000 clients)"


def test_a_failed_export_answers_500_with_an_outcome(
    client: TestClient, rt: Runtime, population: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret)

    def broken(*args: Any) -> list[dict[str, Any]]:
        raise RuntimeError("Jordan Avery broke it")

    monkeypatch.setitem(runner.BUILDERS, "Consent", broken)
    run_worker(rt)
    response = client.get(location, headers=headers(secret))
    assert_outcome(response, 500, "internal error (RuntimeError)")
    assert "Jordan" not in response.text
    job_id = location.rsplit("/", 1)[1]
    assert list(rt.settings.export_path.glob(f"{job_id}*")) == []
    # A failure is reported for as long as a finished export would be kept, then forgotten.
    root, hours = rt.settings.export_path, rt.settings.export_hours
    assert jobs.expire(rt.engine, root, hours, now=utcnow() + timedelta(hours=hours - 1)) == 0
    assert jobs.expire(rt.engine, root, hours, now=utcnow() + timedelta(hours=hours + 1)) == 1
    assert_outcome(client.get(location, headers=headers(secret)), 404)


def test_the_collector_is_paused_per_batch_and_always_resumed(
    rt: Runtime, population: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    patients = runner.BUILDERS["Patient"]

    def watched(rt: Runtime, batch: Any) -> list[dict[str, Any]]:
        seen.append(gc.isenabled())
        return patients(rt, batch)

    monkeypatch.setitem(runner.BUILDERS, "Patient", watched)
    _job(rt)
    job = jobs.claim(rt.engine)
    assert job is not None
    runner.run(rt, job, batch_size=2)
    assert seen == [False, False] and gc.isenabled()

    def broken(*args: Any) -> list[dict[str, Any]]:
        raise RuntimeError("broken")

    monkeypatch.setitem(runner.BUILDERS, "Patient", broken)
    _job(rt)
    job = jobs.claim(rt.engine)
    assert job is not None
    with pytest.raises(RuntimeError):
        runner.run(rt, job)
    assert gc.isenabled()


def test_a_stopping_worker_hands_the_job_back(rt: Runtime, population: list[str]) -> None:
    job = _job(rt)
    claimed = jobs.claim(rt.engine)
    assert claimed is not None
    runner.execute(rt, claimed, lambda: True)
    with transaction(rt.engine, read_only=True) as db:
        again = db.get(ExportJob, job.id)
        assert again is not None
        assert (again.status, again.attempts) == (JobStatus.PENDING, 0)
    assert list(rt.settings.export_path.glob(f"{job.id}*")) == []
    assert run_worker(rt) == 1
    assert _patients(rt, job.id) == population


def test_a_vanished_workers_job_is_taken_over_then_given_up(rt: Runtime) -> None:
    past = utcnow() - timedelta(minutes=1)
    job = _job(rt, status=JobStatus.RUNNING, locked_until=past, attempts=1)
    claimed = jobs.claim(rt.engine)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 2
    # Its lease lapses again, and again: a job that keeps killing workers is failed.
    for attempts in (2, 3):
        with transaction(rt.engine) as db:
            row = db.get(ExportJob, job.id)
            assert row is not None
            row.locked_until, row.attempts = past, attempts
            db.add(row)
        claimed = jobs.claim(rt.engine)
        assert (claimed is None) == (attempts == 3)
    with transaction(rt.engine, read_only=True) as db:
        assert db.get(ExportJob, job.id).status == JobStatus.FAILED  # type: ignore[union-attr]


@pytest.mark.postgresql_only  # SQLite serialises writers; SKIP LOCKED is PostgreSQL's
def test_postgres_workers_never_claim_the_same_job(rt: Runtime) -> None:
    job = _job(rt)
    with rt.engine.connect() as other:
        other.execute(text("SELECT id FROM export_job WHERE id = :id FOR UPDATE"), {"id": job.id})
        assert jobs.claim(rt.engine) is None  # locked by the other worker: skipped, not awaited
        other.rollback()
    assert jobs.claim(rt.engine) is not None


def test_expired_exports_lose_their_files_but_keep_their_since(
    client: TestClient, rt: Runtime, population: list[str]
) -> None:
    secret = api_key(rt)
    location = kickoff(client, secret)
    run_worker(rt)
    manifest = finished(client, secret, location)
    job_id = location.rsplit("/", 1)[1]
    later = utcnow() + timedelta(hours=rt.settings.export_hours, minutes=1)
    assert jobs.expire(rt.engine, rt.settings.export_path, 24, now=later) == 1
    assert not storage.job_dir(rt.settings.export_path, job_id).exists()
    assert_outcome(client.get(location, headers=headers(secret)), 404)
    assert_outcome(client.get(manifest["output"][0]["url"], headers=headers(secret)), 404)
    with transaction(rt.engine, read_only=True) as db:
        job = db.get(ExportJob, job_id)
        assert job is not None and job.status == JobStatus.EXPIRED
        moment = datetime.fromisoformat(manifest["transactionTime"])
        assert selection.since_position(db, moment) == Position(
            job.position_txid or 0, job.position_seq or 0
        )


def test_the_in_process_worker_runs_exports(
    database_url: str, mail: MailCatcher, tmp_path: Path
) -> None:
    from conftest import PRACTICE

    from portal.app import create_app
    from portal.models import Practice

    settings = _settings(
        database_url, smtp_port=mail.port, export_dir=tmp_path / "exports", export_in_process=True
    )
    app = create_app(settings)
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    secret = api_key(rt)
    with TestClient(app, base_url="http://testserver") as client:
        location = kickoff(client, secret)
        deadline = time.monotonic() + 15
        while (response := client.get(location, headers=headers(secret))).status_code == 202:
            assert time.monotonic() < deadline, "the export never finished"
            time.sleep(0.05)
        assert response.status_code == 200, response.text
        assert response.json()["output"][0]["count"] == 1
    rt.engine.dispose()


# --- memory ---------------------------------------------------------------------------------


def _consents(client_id: str, value: Any) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Consent",
            "id": f"mem-{client_id}-{n}",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"code": "memory-test"}]}],
            "patient": {"reference": f"Patient/{client_id}"},
            "policyRule": {"text": "x" * 200},
        }
        for n in range(3)
    ]


HEAVY = ApiSection(
    key="memory_test",
    title="memory test",
    scope="clients:read",
    schema={},
    load=lambda db, refs, history: {r.client_id: {"n": 3} for r in refs},
    fhir=FhirMapping(consents=_consents, consent_prefix="mem"),
)


def _insert_clients(rt: Runtime, count: int, start: int) -> None:
    now = utcnow()
    clients = [
        {
            "id": f"{n:032x}",
            "full_name": f"Client {n}",
            "email": f"c{n}@example.com",
            "created_at": now,
        }
        for n in range(start, start + count)
    ]
    enrollments = [
        {"id": f"e{n:031x}", "client_id": f"{n:032x}", "created_at": now, "resume_nonce": "x"}
        for n in range(start, start + count)
    ]
    with transaction(rt.engine) as db:
        db.execute(insert(Client), clients)
        db.execute(insert(Enrollment), enrollments)


def _peak_during_export(rt: Runtime, *, measure: bool = True) -> int:
    job = _job(rt)
    claimed = jobs.claim(rt.engine)
    assert claimed is not None and claimed.id == job.id
    if not measure:
        runner.run(rt, claimed)
        return 0
    tracemalloc.start()
    try:
        runner.run(rt, claimed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.fixture
def heavy(rt: Runtime) -> Iterator[Runtime]:
    saved = rt.api_sections
    rt.api_sections = [*saved, HEAVY]
    yield rt
    rt.api_sections = saved


def test_memory_stays_flat_however_many_clients(heavy: Runtime) -> None:
    rt = heavy
    _insert_clients(rt, 1000, 0)
    _peak_during_export(rt, measure=False)  # warm caches (compiled SQL) before measuring
    small = _peak_during_export(rt)
    _insert_clients(rt, 2000, 1000)
    large = _peak_during_export(rt)
    with transaction(rt.engine, read_only=True) as db:
        last = db.exec(select(ExportJob).order_by(ExportJob.created_at.desc())).first()  # type: ignore[attr-defined]
        assert last is not None and last.done_clients == 3000
        assert last.output[1]["count"] == 9000
    # Three times the clients, the same peak (a small tolerance for allocator noise).
    assert large < small * 1.2 + 200_000, (small, large)


def test_export_worker_command(
    settings: Settings, client: TestClient, rt: Runtime, population: list[str]
) -> None:
    from click.testing import CliRunner

    from portal import cli as cli_module
    from portal.cli_support import open_runtime

    cli_module._add_plugin_commands()
    secret = api_key(rt)
    location = kickoff(client, secret)
    env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_SECRET_KEYS": settings.key_list[0],
        "PORTAL_BASE_URL": settings.base_url,
        "PORTAL_EXPORT_DIR": str(settings.export_path),
    }
    open_runtime.cache_clear()
    try:
        result = CliRunner().invoke(cli_module.cli, ["export-worker", "--once"], env=env)
        open_runtime().engine.dispose()
    finally:
        open_runtime.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Ran 1 export(s)."
    manifest = finished(client, secret, location)
    assert len(files(client, secret, manifest)["Patient"]) == len(population)


def test_an_export_cut_off_by_a_database_outage_is_handed_back_not_failed(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from portal.fhir.bulk import runner

    _job(rt)
    job = jobs.claim(rt.engine)
    assert job is not None

    def outage(*_args: Any) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(runner, "run", outage)
    runner.execute(rt, job, lambda: False)
    with transaction(rt.engine, read_only=True) as db:
        assert db.get(ExportJob, job.id).status == JobStatus.PENDING  # type: ignore[union-attr]
    assert jobs.claim(rt.engine) is not None  # another pass starts it over
