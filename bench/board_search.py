"""Benchmark: live search on the staff board over a large practice, through a real server.

    .venv/bin/python bench/board_search.py [--clients 100000] [--database sqlite|postgresql]

Generates the clients, serves the app with uvicorn on loopback, signs in as front desk and
sends the requests htmx sends as someone types (`/staff/?q=...` with HX-Request), one at a time.
Prints p50/p95/max latency. Figures, not assertions: see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import uvicorn
from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import make_staff

from portal import migrations
from portal.app import create_app
from portal.db import transaction
from portal.mail_catcher import free_port
from portal.models import Client, Enrollment, Practice
from portal.settings import Settings

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
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def database_url(kind: str, folder: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", None
    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


def populate(settings: Settings, clients: int) -> None:
    app = create_app(settings)
    rt = app.state.runtime
    migrations.upgrade(settings, rt.engine)
    with transaction(rt.engine) as db:
        db.add(Practice(name="Benchmark Practice"))
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=365)
    batch = 5000
    with rt.engine.begin() as conn:
        for offset in range(0, clients, batch):
            people, runs = [], []
            for i in range(offset, min(offset + batch, clients)):
                cid, eid = uuid.uuid4().hex, uuid.uuid4().hex
                first, last = rng.choice(FIRST), rng.choice(LAST)
                created = start + timedelta(minutes=i * 5)
                people.append(
                    {
                        "id": cid,
                        "full_name": f"{first} {last} {i}",
                        "email": f"{first}.{last}.{i}@example.com".lower(),
                        "created_at": created,
                    }
                )
                runs.append(
                    {
                        "id": eid,
                        "client_id": cid,
                        "status": rng.choice(["invited", "in_progress", "complete"]),
                        "created_at": created,
                        "resume_nonce": uuid.uuid4().hex,
                    }
                )
            conn.execute(insert(Client), people)
            conn.execute(insert(Enrollment), runs)
    make_staff(rt, "front_desk", email="bench@example.com")
    rt.engine.dispose()


def measure(settings: Settings, requests: int) -> list[float]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    rng = random.Random(11)
    timings: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:
            browser.get("/staff/login")
            browser.post(
                "/staff/login",
                data={
                    "email": "bench@example.com",
                    "password": "correct horse battery staple",
                    "csrf_token": browser.cookies["portal_csrf"],
                },
            )
            for _ in range(5):  # warm up
                browser.get("/staff/?q=che", headers={"HX-Request": "true"})
            for _ in range(requests):
                word = rng.choice(FIRST + LAST).lower()
                typed = word[: rng.randint(2, len(word))]
                began = time.perf_counter()
                response = browser.get(f"/staff/?q={typed}", headers={"HX-Request": "true"})
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.status_code
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url, pg_name = database_url(args.database, Path(folder))
        settings = Settings(
            database_url=url,
            secret_keys="b" * 40,  # type: ignore[arg-type]
            mail_in_process=False,
            _env_file=None,
        )  # type: ignore[call-arg]
        began = time.perf_counter()
        populate(settings, args.clients)
        print(f"generated {args.clients} clients in {time.perf_counter() - began:.1f}s")
        timings = sorted(measure(settings, args.requests))
        p95 = timings[int(len(timings) * 0.95) - 1]
        print("| database | clients | requests | p50 ms | p95 ms | max ms |")
        print(
            f"| {args.database} | {args.clients} | {len(timings)} | "
            f"{statistics.median(timings):.1f} | {p95:.1f} | {timings[-1]:.1f} |"
        )
        if pg_name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
