"""Outgoing webhooks: signed, batched, in order, retried until delivered, never lost.

A real HTTP receiver listens on loopback; the delivery pass is driven with a fixed clock."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import invite, settle_change_log
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal import cli as cli_module
from portal.app import create_app
from portal.audit import Actor, AuditEvent, RequestMeta
from portal.changes import Position
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.runtime import Runtime
from portal.settings import Settings
from portal.webhooks import admin, delivery, signing
from portal.webhooks.models import WebhookEndpoint

SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9_-]{43}$")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers the next queued status."""

    def __init__(self, port: int = 0, statuses: tuple[int, ...] = ()) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque(statuses)
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                status = receiver.statuses.popleft() if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                receiver.arrived.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_endpoint(rt: Runtime, url: str, name: str = "Acme EHR") -> tuple[str, str]:
    """A new endpoint (starting after every change so far); returns (id, secret)."""
    settle_change_log(rt)
    with transaction(rt.engine) as db:
        endpoint, secret = admin.create(
            db, url=url, name=name, actor=Actor("cli", "test"), meta=RequestMeta.none(),
            now=utcnow(),
        )  # fmt: skip
    return endpoint.id, secret


def endpoint(rt: Runtime, endpoint_id: str) -> WebhookEndpoint:
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def deliver(rt: Runtime, now: datetime) -> tuple[int, int]:
    settle_change_log(rt)
    return asyncio.run(delivery.deliver_once(rt.engine, rt.settings, now))


def new_client(rt: Runtime, n: int) -> str:
    enrollment, _ = invite(rt, name=f"Client Number{n}", email=f"client{n}@example.com")
    return enrollment.client_id


def client_ids(request: Received) -> list[str]:
    return [change["client_id"] for change in request.json["changes"]]


def test_a_change_is_one_signed_post_naming_the_client(rt: Runtime, receiver: Receiver) -> None:
    endpoint_id, secret = add_endpoint(rt, receiver.url)
    client_id = new_client(rt, 1)
    now = utcnow()

    assert deliver(rt, now) == (1, 0)

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    header = request.headers[signing.HEADER]
    assert re.fullmatch(rf"t={int(now.timestamp())},v1=[0-9a-f]{{64}}", header)
    assert signing.verify(secret, header, request.body, now.timestamp())
    document = request.json
    assert request.headers[signing.EVENT_ID_HEADER] == document["id"]
    assert document["id"] == f"{endpoint_id}:{document['next_cursor']}"
    assert document["type"] == "clients.changed"
    [change] = document["changes"]
    assert change["client_id"] == client_id
    assert change["client_url"] == f"/api/v1/clients/{client_id}"
    assert set(change["records"]) == {"client", "enrollment"}
    assert change["changed_at"].endswith("Z")
    # Thin: nothing that identifies the person travels in the body.
    assert b"Number1" not in request.body and b"client1@" not in request.body
    assert endpoint(rt, endpoint_id).cursor == Position.decode(document["next_cursor"])
    # Nothing new: no second request.
    assert deliver(rt, now + timedelta(minutes=1)) == (0, 0)
    assert len(receiver.requests) == 1


def test_the_signature_fails_for_another_body_secret_or_an_old_timestamp() -> None:
    body = b'{"id":"x"}'
    header = signing.header_value(["s3cret"], 1_700_000_000, body)
    assert signing.verify("s3cret", header, body, 1_700_000_000 + 299)
    assert not signing.verify("s3cret", header, body, 1_700_000_000 + 301)  # a replay
    assert not signing.verify("s3cret", header, body + b" ", 1_700_000_000)
    assert not signing.verify("other", header, body, 1_700_000_000)
    assert not signing.verify("s3cret", "v1=abc", body, 1_700_000_000)


