"""Three app processes and three mail workers on one PostgreSQL database, under concurrent load.

Staff invite clients through the app processes; the invitations go out through the workers; the
clients follow their emailed links and complete their journeys, moving between processes (the
session lives in the database); half of them ask for a resume link on the way. Meanwhile an EHR
polls the change feed of one process. Then: every queued email reached the SMTP server exactly
once (counted per Message-ID), and the feed named every change of every client.

And a worker whose lease on a message ran out (a slow SMTP server earlier in its batch) does not
send what another worker has claimed since.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from helpers import api_key, make_staff, publish_default, settle_change_log
from http_journey import browser, csrf, finish_journey, link_path, open_link, submit
from processes import running, start_mail_worker, start_server, wait_ready
from sqlalchemy import text

from portal import outbox
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher
from portal.mailer import deliver_due
from portal.outbox import Mail, MailStatus, OutboxMessage
from portal.runtime import Runtime
from portal.settings import Settings

APPS = 3
WORKERS = 3
CLIENTS = 24
DEADLINE = 120.0  # a bound for a stuck run, not a timing goal
# Records written one row per transaction: each row must show up as a feed entry naming it.
PER_ROW_TABLES = {
    "contact_preference": "SELECT client_id, count(*) FROM contact_preference GROUP BY 1",
    "acknowledgement": "SELECT client_id, count(*) FROM acknowledgement GROUP BY 1",
    "signature": (
        "SELECT a.client_id, count(*) FROM signature s "
        "JOIN acknowledgement a ON a.id = s.acknowledgement_id GROUP BY 1"
    ),
    "testimonial_decision": "SELECT client_id, count(*) FROM testimonial_decision GROUP BY 1",
    "client": "SELECT id, count(*) FROM client GROUP BY 1",
}


def client_name(i: int) -> str:
    """A name (letters only, as the invite form wants) unique to client `i`."""
    return f"Client {chr(ord('A') + i // 26)}{chr(ord('a') + i % 26)}ton"


class FeedReader:
    """An EHR polling GET /api/v1/changes page by page with its cursor, while the load runs."""

    def __init__(self, base: str, secret: str) -> None:
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        )
        self.cursor: str | None = None
        self.entries: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.error: BaseException | None = None

    def page(self) -> bool:
        """Read one page; True when there is more to read right now."""
        params = {"limit": "50", **({"after": self.cursor} if self.cursor else {})}
        response = self.http.get("/api/v1/changes", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        self.entries.extend(body["changes"])
        self.cursor = body["next_cursor"]
        return bool(body["has_more"])

    def _poll(self) -> None:
        try:
            while not self.stopping.is_set():
                if not self.page():
                    self.stopping.wait(0.05)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def drain_to(self, head: str) -> None:
        """Stop polling in the background, then read until the cursor reaches `head`."""
        self.stopping.set()
        self.thread.join(timeout=30)
        assert self.error is None, self.error
        deadline = time.monotonic() + 30
        while self.page() or self.cursor != head:
            assert time.monotonic() < deadline, "the feed did not reach the log's head"
        self.http.close()


def invite_all(bases: list[str], staff_email: str, count: int) -> None:
    """One staff browser per app process; invitations spread over the processes."""
    staff = [browser(base) for base in bases]
    for member in staff:
        member.get("/staff/login")
        signed_in = member.post(
            "/staff/login",
            data={
                "email": staff_email,
                "password": "correct horse battery staple",
                "csrf_token": csrf(member),
            },
        )
        assert signed_in.status_code == 303, signed_in.text[:300]
    locks = [threading.Lock() for _ in staff]

    def invite(i: int) -> None:
        member = staff[i % len(staff)]
        with locks[i % len(staff)]:
            response = member.post(
                "/staff/invite",
                data={
                    "name": client_name(i),
                    "email": f"client{i}@example.com",
                    "csrf_token": csrf(member),
                },
            )
        assert response.status_code == 303, response.text[:300]

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(invite, range(count)))
    for member in staff:
        member.close()


def journey(bases: list[str], i: int, path: str) -> None:
    """Start on one process, continue on the next (the session is in the database)."""
    first, second = bases[i % len(bases)], bases[(i + 1) % len(bases)]
    with browser(first) as tab:
        assert open_link(tab, path).status_code == 303
        assert submit(tab, "policy", {}).status_code == 303
        if i % 2 == 0:  # "finish later": a resume link by email
            later = tab.post("/onboarding/later", data={"csrf_token": csrf(tab)})
            assert later.status_code == 200
        cookies = tab.cookies
        with browser(second, cookies) as other:
            finish_journey(other, email=f"client{i}.home@example.com")


def wait_for_outbox(rt: Runtime, mail: MailCatcher, deadline: float) -> list[str]:
    """Every outbox row sent (and seen by the SMTP server); returns their message ids."""
    while True:
        with transaction(rt.engine, read_only=True) as db:
            rows = db.execute(text("SELECT message_id, status FROM outbox_message")).all()
        caught = {m.message["Message-ID"] for m in mail.mails}
        if rows and all(
            status == MailStatus.SENT and any(mid in c for c in caught) for mid, status in rows
        ):
            return [mid for mid, _ in rows]
        assert time.monotonic() < deadline, Counter(status for _, status in rows)
        time.sleep(0.1)


@pytest.mark.postgresql_only
def test_many_processes_lose_and_duplicate_no_mail_and_miss_no_change(
    settings: Settings, rt: Runtime, mail: MailCatcher, tmp_path: Path
) -> None:
    started = time.monotonic()
    publish_default(rt)
    staff_email = make_staff(rt, "front_desk")
    secret = api_key(rt, "clients:read")
    env = {"PORTAL_API_RATE_PER_MINUTE": "100000"}
    apps = [start_server(settings, tmp_path, f"serve-{n}", wait=False, **env) for n in range(APPS)]
    workers = [start_mail_worker(settings, tmp_path, f"mail-worker-{n}") for n in range(WORKERS)]
    with running(*apps, *workers):
        for app in apps:
            wait_ready(app)
        bases = [app.base_url for app in apps if app.base_url]
        ready = time.monotonic() - started
        feed = FeedReader(bases[0], secret)
        feed.thread.start()

        invite_all(bases, staff_email, CLIENTS)
        invitations = mail.wait_for(CLIENTS, timeout=DEADLINE)
        links = {m.envelope_to[0]: link_path(m.text) for m in invitations}
        with ThreadPoolExecutor(8) as pool:
            done = pool.map(
                lambda i: journey(bases, i, links[f"client{i}@example.com"]), range(CLIENTS)
            )
            list(done)

        queued = wait_for_outbox(rt, mail, started + DEADLINE)
        feed.drain_to(settle_change_log(rt).encode())
        for worker in workers:
            assert worker.alive(), worker.log()[-2000:]
    # Every process is stopped: whatever they sent has arrived.
    seen = Counter(m.message["Message-ID"] for m in mail.mails)
    by_id = {mid: sum(n for header, n in seen.items() if mid in header) for mid in queued}
    delivered = sum(1 for n in by_id.values() if n >= 1)
    lost = sum(1 for n in by_id.values() if n == 0)
    duplicated = sum(n - 1 for n in by_id.values() if n > 1)
    print(
        f"\n{APPS} app processes, {WORKERS} mail workers, {CLIENTS} journeys: emails queued "
        f"{len(queued)}, delivered {delivered}, lost {lost}, duplicated {duplicated}; "
        f"feed entries {len(feed.entries)}; {time.monotonic() - started:.1f}s "
        f"({ready:.1f}s to start the processes)"
    )
    # Invitations, receipts, and the resume links half the clients asked for.
    assert len(queued) == CLIENTS * 2 + CLIENTS // 2
    assert (delivered, lost, duplicated) == (len(queued), 0, 0)
    assert len(mail.mails) == len(queued)

    named: Counter[tuple[str, str]] = Counter()
    for entry in feed.entries:
        for table in entry["records"]:
            named[entry["client_id"], table] += 1
    with transaction(rt.engine, read_only=True) as db:
        for table, query in PER_ROW_TABLES.items():
            rows = db.execute(text(query)).all()
            assert len(rows) == CLIENTS, table
            for client_id, count in rows:
                assert named[client_id, table] >= count, (table, client_id)


def test_a_worker_whose_lease_lapsed_leaves_the_mail_to_the_worker_that_claimed_it(
    rt: Runtime, mail: MailCatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(rt.engine) as db:
        for n in range(3):
            outbox.enqueue(db, Mail("test", f"client{n}@example.com", "Hello", "Hello."))
    start = utcnow()
    stuck = outbox.claim_due(rt.engine, now=start)  # then stuck behind a slow SMTP server
    later = start + outbox.LEASE + timedelta(seconds=1)
    other = outbox.claim_due(rt.engine, now=later)  # the lease ran out: another worker claims
    assert [row.id for row in other] == [row.id for row in stuck] != []

    def deliver(rows: list[OutboxMessage]) -> tuple[int, int]:
        monkeypatch.setattr(outbox, "claim_due", lambda engine: rows)
        return asyncio.run(deliver_due(rt.engine, rt.settings))

    assert deliver(stuck) == (0, 0)  # the stuck worker comes back: its lease is gone
    assert deliver(other) == (3, 0)
    assert sorted(m.envelope_to[0] for m in mail.mails) == [
        f"client{n}@example.com" for n in range(3)
    ]
