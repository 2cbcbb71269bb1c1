"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, with a real SMTP server.

PostgreSQL comes from PORTAL_TEST_POSTGRES_URL (default: the local server's `test` database,
trust auth). It is required: a run that cannot reach it fails. To run on SQLite only, say so
explicitly with PORTAL_TEST_DATABASES=sqlite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from starlette.testclient import TestClient

from portal import migrations
from portal.app import create_app
from portal.db import make_engine, transaction
from portal.mail_catcher import MailCatcher
from portal.mailer import deliver_due
from portal.models import Practice
from portal.runtime import Runtime
from portal.settings import Settings

SECRET = "test-secret-key-" + "x" * 40
POSTGRES_URL = os.environ.get(
    "PORTAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATABASES = [
    d for d in os.environ.get("PORTAL_TEST_DATABASES", "sqlite,postgresql").split(",") if d
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) the SQLite variant of tests marked postgresql_only."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("database_url") == "sqlite"
        (dropped if on_sqlite and item.get_closest_marker("postgresql_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header() -> str:
    return f"portal test databases: {', '.join(DATABASES)}"


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def mail(mail_server: MailCatcher) -> MailCatcher:
    mail_server.clear()
    mail_server.reject(None)
    return mail_server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "portal.db"
    settings = _settings(f"sqlite:///{path}", smtp_port=1)
    engine = make_engine(settings)
    migrations.upgrade(settings, engine)
    engine.dispose()
    return path


@contextmanager
def empty_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database named PREFIX_<random>: its URL, dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is required at {POSTGRES_URL} ({exc.__class__.__name__}: {exc}). "
            "Start it, set PORTAL_TEST_POSTGRES_URL, or run SQLite only with "
            "PORTAL_TEST_DATABASES=sqlite."
        )
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, migrated once, dropped at the end."""
    with empty_postgres_database("portal_test") as url:
        settings = _settings(url, smtp_port=1)
        engine = make_engine(settings)
        migrations.upgrade(settings, engine)
        engine.dispose()
        yield url


def _settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "secret_keys": SECRET,
        "base_url": "http://testserver",
        "smtp_host": "127.0.0.1",
        "mail_in_process": False,
        "export_in_process": False,  # tests run the export worker themselves
        "mail_backoff_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _truncate_all(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "portal.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")
        yield url
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        _truncate_all(engine)
        engine.dispose()
    else:
        pytest.fail(f"unknown test database {request.param!r}")


@pytest.fixture
def settings(database_url: str, mail: MailCatcher) -> Settings:
    return _settings(database_url, smtp_port=mail.port)


PRACTICE = {
    "name": "Harbor Light Counseling",
    "phone": "(206) 555-0142",
    "email": "office@harborlight.example",
    "website": "https://harborlight.example",
    "licensing_board": "Washington State Department of Health",
    "crisis_line": "Call our after-hours line at (206) 555-0199.",
}


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    rt: Runtime = application.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    yield application
    rt.engine.dispose()


@pytest.fixture
def rt(app) -> Runtime:  # type: ignore[no-untyped-def]
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def deliver(rt: Runtime) -> tuple[int, int]:
    """Run one outbox delivery pass against the real SMTP test server."""
    return asyncio.run(deliver_due(rt.engine, rt.settings))


@pytest.fixture
def deliver_mail(rt: Runtime):  # type: ignore[no-untyped-def]
    return lambda: deliver(rt)