def test_a_failing_receiver_gets_the_same_batch_until_it_answers_2xx(
    rt: Runtime, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 500, 200])
    endpoint_id, secret = add_endpoint(rt, receiver.url)
    first = new_client(rt, 1)
    t0 = utcnow()
    backoff = rt.settings.webhook_backoff_seconds

    assert deliver(rt, t0) == (0, 1)
    failing = endpoint(rt, endpoint_id)
    assert failing.attempts == 1 and failing.last_error == "HTTP 500"
    assert failing.failing_since == t0
    assert "FAILING" in admin.status(failing)
    start = failing.cursor

    second = new_client(rt, 2)  # arrives while the first batch is being retried
    assert deliver(rt, t0 + timedelta(seconds=backoff - 1)) == (0, 0)  # not due yet
    assert len(receiver.requests) == 1
    t1 = t0 + timedelta(seconds=backoff)
    assert deliver(rt, t1) == (0, 1)
    assert endpoint(rt, endpoint_id).cursor == start
    t2 = t1 + timedelta(seconds=2 * backoff)  # the delay doubles
    assert deliver(rt, t2 - timedelta(seconds=1)) == (0, 0)
    assert deliver(rt, t2) == (2, 0)  # the pinned batch, then the change that came meanwhile

    delivered, following = receiver.requests[2:]
    for attempt in receiver.requests[:3]:
        # The same batch each time: same body, same event id, so a receiver can de-duplicate.
        assert attempt.body == receiver.requests[0].body
        assert attempt.headers[signing.EVENT_ID_HEADER] == receiver.requests[0].json["id"]
    assert signing.verify(secret, delivered.headers[signing.HEADER], delivered.body, t2.timestamp())
    assert client_ids(delivered) == [first]
    assert client_ids(following) == [second]
    assert following.json["id"] != delivered.json["id"]
    recovered = endpoint(rt, endpoint_id)
    assert recovered.attempts == 0 and recovered.failing_since is None
    assert recovered.pending_batch_end is None
    assert recovered.last_success_at == t2
    assert deliver(rt, t2 + timedelta(hours=2)) == (0, 0)  # no duplicate after success
    assert len(receiver.requests) == 4


def test_a_receiver_that_is_down_loses_nothing(rt: Runtime) -> None:
    port = free_port()
    endpoint_id, secret = add_endpoint(rt, f"http://127.0.0.1:{port}/hook")
    start = endpoint(rt, endpoint_id).cursor
    client_id = new_client(rt, 1)
    t0 = utcnow()

    assert deliver(rt, t0) == (0, 1)
    down = endpoint(rt, endpoint_id)
    assert down.cursor == start
    assert down.last_error == "ConnectionRefusedError"

    for hour in range(1, 8):  # still down: the delay doubles up to an hour, and no further
        assert deliver(rt, t0 + timedelta(hours=hour)) == (0, 1)
    later = t0 + timedelta(hours=8)
    assert endpoint(rt, endpoint_id).next_attempt_at == later
    assert endpoint(rt, endpoint_id).attempts == 8
    assert endpoint(rt, endpoint_id).cursor == start

    back = Receiver(port=port)
    try:
        assert deliver(rt, later) == (1, 0)
        [request] = back.requests
        assert client_ids(request) == [client_id]
        assert signing.verify(
            secret, request.headers[signing.HEADER], request.body, later.timestamp()
        )
        assert endpoint(rt, endpoint_id).cursor > start
    finally:
        back.stop()


def test_many_changes_go_in_order_in_batches(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "BATCH_SIZE", 2)
    endpoint_id, _ = add_endpoint(rt, receiver.url)
    created = [new_client(rt, n) for n in range(5)]

    assert deliver(rt, utcnow()) == (3, 0)

    assert [len(r.json["changes"]) for r in receiver.requests] == [2, 2, 1]
    assert [cid for r in receiver.requests for cid in client_ids(r)] == created
    cursors = [Position.decode(r.json["next_cursor"]) for r in receiver.requests]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3
    assert endpoint(rt, endpoint_id).cursor == cursors[-1]


