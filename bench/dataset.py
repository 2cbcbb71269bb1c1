"""A practice of N clients with the records a real journey writes, generated fast.

The app itself onboards a few *template* clients (through each step's `demo_fill`, so the rows
have exactly the shapes the product writes); every table row those journeys added is then
cloned N times with new ids, names, emails, phone numbers and times spread over a year, and
bulk-inserted. Audit events, outbox mail and sessions are not cloned: they are not read by the
figures measured, and the audit log is a hash chain that copies would break.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, insert, select, text
from sqlmodel import SQLModel

from portal import migrations
from portal.app import create_app
from portal.db import transaction
from portal.demo import DEMO_PRACTICE, onboard_client
from portal.models import Practice
from portal.runtime import Runtime
from portal.settings import Settings

# Tables a journey writes that belong to one client, parents before children.
CLONED = (
    "client",
    "enrollment",
    "invitation",
    "policy_reading",
    "contact_preference",
    "testimonial_decision",
    "acknowledgement",
    "signer_slot",
    "signature",
    "client_change",
)
# Integer keys the database assigns.
AUTO_KEYS = {"policy_reading": "id", "client_change": "seq"}
# Columns that must be unique per client but are not ids other rows point to.
FRESH = {
    "resume_nonce": lambda: uuid.uuid4().hex,
    "withdraw_code": lambda: secrets.token_urlsafe(24),
}
# One template in ten is a client who was invited and has not started, one in ten stopped
# after two steps; the rest completed, half of them allowing email.
MIXES = {
    "practice": ["email"] * 4 + ["phone"] * 4 + ["invited", "partway"],
    # Everyone signed and allowed email: a policy change emails them all.
    "emailable": ["email"],
}
FIRST = [
    "Avery",
    "Jordan",
    "Sam",
    "Morgan",
    "Riley",
    "Casey",
    "Taylor",
    "Jamie",
    "Alex",
    "Quinn",
    "Maria",
    "Wei",
    "Aisha",
    "Diego",
    "Priya",
    "Olga",
    "Kwame",
    "Yuki",
    "Noor",
    "Liam",
]
LAST = [
    "Chen",
    "Okafor",
    "Ellis",
    "Garcia",
    "Nguyen",
    "Smith",
    "Patel",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Moreno",
    "Kim",
    "Rossi",
    "Dubois",
    "Silva",
    "Murphy",
    "Tanaka",
    "Novak",
]
GENERATOR_VERSION = "1"
BATCH = 2000
SECRET = "bench-secret-key-" + "b" * 40
ROOT = Path(__file__).resolve().parent.parent


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "secret_keys": SECRET,
        "mail_in_process": False,
        "export_in_process": False,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Template:
    name: str
    email: str
    rows: dict[str, list[dict[str, Any]]]  # table -> rows this client's journey added
    created_at: datetime


def _tables() -> dict[str, Table]:
    return {name: SQLModel.metadata.tables[name] for name in CLONED}


def _keys(engine: Engine, tables: dict[str, Table]) -> dict[str, set[Any]]:
    with engine.connect() as conn:
        return {
            name: {tuple(r) for r in conn.execute(select(*table.primary_key.columns))}
            for name, table in tables.items()
        }


def _contact_with_email(email: str) -> dict[str, str]:
    from portal_contact import step

    form = dict(step.DEMO_FORM)
    form.update(email_address=email, email_rank="", email_warning_accepted="yes")
    return form


def make_templates(rt: Runtime, kinds: list[str]) -> list[Template]:
    """Onboard one client of each kind through the steps' own code; capture their rows."""
    from portal_contact import step as contact_step

    tables = _tables()
    templates: list[Template] = []
    for kind in dict.fromkeys(kinds):
        before = _keys(rt.engine, tables)
        name, email = f"Template {kind.title()}", f"template.{kind}@example.com"
        steps = {"invited": 0, "partway": 2}.get(kind)
        plain = contact_step.DEMO_FORM
        if kind == "email":
            contact_step.DEMO_FORM = _contact_with_email(email)
        try:
            with transaction(rt.engine) as db:
                enrollment = onboard_client(db, rt, name, email, steps)
                created = enrollment.created_at
        finally:
            contact_step.DEMO_FORM = plain
        rows: dict[str, list[dict[str, Any]]] = {}
        with rt.engine.connect() as conn:
            for table_name, table in tables.items():
                found = [dict(r._mapping) for r in conn.execute(select(table))]
                pk = [c.name for c in table.primary_key.columns]
                rows[table_name] = [
                    r for r in found if tuple(r[c] for c in pk) not in before[table_name]
                ]
        templates.append(Template(name, email, rows, created))
    return templates


