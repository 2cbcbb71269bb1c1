"""SMTP down, slow, or refusing: pages stay fast, mail waits in the outbox, and is delivered
once the server is back, each message exactly once (counted by Message-ID at a real server).

Each scenario runs the app with its own delivery loop (as `portal serve` does) while staff invite
and a client goes through the whole journey, timing every request; then the app stops, the test
runs one delivery pass against the faulty server, restores it and drives delivery to the end.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import PRACTICE
from helpers import (
    make_staff,
    post_form,
    publish_default,
    staff_sign_in,
    start_journey,
    submit_step,
)
from httpx2 import Response
from sqlmodel import col, select
from starlette.testclient import TestClient
from test_signature_step import sign

from portal.app import create_app
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher, _Handler
from portal.mailer import deliver_due
from portal.models import Practice
from portal.outbox import MailStatus, OutboxMessage, retry_now
from portal.runtime import Runtime
from portal.settings import Settings

HOLD = 15.0  # the slow server sits on each message until released, or this long
FAST = 3.0  # every page answers well within that


@dataclass
class FaultyHandler(_Handler):
    """The catcher's handler, with test faults: slow (each message is held until `release()`,
    at most HOLD seconds) and a hook after each accepted mail."""

    slow: bool = False
    holding: int = 0  # messages the server is sitting on right now
    held: int = 0  # messages it sat on, in all
    after_accept: Callable[[], None] | None = None

    def release(self) -> None:
        self.slow = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.slow:
            self.holding += 1
            self.held += 1
            deadline = time.monotonic() + HOLD
            while self.slow and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # the server's own loop: slow, not stuck
            self.holding -= 1
        reply = await super().handle_DATA(server, session, envelope)
        if self.after_accept is not None and reply.startswith("250"):
            self.after_accept()
        return reply


class FaultySmtp(MailCatcher):
    """A real SMTP server that can be stopped and started again on the same port, made slow,
    or made to refuse (`reject`)."""

    def __init__(self) -> None:
        super().__init__()
        self.faults = FaultyHandler()
        self._handler = self.faults
        self.running = False

    def start(self) -> FaultySmtp:
        # aiosmtpd's controller cannot start twice: a restart is a new one on the same port.
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:  # a test may have left it stopped
            super().stop()
            self.running = False

    def message_ids(self) -> list[str]:
        """The local part of each received Message-ID (the outbox row's message_id)."""
        return [str(m.message["Message-ID"]).strip("<>").split("@", 1)[0] for m in self.mails]


@pytest.fixture
def smtp() -> Iterator[FaultySmtp]:
    server = FaultySmtp().start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Figures:
    queued: int
    delivered: int
    lost: int
    duplicated: int


def figures(rt: Runtime, smtp: FaultySmtp) -> Figures:
    with transaction(rt.engine, read_only=True) as db:
        queued = set(db.exec(select(OutboxMessage.message_id)))
    received = Counter(smtp.message_ids())
    delivered = queued & set(received)
    return Figures(
        queued=len(queued),
        delivered=len(delivered),
        lost=len(queued - delivered),
        duplicated=sum(n - 1 for n in received.values()),
    )


def statuses(rt: Runtime) -> list[MailStatus]:
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(OutboxMessage.status).order_by(col(OutboxMessage.id))))


def deliver(rt: Runtime) -> tuple[int, int]:
    return asyncio.run(deliver_due(rt.engine, rt.settings))