def test_changes_before_the_endpoint_existed_are_not_sent(rt: Runtime, receiver: Receiver) -> None:
    new_client(rt, 1)
    add_endpoint(rt, receiver.url)
    assert deliver(rt, utcnow()) == (0, 0)
    later = new_client(rt, 2)
    assert deliver(rt, utcnow()) == (1, 0)
    assert client_ids(receiver.requests[0]) == [later]


def test_a_redirect_is_a_failure_not_followed(rt: Runtime, receiver: Receiver) -> None:
    receiver.statuses.append(302)
    endpoint_id, _ = add_endpoint(rt, receiver.url)
    new_client(rt, 1)
    assert deliver(rt, utcnow()) == (0, 1)
    assert len(receiver.requests) == 1
    assert endpoint(rt, endpoint_id).last_error == "HTTP 302"


def test_a_disabled_endpoint_gets_nothing(rt: Runtime, receiver: Receiver) -> None:
    endpoint_id, _ = add_endpoint(rt, receiver.url)
    with transaction(rt.engine) as db:
        row = db.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        assert admin.disable(
            db, row, actor=Actor("cli", "t"), meta=RequestMeta.none(), now=utcnow()
        )
    new_client(rt, 1)
    assert deliver(rt, utcnow()) == (0, 0)
    assert receiver.requests == []


def test_a_leased_endpoint_is_not_claimed_twice(rt: Runtime, receiver: Receiver) -> None:
    endpoint_id, _ = add_endpoint(rt, receiver.url)
    new_client(rt, 1)
    settle_change_log(rt)
    now = utcnow()
    assert delivery.due_with_work(rt.engine, now) == [endpoint_id]
    assert [e.id for e in delivery.claim(rt.engine, [endpoint_id], now)] == [endpoint_id]
    assert delivery.claim(rt.engine, [endpoint_id], now) == []
    assert delivery.due_with_work(rt.engine, now) == []
    # A worker that died holding the lease delays delivery; it does not stop it.
    assert deliver(rt, now + delivery.LEASE + timedelta(seconds=1)) == (1, 0)


def test_a_stale_worker_cannot_move_the_cursor(rt: Runtime, receiver: Receiver) -> None:
    endpoint_id, _ = add_endpoint(rt, receiver.url)
    new_client(rt, 1)
    settle_change_log(rt)
    stale = endpoint(rt, endpoint_id)
    batch = delivery.payload.build(endpoint_id, delivery.pending(rt.engine, stale))
    assert deliver(rt, utcnow()) == (1, 0)
    assert not delivery.mark_delivered(rt.engine, stale, batch, utcnow())
    assert endpoint(rt, endpoint_id).cursor == batch.end


def test_after_a_rotation_both_secrets_sign_for_a_day(rt: Runtime, receiver: Receiver) -> None:
    endpoint_id, old = add_endpoint(rt, receiver.url)
    with transaction(rt.engine) as db:
        row = db.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        new = admin.rotate_secret(
            db, row, actor=Actor("cli", "t"), meta=RequestMeta.none(), now=utcnow()
        )
    assert SECRET_RE.match(new) and new != old
    new_client(rt, 1)
    now = utcnow()
    assert deliver(rt, now) == (1, 0)
    request = receiver.requests[0]
    header = request.headers[signing.HEADER]
    assert header.count("v1=") == 2
    assert signing.verify(new, header, request.body, now.timestamp())
    assert signing.verify(old, header, request.body, now.timestamp())

    new_client(rt, 2)
    tomorrow = now + admin.ROTATION_GRACE + timedelta(seconds=1)
    assert deliver(rt, tomorrow) == (1, 0)
    header = receiver.requests[1].headers[signing.HEADER]
    assert header.count("v1=") == 1
    assert signing.verify(new, header, receiver.requests[1].body, tomorrow.timestamp())
    assert not signing.verify(old, header, receiver.requests[1].body, tomorrow.timestamp())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "Give the URL"),
        ("http://ehr.example/hook", "must use https://"),
        ("ftp://ehr.example/hook", "must start with https://"),
        ("https:///hook", "must start with https://"),
        ("ehr.example/hook", "must start with https://"),
        ("https://user:pw@ehr.example/hook", "no user name or password"),
        ("https://ehr.example/hook#part", "#fragment"),
        ("https://ehr.example:99999/hook", "port"),
        ("https://ehr.example/a hook", "spaces"),
        ("https://ehr.example/" + "a" * 2000, "too long"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(admin.WebhookError, match=re.escape(problem)):
        admin.clean_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example/hook",
        "https://ehr.example:8443/hooks/portal?tenant=4",
        "http://localhost:9000/hook",
        "http://127.0.0.1/hook",
        "http://[::1]:8080/hook",
    ],
)
def test_https_and_local_http_urls_are_accepted(url: str) -> None:
    assert admin.clean_url(f"  {url} ") == url