def _replace(value: Any, ids: dict[str, str], words: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        for old, new in words.items():
            if old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _replace(v, ids, words) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, ids, words) for v in value]
    return value


def clone(
    template: Template, i: int, when: datetime, rng: random.Random
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The rows of client number `i`, invited at `when`: (table, row) pairs."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name = f"{first} {last} {i}"
    email = f"{first}.{last}.{i}@example.com".lower()
    number = f"{i % 10000:04d}"
    words = {template.name: name, template.email: email, "555-0148": f"555-{number}"}
    words["+12065550148"] = f"+1206555{number}"
    ids = {
        row["id"]: uuid.uuid4().hex
        for rows in template.rows.values()
        for row in rows
        if isinstance(row.get("id"), str)
    }
    shift = when - template.created_at
    for table_name, rows in template.rows.items():
        for row in rows:
            out: dict[str, Any] = {}
            for column, value in row.items():
                if column == AUTO_KEYS.get(table_name):
                    continue
                if column in FRESH:
                    out[column] = FRESH[column]()
                elif isinstance(value, datetime):
                    out[column] = value + shift
                else:
                    out[column] = _replace(value, ids, words)
            yield table_name, out


def populate(rt: Runtime, clients: int, mix: str = "practice", seed: int = 7) -> None:
    """Migrate, add the practice and its policy, then `clients` cloned clients."""
    from portal.audit import Actor, RequestMeta
    from portal.db import utcnow
    from portal_policy import service as policy_service

    migrations.upgrade(rt.settings, rt.engine)
    with transaction(rt.engine) as db:
        db.add(Practice.model_validate(DEMO_PRACTICE))
    with transaction(rt.engine) as db:
        policy_service.publish_default(
            db, actor=Actor("cli", "bench"), meta=RequestMeta.none(), now=utcnow()
        )
    # The template clients stay: they are real clients of the practice, the newest ones.
    kinds = MIXES[mix]
    made = make_templates(rt, kinds)
    templates = {t.name.split()[-1].lower(): t for t in made}
    clones = max(clients - len(made), 0)
    tables = _tables()
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(clones, 1)
    for offset in range(0, clones, BATCH):
        batch: dict[str, list[dict[str, Any]]] = {name: [] for name in CLONED}
        for i in range(offset, min(offset + BATCH, clones)):
            template = templates[kinds[i % len(kinds)]]
            for table_name, row in clone(template, i, start + step * i, rng):
                batch[table_name].append(row)
        with rt.engine.begin() as conn:
            for table_name in CLONED:
                if batch[table_name]:
                    conn.execute(insert(tables[table_name]), batch[table_name])
    # Fresh statistics; on PostgreSQL VACUUM also moves the bulk-loaded rows out of the GIN
    # indexes' pending lists (autovacuum would, later), without which a trigram lookup scans them.
    postgres = rt.engine.dialect.name == "postgresql"
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))


def cache_key(clients: int, mix: str) -> str:
    versions = sorted(p.name for p in (ROOT / "alembic" / "versions").glob("*.py"))
    versions += sorted(p.name for p in (ROOT / "plugins").glob("*/migrations/versions/*.py"))
    raw = f"{GENERATOR_VERSION}:{clients}:{mix}:{','.join(versions)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    folder = Path.home() / ".cache" / "portal-bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sqlite_copy(clients: int, target: Path, mix: str = "practice") -> str:
    """A fresh copy of the cached SQLite practice of `clients` (generated on first use)."""
    cached = cache_dir() / f"{mix}-{clients}-{cache_key(clients, mix)}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build(f"sqlite:///{partial}", clients, mix)
        partial.rename(cached)
    shutil.copy(cached, target)
    return f"sqlite:///{target}"


def build(url: str, clients: int, mix: str = "practice") -> None:
    app = create_app(settings_for(url))
    rt: Runtime = app.state.runtime
    try:
        populate(rt, clients, mix)
    finally:
        rt.engine.dispose()


def postgres_database(url: str, clients: int) -> str:
    """The PostgreSQL database at `url` holding a practice of `clients`: reused when an earlier
    run made it with the same generator and migrations (its comment says so), else recreated."""
    from sqlalchemy import create_engine

    server, name = url.rsplit("/", 1)
    key = f"portal-bench {cache_key(clients, 'practice')}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            comment = conn.execute(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).scalar()
            if comment == key:
                return url
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        build(url, clients)
        with admin.connect() as conn:
            conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{key}'"))
    finally:
        admin.dispose()
    return url
