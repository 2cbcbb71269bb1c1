"""The database unreachable for a while: a calm 503 for people, the API and FHIR; /healthz and
/readyz tell the truth; everything recovers without a restart; background mail loses nothing.

PostgreSQL is reached through a TCP proxy the test cuts and restores (tests/fault_proxy.py).
SQLite's equivalent, a write lock held past the busy timeout, gets the same 503.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import PRACTICE, _settings
from fault_proxy import FaultProxy
from fhir_validation import validate
from helpers import api_key, invite, onboard, post_form, publish_default
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from test_faults_smtp import FaultySmtp, figures, statuses

from portal.app import create_app
from portal.db import is_outage, transaction
from portal.mailer import DeliveryLoop
from portal.models import Practice
from portal.outbox import MailStatus
from portal.routes.public import READY_TIMEOUT
from portal.runtime import Runtime
from portal.settings import Settings
from portal.unavailable import RETRY_AFTER_SECONDS


@pytest.fixture
def proxy(database_url: str) -> Iterator[FaultProxy]:
    url = make_url(database_url)
    server = FaultProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield server
    server.stop()


def through(settings: Settings, proxy: FaultProxy, **overrides: object) -> Settings:
    """The test's settings, with the database reached through the proxy."""
    url = make_url(settings.database_url).set(host="127.0.0.1", port=proxy.port)
    return settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "database_connect_timeout": 2,
            **overrides,
        }
    )


@pytest.fixture
def proxied(settings: Settings, proxy: FaultProxy) -> Iterator[Starlette]:
    """The app, its database behind the proxy."""
    yield from app_through(settings, proxy)


def app_through(settings: Settings, proxy: FaultProxy, **overrides: object) -> Iterator[Starlette]:
    app = create_app(through(settings, proxy, **overrides))
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    yield app
    rt.engine.dispose()


@pytest.fixture
def slow_to_give_up(settings: Settings, proxy: FaultProxy) -> Iterator[Starlette]:
    """The app behind the proxy, waiting longer for a connection than /readyz waits."""
    yield from app_through(settings, proxy, database_connect_timeout=4)