def test_the_demo_allows_any_http_url() -> None:
    assert admin.clean_url("http://ehr.lan/hook", allow_any_http=True) == "http://ehr.lan/hook"
    with pytest.raises(admin.WebhookError):
        admin.clean_url("ftp://ehr.lan/hook", allow_any_http=True)


def test_names_are_checked_and_default_to_the_host(rt: Runtime) -> None:
    assert admin.clean_name(None, "https://ehr.example/hook") == "ehr.example"
    assert admin.clean_name("  Acme   EHR ", "https://ehr.example/hook") == "Acme EHR"
    with pytest.raises(admin.WebhookError, match="letters, digits"):
        admin.clean_name("<script>", "https://ehr.example/hook")
    add_endpoint(rt, "https://ehr.example/hook", name="Acme")
    with pytest.raises(admin.WebhookError, match="exists already"):
        add_endpoint(rt, "https://other.example/hook", name="Acme")


def test_management_and_deliveries_are_audited_without_secrets(
    rt: Runtime, receiver: Receiver
) -> None:
    endpoint_id, secret = add_endpoint(rt, receiver.url)
    new_client(rt, 1)
    assert deliver(rt, utcnow()) == (1, 0)
    with transaction(rt.engine) as db:
        row = db.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        actor, meta, now = Actor("cli", "t"), RequestMeta.none(), utcnow()
        rotated = admin.rotate_secret(db, row, actor=actor, meta=meta, now=now)
        admin.disable(db, row, actor=actor, meta=meta, now=now)
        assert not admin.disable(db, row, actor=actor, meta=meta, now=now)
        with pytest.raises(admin.WebhookError, match="disabled"):
            admin.rotate_secret(db, row, actor=actor, meta=meta, now=now)
    with transaction(rt.engine, read_only=True) as db:
        events = db.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_id == endpoint_id)
            .order_by(col(AuditEvent.id))
        ).all()
    assert [e.action for e in events] == [
        "webhook.created",
        "webhook.delivered",
        "webhook.secret_rotated",
        "webhook.disabled",
    ]
    created, delivered, _, _ = events
    assert created.actor == "cli:test" and created.detail == {
        "name": "Acme EHR",
        "host": "127.0.0.1",
    }
    assert delivered.actor == "system:webhooks"
    assert delivered.detail["changes"] == 1
    assert delivered.detail["event_id"] == receiver.requests[0].json["id"]
    assert delivered.detail["to"] == receiver.requests[0].json["next_cursor"]
    text = json.dumps([e.detail for e in events])
    assert secret not in text and rotated not in text and "Number1" not in text


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


