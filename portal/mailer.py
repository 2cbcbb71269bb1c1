"""Delivers the outbox over SMTP with aiosmtplib: in `portal serve` or in `portal mail-worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from portal import outbox
from portal.db import is_outage
from portal.outbox import OutboxMessage
from portal.settings import Settings, SmtpTls

log = logging.getLogger("portal.mail")


def build_message(settings: Settings, row: OutboxMessage) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.to_addr
    message["Subject"] = row.subject
    message["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
    # Stable per outbox row: a retry after an unclear failure can be de-duplicated by receivers.
    domain = settings.mail_from.rsplit("@", 1)[-1].strip("> ") or "localhost"
    message["Message-ID"] = f"<{row.message_id}@{domain}>"
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    if row.attachment is not None and row.attachment_name:
        message.add_attachment(
            row.attachment, maintype="application", subtype="pdf", filename=row.attachment_name
        )
    return message


async def send(settings: Settings, message: EmailMessage) -> None:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password,
        use_tls=settings.smtp_tls is SmtpTls.TLS,
        # A failed STARTTLS raises; it never falls back to plain text.
        start_tls=settings.smtp_tls is SmtpTls.STARTTLS,
        timeout=settings.smtp_timeout,
    )


async def deliver_due(
    engine: Engine, settings: Settings, stopping: Callable[[], bool] = lambda: False
) -> tuple[int, int]:
    """Send what is due now. Returns (sent, failed attempts)."""
    rows = await run_in_threadpool(outbox.claim_due, engine)
    sent = failed = 0
    for row in rows:
        assert row.id is not None
        if not await run_in_threadpool(outbox.keep_lease, engine, row):
            continue  # another worker holds it now: sending it here too would duplicate it
        try:
            await send(settings, build_message(settings, row))
        except Exception as exc:  # one bad message must not stall the others
            failed += 1
            error, permanent = describe(exc)
            # The row id and the error class only: addresses and subjects identify clients.
            log.warning("mail %s not delivered (attempt %s): %s", row.id, row.attempts + 1, error)
            await run_in_threadpool(
                outbox.mark_failed,
                engine,
                row,
                error,
                settings.mail_backoff_seconds,
                permanent=permanent,
            )
        else:
            sent += 1
            await record_sent(engine, row.id, stopping)
    return sent, failed


async def record_sent(engine: Engine, row_id: int, stopping: Callable[[], bool]) -> None:
    """Mark a message sent, waiting out a database outage: unrecorded, it would be sent again
    once its lease runs out. Past the lease another worker may claim it anyway, so give up."""
    deadline = time.monotonic() + outbox.LEASE.total_seconds()
    pause = 0.1
    while True:
        try:
            await run_in_threadpool(outbox.mark_sent, engine, row_id)
            return
        except Exception as exc:
            if not is_outage(exc) or stopping() or time.monotonic() + pause > deadline:
                raise
            log.warning("mail %s sent; recording it waits for the database", row_id)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)


def describe(exc: Exception) -> tuple[str, bool]:
    """A loggable description (no addresses) and whether the failure is permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({refusal.code for refusal in exc.recipients})
        return f"recipient refused ({', '.join(map(str, codes))})", all(c >= 500 for c in codes)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # 5xx is a permanent refusal; 4xx asks to try again later.
        return f"{type(exc).__name__} {exc.code}", exc.code >= 500
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, TimeoutError)):
        return type(exc).__name__, False
    # Anything else (a header that cannot be encoded, say) would fail the same way every time.
    return f"cannot build message: {type(exc).__name__}", True


class DeliveryLoop:
    """Polls the outbox; `wake()` after an enqueue makes delivery near-immediate."""

    def __init__(self, engine: Engine, settings: Settings, interval: float = 5.0) -> None:
        self.engine = engine
        self.settings = settings
        self.interval = interval
        self._wakeup = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            sent = failed = 0
            try:
                sent, failed = await deliver_due(self.engine, self.settings, lambda: self._stopping)
            except Exception as exc:  # the loop must outlive a database outage
                if is_outage(exc):  # expected while it lasts: one line, the next pass retries
                    log.warning("mail delivery pass: database unavailable (%s)", type(exc).__name__)
                else:
                    log.exception("mail delivery pass failed")
            # A full pass that sent mail means more is probably queued (a policy change queues
            # thousands): go on at once instead of waiting out the interval after every 20.
            if sent and sent + failed >= outbox.CLAIM_LIMIT:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.interval)
            self._wakeup.clear()