def assert_unavailable_page(response: httpx2.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("text/html")
    assert "Please try again shortly" in response.text
    assert "988" in response.text  # the crisis line footer does not need the database
    assert "Traceback" not in response.text and "psycopg" not in response.text


def assert_unavailable_api(response: httpx2.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Service Unavailable"
    assert "psycopg" not in response.text


def assert_unavailable_fhir(response: httpx2.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    validate(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"


@pytest.mark.postgresql_only
def test_an_outage_gets_503s_that_say_so_and_everything_recovers_without_a_restart(
    proxied: Starlette, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    rt: Runtime = proxied.state.runtime
    publish_default(rt)
    onboard(rt)
    bearer = {"Authorization": f"Bearer {api_key(rt)}"}
    with TestClient(proxied, base_url="http://testserver", follow_redirects=False) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/clients", headers=bearer).status_code == 200
        assert client.get("/fhir/r4/Patient", headers=bearer).status_code == 200

        proxy.refuse()
        caplog.clear()
        started = time.perf_counter()
        assert_unavailable_page(client.get("/"))
        assert_unavailable_page(post_form(client, "/link", {"email": "jordan@example.com"}))
        assert_unavailable_api(client.get("/api/v1/clients", headers=bearer))
        assert_unavailable_fhir(client.get("/fhir/r4/Patient", headers=bearer))
        assert client.get("/healthz").status_code == 200  # the process is alive
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"].startswith("database unavailable")
        assert time.perf_counter() - started < 5  # refused connections fail fast
        # One warning line per request, no traceback, nothing from the request.
        lines = [r for r in caplog.records if r.name == "portal.unavailable"]
        assert len(lines) == 4 and all(r.exc_info is None for r in lines)
        assert "jordan" not in caplog.text

        proxy.restore()  # no restart: the pool throws away dead connections (pre-ping)
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/").status_code == 200
        assert post_form(client, "/link", {"email": "jordan@example.com"}).status_code == 200
        assert client.get("/api/v1/clients", headers=bearer).json()["data"]
        assert client.get("/fhir/r4/Patient", headers=bearer).status_code == 200


@pytest.mark.postgresql_only
def test_an_unanswering_server_costs_a_request_the_connect_timeout_not_a_hang(
    slow_to_give_up: Starlette, proxy: FaultProxy
) -> None:
    """Packets dropped (a firewall, a dead host): connections are accepted and never answered."""
    timeout = slow_to_give_up.state.runtime.settings.database_connect_timeout
    assert timeout > READY_TIMEOUT + 1
    with TestClient(slow_to_give_up, base_url="http://testserver") as client:
        assert client.get("/readyz").status_code == 200
        proxy.stall()
        started = time.perf_counter()
        ready = client.get("/readyz")  # does not wait for the connect timeout
        assert time.perf_counter() - started < READY_TIMEOUT + 1
        assert ready.status_code == 503
        assert (
            ready.json()["detail"] == f"database unavailable (no answer within {READY_TIMEOUT:g} s)"
        )
        started = time.perf_counter()
        assert_unavailable_page(client.get("/"))  # the connect timeout ends the wait
        assert timeout - 1 < time.perf_counter() - started < timeout + 2
        proxy.restore()
        # The probe stuck on the stalled connection gives up by itself; then all is well.
        deadline = time.monotonic() + timeout + 5
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
        assert client.get("/").status_code == 200


def poll(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `check()` holds; a check that meets the outage counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except sa_exc.OperationalError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.postgresql_only
def test_the_mail_loop_rides_out_an_outage_and_sends_each_mail_once(
    proxied: Starlette, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    rt: Runtime = proxied.state.runtime
    for n in range(5):
        invite(rt, name=f"Client {n}", email=f"client{n}@example.com")
    smtp = FaultySmtp().start()
    accepted = 0
    outage_over = threading.Event()

    def cut_after_the_second_mail() -> None:
        # The worst moment: the server took the mail, the database has not recorded it yet.
        nonlocal accepted
        accepted += 1
        if accepted == 2:
            proxy.refuse()
            threading.Timer(1.0, lambda: (proxy.restore(), outage_over.set())).start()

    smtp.faults.after_accept = cut_after_the_second_mail
    settings = rt.settings.model_copy(update={"smtp_port": smtp.port})
    delivery = DeliveryLoop(rt.engine, settings, interval=0.1)
    loop = asyncio.new_event_loop()  # the loop's own thread, as in `portal mail-worker`
    worker = threading.Thread(target=loop.run_until_complete, args=(delivery.run(),), daemon=True)
    worker.start()
    try:
        poll(lambda: outage_over.is_set() and set(statuses(rt)) == {MailStatus.SENT})
        assert "recording it waits for the database" in caplog.text

        # A second outage while the loop is idle: its passes fail, it carries on afterwards.
        caplog.clear()
        proxy.refuse()
        loop.call_soon_threadsafe(delivery.wake)
        poll(lambda: "database unavailable" in caplog.text)
        proxy.restore()
        for n in range(5, 7):
            invite(rt, name=f"Client {n}", email=f"client{n}@example.com")
        loop.call_soon_threadsafe(delivery.wake)
        poll(lambda: len(smtp.mails) >= 7 and set(statuses(rt)) == {MailStatus.SENT})
    finally:
        loop.call_soon_threadsafe(delivery.stop)
        worker.join(timeout=10)
        assert not worker.is_alive(), "the delivery loop did not stop"
        loop.close()
        smtp.stop()
    result = figures(rt, smtp)
    print(
        f"\n[database outage during delivery] emails queued {result.queued}, delivered "
        f"{result.delivered}, lost {result.lost}, duplicated {result.duplicated}"
    )
    assert (result.queued, result.delivered, result.lost, result.duplicated) == (7, 7, 0, 0)
    assert not [r for r in caplog.records if r.name == "portal.mail" and r.exc_info]


def test_sqlite_locked_past_the_busy_timeout_is_the_same_503(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "portal.db"
    shutil.copy(sqlite_template, path)
    settings = _settings(f"sqlite:///{path}", smtp_port=1, sqlite_busy_timeout=0.2)
    app = create_app(settings)
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    bearer = {"Authorization": f"Bearer {api_key(rt)}"}
    invite(rt)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            assert client.get("/").status_code == 200  # readers never wait (WAL)
            assert_unavailable_page(post_form(client, "/link", {"email": "jordan@example.com"}))
            assert_unavailable_api(client.get("/api/v1/clients", headers=bearer))  # audits
            assert_unavailable_fhir(client.get("/fhir/r4/Patient", headers=bearer))
            holder.execute("ROLLBACK")
            assert post_form(client, "/link", {"email": "jordan@example.com"}).status_code == 200
            assert client.get("/api/v1/clients", headers=bearer).status_code == 200
            assert client.get("/fhir/r4/Patient", headers=bearer).status_code == 200
    finally:
        holder.close()
        rt.engine.dispose()


def _wrapped(orig: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it (it picks the class from the driver's)."""
    return sa_exc.DBAPIError.instance("SELECT 1", {}, orig, Exception)


def test_only_outages_are_503s_not_bugs(sqlite_template: Path, tmp_path: Path) -> None:
    import psycopg

    assert is_outage(_wrapped(sqlite3.OperationalError("database is locked")))
    assert is_outage(_wrapped(psycopg.OperationalError("connection refused")))
    assert is_outage(_wrapped(psycopg.InterfaceError("the connection is closed")))
    assert is_outage(sa_exc.TimeoutError("QueuePool limit reached"))
    # A missing table is a deployment bug (SQLite calls it "operational" too); a duplicate a bug.
    missing = _wrapped(sqlite3.OperationalError("no such table: client"))
    assert not is_outage(missing)
    assert not is_outage(_wrapped(psycopg.errors.UniqueViolation("duplicate key")))
    assert not is_outage(ValueError("not a database error"))

    async def broken(request: Request) -> Response:
        raise missing

    path = tmp_path / "portal.db"
    shutil.copy(sqlite_template, path)
    app = create_app(
        _settings(f"sqlite:///{path}", smtp_port=1), extra_routes=[Route("/x", broken)]
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/x")
    assert answer.status_code == 500 and "Something went wrong" in answer.text
    app.state.runtime.engine.dispose()
