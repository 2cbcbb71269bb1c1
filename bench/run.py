"""`make bench` / `python -m bench`: every performance figure of the portal, in one run.

    python -m bench [--clients 100000] [--quick] [--driver wrk|python] [--no-postgres] [--no-doc]

Generates the practice (SQLite cached under ~/.cache/portal-bench, PostgreSQL in the database
PORTAL_BENCH_POSTGRES_URL, default portal_bench on the local server), serves the portal and the
bare app with uvicorn on loopback, drives them, prints the table and writes it into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import campaign, dataset, export, journey, load, report, web
from bench.report import Row
from bench.server import portal_env, serve

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench"
PARTS = ["http", "export", "journey", "campaign"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=None, help="default 100000 (5000 quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small, short")
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    parser.add_argument("--busy", default="", help="a note on the machine's load, for the doc")
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, default=PARTS, help="measure these parts only"
    )
    args = parser.parse_args(argv)
    args.clients = args.clients or (5_000 if args.quick else 100_000)
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Rows(list[Row]):
    """The table so far; each figure is printed as soon as it is measured."""

    def append(self, row: Row) -> None:
        log(f"{row.figure} ({row.database}): {row.value} [{'pass' if row.passed else 'FAIL'}]")
        super().append(row)

    def __iadd__(self, rows: Iterable[Row]) -> Rows:  # type: ignore[override]
        for row in rows:
            self.append(row)
        return self


def http_figures(
    driver: Callable[..., load.Load], url: str, label: str, folder: Path, seconds: float,
    with_trivial: bool,
) -> list[Row]:  # fmt: skip
    fx = web.prepare(url, folder)
    rows: list[Row] = []
    bare_env = {"BENCH_DATABASE_URL": url, "BENCH_RECORDING": str(fx.recording)}
    with (
        serve("bench.server:full_app", portal_env(url), "/healthz") as portal,
        serve("bench.bare_app:app_from_environment", bare_env, "/ping") as bare,
    ):
        if with_trivial:
            log("trivial route")
            rows.append(web.trivial(driver, portal, bare, seconds))
        log(f"API read ({label})")
        rows.append(web.api_read(driver, portal, bare, fx, seconds, label))
        log(f"board search ({label})")
        rows.append(web.board_search(driver, portal, seconds, label))
        log(f"sync ({label})")
        rows.extend(web.sync(portal, fx, label))
    return rows


def postgres_version(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse(argv)
    driver: Callable[..., load.Load] = load.python_driver
    if args.driver == "wrk":
        load.require_wrk()
        driver = load.wrk
    seconds = 3 if args.quick else 15
    small = min(10_000, max(args.clients // 10, 100))
    rows = Rows()
    pg_version = None
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        folder = Path(tmp)
        log(f"practice of {args.clients:,} clients (SQLite, cached)")
        sqlite = dataset.sqlite_copy(args.clients, folder / "practice.db")
        databases = [("SQLite", sqlite)]
        if not args.no_postgres and "http" in args.only:
            url = os.environ.get("PORTAL_BENCH_POSTGRES_URL", POSTGRES)
            log(f"practice of {args.clients:,} clients (PostgreSQL)")
            databases.append(("PostgreSQL", dataset.postgres_database(url, args.clients)))
            pg_version = postgres_version(url)
        for n, (label, url) in enumerate(databases if "http" in args.only else []):
            rows += http_figures(driver, url, label, folder, seconds, with_trivial=n == 0)
        if "export" in args.only:
            log("bulk export")
            small_url = dataset.sqlite_copy(small, folder / "small.db")
            rows += export.rows(export.measure(small_url), export.measure(sqlite), "SQLite")
        if "journey" in args.only:
            log("onboarding journeys")
            links = journey.invite(sqlite, 40 if args.quick else 300)
            with serve("bench.server:full_app", portal_env(sqlite), "/healthz") as portal:
                timings, took = journey.run(portal, links, concurrency=4)
            rows += journey.rows(timings, took, 4, "SQLite")
        if "campaign" in args.only:
            log("policy change")
            notify = 500 if args.quick else 10_000
            emailable = dataset.sqlite_copy(notify, folder / "emailable.db", mix="emailable")
            rows.append(campaign.measure(emailable, timeout=120 if args.quick else 900))
    print()
    print(report.table(rows))
    if not args.no_doc:
        report.write_doc(rows, args.clients, report.machine(pg_version, args.busy))
        log(f"written to {report.DOC}")
    return rows
