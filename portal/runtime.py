"""The objects the app builds once at start-up and hands to every request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import anyio.to_thread
import pluggy
from anyio import CapacityLimiter
from jinja2_fragments.starlette import Jinja2Blocks
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from portal import client_sessions
from portal.api.sections import ApiSection
from portal.audit import RequestMeta
from portal.invitations import Services
from portal.mail_templates import MailRenderer
from portal.mailer import DeliveryLoop
from portal.models import Client, Enrollment, Practice
from portal.outbox import Mail, enqueue
from portal.settings import Settings
from portal.steps import StepContext, SummaryItem
from portal.tokens import Tokens
from portal.wizard import Wizard

T = TypeVar("T")
# Threads that may run an API request's database work at once (measured with `python -m
# bench`, 16 connections). The default pool (40) let 16 request threads fight over the GIL
# while the one holding the database's write lock waited for it, so each write was held longer
# than its SQL took. SQLite's work is all in-process CPU, and sqlite3 lets go of the GIL around
# every statement: with two threads each of an API read's ~20 statements handed the GIL to the
# other thread and back, so one thread serves more (640 -> 810 reads/s; two were best while
# the reads still built ORM objects). PostgreSQL waits on the network, so more threads overlap
# those waits: 1 thread did 285 reads/s, 2 to 4 threads 360-425, 6 threads 200-310 (on two
# cores shared with the server, whose backends then competed with the threads for them); four
# keep overlapping the longer waits of a server on another machine.
SQLITE_DB_THREADS = 1
SERVER_DB_THREADS = 4


def db_threads(engine: Engine) -> int:
    return SQLITE_DB_THREADS if engine.dialect.name == "sqlite" else SERVER_DB_THREADS


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    pm: pluggy.PluginManager
    wizard: Wizard
    templates: Jinja2Blocks
    tokens: Tokens
    mail: MailRenderer
    api_sections: list[ApiSection] = field(default_factory=list)
    delivery: DeliveryLoop | None = None
    schema_checked: bool = False  # set once the schema was found current
    db_limiter: CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.db_limiter = CapacityLimiter(db_threads(self.engine))

    async def in_db_thread(self, work: Callable[[], T]) -> T:
        """Run `work` (blocking database work) in a worker thread, a few at once."""
        return await anyio.to_thread.run_sync(work, limiter=self.db_limiter)

    @property
    def services(self) -> Services:
        return Services(self.settings, self.tokens, self.mail)

    def wake_mail(self) -> None:
        if self.delivery is not None:
            self.delivery.wake()

    def step_context(
        self,
        db: Session,
        practice: Practice,
        client: Client,
        enrollment: Enrollment,
        meta: RequestMeta,
        now: datetime,
    ) -> StepContext:
        def send_mail(mail: Mail) -> None:
            enqueue(db, mail)

        ctx = StepContext(
            db=db,
            settings=self.settings,
            practice=practice,
            client=client,
            enrollment=enrollment,
            meta=meta,
            now=now,
            url_for=self.settings.public_url,
            send_mail=send_mail,
            mail=self.mail,
        )

        def journey_summary(as_of: datetime | None = None) -> list[SummaryItem]:
            return self.wizard.summary(ctx, as_of)

        ctx.journey_summary = journey_summary
        return ctx


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def request_meta(request: Request) -> RequestMeta:
    ip = request.client.host if request.client else ""
    key = request.cookies.get(client_sessions.COOKIE, "")
    return RequestMeta(
        ip=ip,
        user_agent=request.headers.get("user-agent", "")[:300],
        session_ref=client_sessions.reference(key) if key else "",
    )