def test_cli_add_list_remove_and_rotate(run, rt: Runtime, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    added = run("webhook", "add", receiver.url, "--name", "Acme EHR")
    assert added.exit_code == 0, added.output
    secret = added.output.strip().splitlines()[-1]
    assert SECRET_RE.match(secret)

    listed = run("webhook", "list")
    assert listed.exit_code == 0
    assert "Acme EHR" in listed.output and receiver.url in listed.output
    assert "nothing delivered yet" in listed.output and secret not in listed.output

    new_client(rt, 1)
    settle_change_log(rt)
    worker = run("mail-worker", "--once")
    assert worker.exit_code == 0 and "Webhook batches delivered 1" in worker.output
    [request] = receiver.requests
    assert signing.verify(
        secret, request.headers[signing.HEADER], request.body, utcnow().timestamp()
    )
    assert "ok, last delivery" in run("webhook", "list").output

    rotated = run("webhook", "rotate-secret", "Acme EHR")
    assert rotated.exit_code == 0 and SECRET_RE.match(rotated.output.strip().splitlines()[-1])

    removed = run("webhook", "remove", "Acme EHR")
    assert removed.exit_code == 0 and "Disabled 'Acme EHR'" in removed.output
    assert "disabled" in run("webhook", "list").output
    assert "was disabled" in run("webhook", "remove", "Acme EHR").output
    new_client(rt, 2)
    settle_change_log(rt)
    run("mail-worker", "--once")
    assert len(receiver.requests) == 1  # a disabled endpoint gets nothing more

    with transaction(rt.engine, read_only=True) as db:
        assert len(db.exec(select(WebhookEndpoint)).all()) == 1  # kept, not deleted


def test_cli_explains_refusals(run) -> None:  # type: ignore[no-untyped-def]
    assert "No webhooks yet" in run("webhook", "list").output
    bad = run("webhook", "add", "http://ehr.example/hook")
    assert bad.exit_code == 1 and "must use https://" in bad.output
    missing = run("webhook", "remove", "Nobody")
    assert missing.exit_code == 1 and "No webhook has that name" in missing.output
    missing = run("webhook", "rotate-secret", "Nobody")
    assert missing.exit_code == 1 and "No webhook has that name" in missing.output
    default_name = run("webhook", "add", "https://ehr.example/hook")
    assert default_name.exit_code == 0 and "'ehr.example'" in default_name.output
    again = run("webhook", "add", "https://ehr.example/other")
    assert again.exit_code == 1 and "exists already" in again.output


def test_the_app_delivers_webhooks_when_it_delivers_mail(
    settings: Settings, rt: Runtime, receiver: Receiver
) -> None:
    add_endpoint(rt, receiver.url)
    client_id = new_client(rt, 1)
    settle_change_log(rt)
    app = create_app(settings.model_copy(update={"mail_in_process": True}))
    with TestClient(app):  # the lifespan's first pass runs at once
        assert receiver.arrived.wait(timeout=10)
    app.state.runtime.engine.dispose()
    assert client_ids(receiver.requests[0]) == [client_id]


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The receiver-side check exactly as the README shows it."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    match = re.search(r"```python\n(import hashlib\n.*?def verify\(.*?)```", readme, re.S)
    assert match, "the README's webhook verification snippet is missing"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # noqa: S102 - our own README
    return namespace["verify"]  # type: ignore[no-any-return]


def test_the_readme_snippet_verifies_a_real_delivery(rt: Runtime, receiver: Receiver) -> None:
    verify = readme_verify()
    _, secret = add_endpoint(rt, receiver.url)
    new_client(rt, 1)
    assert deliver(rt, utcnow()) == (1, 0)
    [request] = receiver.requests
    header = request.headers[signing.HEADER]
    assert verify(secret, header, request.body)
    assert not verify(secret, header, request.body.replace(b"clients", b"client5"))
    assert not verify("whsec_" + "x" * 43, header, request.body)
    stale = signing.header_value([secret], int(utcnow().timestamp()) - 301, request.body)
    assert not verify(secret, stale, request.body)  # a replay