class Stopwatch:
    """Times requests; the slowest one is what the test holds against the server's delay."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, label: str, request: Callable[[], Response]) -> Response:
        started = time.perf_counter()
        response = request()
        self.timings[label] = time.perf_counter() - started
        return response


def busy_morning(client: TestClient, rt: Runtime, timed: Stopwatch) -> None:
    """Staff invite a client and a client goes through every step, as on any morning:
    each of these requests queues mail or happens while mail is being sent."""
    staff = make_staff(rt)
    assert staff_sign_in(client, staff).status_code == 303
    invited = timed(
        "staff invite",
        lambda: post_form(client, "/staff/invite", {"name": "Jo Park", "email": "jo@example.com"}),
    )
    assert invited.status_code == 303
    client.cookies.clear()
    asked = timed("request a link", lambda: post_form(client, "/link", {"email": "jo@example.com"}))
    assert asked.status_code == 200

    start_journey(client, rt, name="Jordan Rivers", email="jordan@example.com")
    steps: list[tuple[str, dict[str, str]]] = [
        ("policy", {"policy_version": "1"}),
        (
            "contact",
            {
                "phone_0_number": "(206) 555-0148",
                "phone_0_kind": "cell",
                "phone_0_voicemail": "none",
                "email_address": "jordan.r@example.com",
                "email_warning_accepted": "yes",
                "action": "save",
            },
        ),
        ("testimonial", {"choice": "anonymous", "placement_website": "yes"}),
    ]
    for key, data in steps:
        moved = timed(f"step {key}", lambda: submit_step(client, key, data))  # noqa: B023
        assert moved.status_code == 303, (key, moved.text)
    who = {"phase": "who", "action": "save", "party": "individual"}
    assert timed("sign: who signs", lambda: submit_step(client, "sign", who)).status_code == 200
    signed = timed("sign (completes, queues the receipt)", lambda: sign(client, "Jordan Rivers"))
    assert signed.headers["location"] == "/onboarding/done"


MODES = ["stopped", "slow", "421", "451", "550"]
REPLIES = {
    "421": "421 4.3.2 Service shutting down, try again later",
    "451": "451 4.3.0 Temporary local problem, try again later",
    "550": "550 5.7.1 Message refused",
}


@pytest.mark.parametrize("mode", MODES)
def test_mail_waits_out_an_smtp_fault_and_pages_stay_fast(
    settings: Settings, smtp: FaultySmtp, mode: str
) -> None:
    # The fault, in place before the app starts.
    if mode == "stopped":
        smtp.stop()
    elif mode == "slow":
        smtp.faults.slow = True
    else:
        smtp.reject(REPLIES[mode])
    live = settings.model_copy(
        update={"smtp_port": smtp.port, "mail_in_process": True, "smtp_timeout": 2 * HOLD}
    )
    app = create_app(live)
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    publish_default(rt)

    timed = Stopwatch()
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        busy_morning(client, rt, timed)
        if mode == "slow":  # every page answered while the server sat on a message
            assert smtp.faults.holding == 1, "the delivery loop was not mid-send"
            smtp.faults.release()
    # The app has stopped (its delivery loop with it); no mail was lost on the way.
    slowest = max(timed.timings, key=timed.timings.__getitem__)
    print(f"\n[{mode}] slowest request: {slowest} {timed.timings[slowest] * 1000:.0f} ms")
    assert timed.timings[slowest] < FAST, timed.timings

    # One pass against the faulty server: nothing gets through, nothing is dropped.
    if mode != "slow":
        sent, failed = deliver(rt)
        assert sent == 0 and len(smtp.mails) == 0
        if mode == "550":  # refused for good (by the loop already): kept, for an admin to see
            assert set(statuses(rt)) == {MailStatus.FAILED}
        else:  # waiting for the next try
            assert set(statuses(rt)) == {MailStatus.PENDING} and failed == len(statuses(rt))

    # The server is back (a 550 was final: the admin's "Retry now" puts the mail back).
    if mode == "stopped":
        smtp.start()
    smtp.reject(None)
    if mode == "550":
        with transaction(rt.engine) as db:
            for row in db.exec(select(OutboxMessage)):
                assert row.id is not None
                assert retry_now(db, row.id, utcnow()) is not None
    for _ in range(5):
        if set(statuses(rt)) == {MailStatus.SENT}:
            break
        deliver(rt)

    result = figures(rt, smtp)
    print(
        f"[{mode}] emails queued {result.queued}, delivered {result.delivered}, "
        f"lost {result.lost}, duplicated {result.duplicated}"
    )
    # An invitation from staff, a link on request, the client's invitation, the receipt.
    assert result == Figures(queued=4, delivered=4, lost=0, duplicated=0)
    assert set(statuses(rt)) == {MailStatus.SENT}
    rt.engine.dispose()
