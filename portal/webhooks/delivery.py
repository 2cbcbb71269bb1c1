"""Delivers the change log to webhook endpoints: in `portal serve` or in `portal mail-worker`.

The change log is the outbox (it commits with every change). Each endpoint keeps its own
cursor; a pass reads the changes after it (never beyond the safe horizon), POSTs them in order
in batches, and moves the cursor only after a 2xx. A failed batch is pinned (its end is stored)
and retried with exponential backoff, capped at an hour, forever: a receiver that is down for
a week gets everything when it is back, in order, each batch under its original event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import IO, Any
from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, Request, build_opener

from sqlalchemy import Engine, or_, update
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from portal import audit, changes
from portal.audit import Actor
from portal.changes import ClientChange
from portal.db import is_outage, transaction, utcnow
from portal.settings import Settings
from portal.webhooks import payload, signing
from portal.webhooks.models import WebhookEndpoint

log = logging.getLogger("portal.webhooks")

BATCH_SIZE = 100
BATCHES_PER_PASS = 10  # then the other endpoints get their turn
LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
USER_AGENT = "intake-portal-webhooks/1"
ACTOR = Actor("system", "webhooks")

Clock = Callable[[], datetime]


class _NoRedirects(HTTPRedirectHandler):
    # A redirect is reported as a failure: following it could send client ids somewhere else.
    def redirect_request(
        self, req: Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        return None


_opener = build_opener(_NoRedirects())


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST and return the status code; raises OSError (URLError, timeouts) when nothing came
    back. The standard library suffices for one small POST per batch and adds no dependency."""
    request = Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - https/http only (validated)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except HTTPError as exc:
        exc.close()
        return exc.code


def describe(exc: BaseException) -> str:
    """What went wrong, for the admin and the log (no URL, no body)."""
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return type(exc.reason).__name__
    if isinstance(exc, URLError):
        return f"URLError: {str(exc.reason)[:100]}"
    return type(exc).__name__


def due_with_work(engine: Engine, now: datetime) -> list[str]:
    """Active, due, unleased endpoints with changes waiting; only reads, so idle costs no write."""
    with transaction(engine, read_only=True) as db:
        endpoints = db.exec(_due(now)).all()
        return [e.id for e in endpoints if changes.read(db, e.cursor, 1)]


def _due(now: datetime) -> Any:
    return (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.disabled_at).is_(None))
        .where(col(WebhookEndpoint.next_attempt_at) <= now)
        .where(
            or_(
                col(WebhookEndpoint.locked_until).is_(None),
                col(WebhookEndpoint.locked_until) < now,
            )
        )
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )


def claim(engine: Engine, ids: list[str], now: datetime) -> list[WebhookEndpoint]:
    """Lease these endpoints to this worker; another worker skips them until the lease ends."""
    with transaction(engine) as db:
        query = _due(now).where(col(WebhookEndpoint.id).in_(ids))
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows: list[WebhookEndpoint] = list(db.exec(query))
        for row in rows:
            row.locked_until = now + LEASE
            db.add(row)
        return rows


def pending(engine: Engine, endpoint: WebhookEndpoint) -> list[ClientChange]:
    """The next batch: after the cursor and, when a batch failed before, exactly that batch."""
    with transaction(engine, read_only=True) as db:
        rows = changes.read(db, endpoint.cursor, BATCH_SIZE)
    end = endpoint.pending_batch_end
    if end is not None:
        rows = [row for row in rows if changes.position_of(row) <= end]
    return rows


def _unchanged(endpoint: WebhookEndpoint) -> Any:
    # Guards every write: if the lease ran out and another worker moved on, we change nothing.
    return (
        (col(WebhookEndpoint.id) == endpoint.id)
        & (col(WebhookEndpoint.cursor_txid) == endpoint.cursor_txid)
        & (col(WebhookEndpoint.cursor_seq) == endpoint.cursor_seq)
    )


def mark_delivered(
    engine: Engine, endpoint: WebhookEndpoint, batch: payload.Batch, now: datetime
) -> bool:
    """Move the cursor past `batch` and audit the delivery; False if another worker moved it."""
    with transaction(engine) as db:
        result: Any = db.execute(
            update(WebhookEndpoint)
            .where(_unchanged(endpoint))
            .values(
                cursor_txid=batch.end.txid,
                cursor_seq=batch.end.seq,
                batch_txid=None,
                batch_seq=None,
                attempts=0,
                failing_since=None,
                last_error=None,
                last_attempt_at=now,
                last_success_at=now,
            )
        )
        if result.rowcount != 1:
            return False
        audit.record(
            db, ACTOR, "webhook.delivered", "webhook_endpoint", endpoint.id,
            name=endpoint.name, event_id=batch.event_id, changes=batch.count,
            after=endpoint.cursor.encode(), to=batch.end.encode(),
        )  # fmt: skip
    endpoint.cursor_txid, endpoint.cursor_seq = batch.end.txid, batch.end.seq
    endpoint.batch_txid = endpoint.batch_seq = None
    return True


def mark_failed(
    engine: Engine,
    endpoint: WebhookEndpoint,
    batch: payload.Batch,
    error: str,
    backoff_seconds: float,
    now: datetime,
) -> None:
    """Pin the batch and retry it later: backoff doubles per attempt, capped at MAX_BACKOFF."""
    attempts = endpoint.attempts + 1
    delay = min(timedelta(seconds=backoff_seconds * (2 ** min(attempts - 1, 20))), MAX_BACKOFF)
    with transaction(engine) as db:
        db.execute(
            update(WebhookEndpoint)
            .where(_unchanged(endpoint))
            .values(
                batch_txid=batch.end.txid,
                batch_seq=batch.end.seq,
                attempts=attempts,
                failing_since=endpoint.failing_since or now,
                last_error=error[:500],
                last_attempt_at=now,
                next_attempt_at=now + delay,
                locked_until=None,
            )
        )
    log.warning("webhook %r not delivered (attempt %s): %s", endpoint.name, attempts, error)


def release(engine: Engine, endpoint: WebhookEndpoint) -> None:
    with transaction(engine) as db:
        db.execute(
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) == endpoint.id)
            .where(col(WebhookEndpoint.locked_until) == endpoint.locked_until)
            .values(locked_until=None)
        )


def headers_for(endpoint: WebhookEndpoint, batch: payload.Batch, now: datetime) -> dict[str, str]:
    live = [endpoint.secret]
    grace = endpoint.previous_secret_until
    if endpoint.previous_secret and grace is not None and grace > now:
        live.append(endpoint.previous_secret)
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.EVENT_ID_HEADER: batch.event_id,
        signing.HEADER: signing.header_value(live, timestamp, batch.body),
    }


async def deliver_endpoint(
    engine: Engine, settings: Settings, endpoint: WebhookEndpoint, clock: Clock
) -> tuple[int, int]:
    """Send this endpoint's batches in order until it is caught up, fails, or had its turn."""
    delivered = 0
    try:
        for _ in range(BATCHES_PER_PASS):
            rows = await run_in_threadpool(pending, engine, endpoint)
            if not rows:
                break
            batch = payload.build(endpoint.id, rows)
            now = clock()
            try:
                status = await run_in_threadpool(
                    post, endpoint.url, batch.body, headers_for(endpoint, batch, now),
                    settings.webhook_timeout,
                )  # fmt: skip
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except (OSError, HTTPException, ValueError) as exc:
                error = describe(exc)
            if error is not None:
                await run_in_threadpool(
                    mark_failed, engine, endpoint, batch, error,
                    settings.webhook_backoff_seconds, clock(),
                )  # fmt: skip
                return delivered, 1
            if not await run_in_threadpool(mark_delivered, engine, endpoint, batch, clock()):
                log.warning("webhook %r: another worker moved the cursor", endpoint.name)
                break
            delivered += 1
    finally:
        await run_in_threadpool(release, engine, endpoint)
    return delivered, 0


async def deliver_once(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> tuple[int, int]:
    """One pass over every endpoint with work; `now` fixes the clock (tests). Returns
    (batches delivered, failed attempts)."""

    def clock() -> datetime:
        return now or utcnow()

    ids = await run_in_threadpool(due_with_work, engine, clock())
    if not ids:
        return 0, 0
    claimed = await run_in_threadpool(claim, engine, ids, clock())
    results = await asyncio.gather(
        *(deliver_endpoint(engine, settings, endpoint, clock) for endpoint in claimed)
    )
    return sum(r[0] for r in results), sum(r[1] for r in results)


class WebhookLoop:
    """Polls the change log for every endpoint, like the mail DeliveryLoop polls the outbox."""

    def __init__(self, engine: Engine, settings: Settings, interval: float = 5.0) -> None:
        self.engine = engine
        self.settings = settings
        self.interval = interval
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await deliver_once(self.engine, self.settings)
            except Exception as exc:  # the loop must outlive a database outage
                if is_outage(exc):  # expected while it lasts: one line, the next pass retries
                    log.warning(
                        "webhook delivery pass: database unavailable (%s)", type(exc).__name__
                    )
                else:
                    log.exception("webhook delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
