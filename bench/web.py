"""The figures measured over HTTP: the portal and the bare app, served side by side.

Each comparison drives both servers with the same driver, the same paths and the same
connections, one after the other, so the ratio holds whatever the machine is.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import text
from starlette.testclient import TestClient

from bench import bare_app, dataset
from bench.load import Load
from bench.report import Row
from portal.api.clients import _encode_after
from portal.app import create_app
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.runtime import Runtime

Driver = Callable[..., Load]
STAFF_EMAIL = "bench.frontdesk@example.com"
STAFF_PASSWORD = "correct horse battery staple"  # noqa: S105
KEY_NAME = "Bench EHR"
CLIENT_PAGE = 500
ENDS = 10  # pages of the change feed compared at its start and at its end


@dataclass
class Fixtures:
    """What the drivers need from a practice: a key, some client ids, a recording."""

    api_secret: str
    client_ids: list[str]
    recording: Path
    tail_cursor: str  # /api/v1/clients cursor three full pages before the end


def prepare(url: str, folder: Path, sample: int = 2000) -> Fixtures:
    """An API key, a front-desk account, client ids to ask for, and the SQL of one API read."""
    from portal.api import keys
    from portal.staff import accounts

    app = create_app(dataset.settings_for(url))
    rt: Runtime = app.state.runtime
    try:
        with transaction(rt.engine) as db:
            scopes = [s.value for s in keys.Scope]
            meta, now = RequestMeta.none(), utcnow()
            name = f"{KEY_NAME} {utcnow():%H%M%S%f}"
            _, secret = keys.create(
                db, name=name, scopes=scopes, actor=Actor("cli", "bench"), meta=meta, now=now
            )
            if accounts.by_email(db, STAFF_EMAIL) is None:
                accounts.create(
                    db, email=STAFF_EMAIL, name="Bench Desk", role="front_desk",
                    password=STAFF_PASSWORD, actor=Actor("cli", "bench"), meta=meta, now=now,
                )  # fmt: skip
        with rt.engine.connect() as conn:
            ids = list(conn.execute(text("SELECT id FROM client ORDER BY id")).scalars())
            chosen = random.Random(3).sample(ids, min(sample, len(ids)))
            # The read recorded for the bare handler is of a client who signed: every section
            # has records, so it runs every statement the portal runs for most clients (a
            # client with no acknowledgement skips the query of its signers).
            signed = text("SELECT 1 FROM signature s JOIN acknowledgement a "
                          "ON a.id = s.acknowledgement_id WHERE a.client_id = :id")  # fmt: skip
            subject = next(i for i in chosen if conn.execute(signed, {"id": i}).first())
        recording = folder / f"recording-{rt.engine.dialect.name}.json"
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {secret}"}
            assert client.get(f"/api/v1/clients/{subject}", headers=headers).status_code == 200
            statements = bare_app.record(
                rt.engine,
                lambda: client.get(f"/api/v1/clients/{subject}", headers=headers),
            )
        bare_app.save_recording(url, subject, statements, recording)
        tail = _encode_after(ids[max(len(ids) - 3 * CLIENT_PAGE - 1, 0)])
        return Fixtures(secret, chosen, recording, tail)
    finally:
        rt.engine.dispose()


def staff_cookie(base: str) -> str:
    """Sign in as front desk through the served app; the Cookie header a browser would send."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        browser.get("/staff/login")
        signed = browser.post(
            "/staff/login",
            data={
                "email": STAFF_EMAIL,
                "password": STAFF_PASSWORD,
                "csrf_token": browser.cookies["portal_csrf"],
            },
        )
        assert signed.status_code in (200, 303), signed.status_code
        return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def ratio_row(figure: str, portal: Load, bare: Load, goal: float, database: str) -> Row:
    ratio = portal.rps / bare.rps if bare.rps else 0.0
    errors = portal.errors + bare.errors
    return Row(
        figure,
        database,
        f"{portal.rps:,.0f} vs bare {bare.rps:,.0f} req/s = {ratio:.2f}x"
        + (f" ({errors} errors)" if errors else ""),
        f">= {goal}x",
        ratio >= goal and errors == 0,
    )


def trivial(driver: Driver, portal: str, bare: str, seconds: float) -> Row:
    """A route that does nothing, through the whole middleware stack, against a bare one
    answering the same bytes; and, for the record, against one answering a bare "ok"."""
    same_response(f"{portal}/healthz", f"{bare}/ping")
    full = driver(portal, ["/healthz"], seconds=seconds)
    plain = driver(bare, ["/ping"], seconds=seconds)
    short = driver(bare, ["/plain"], seconds=seconds)
    row = ratio_row("Trivial route, full middleware vs bare", full, plain, 0.8, "-")
    without = full.rps / short.rps if short.rps else 0.0
    extra = f"; bare without the 7 headers: {short.rps:,.0f} req/s = {without:.2f}x"
    return dataclasses.replace(row, value=row.value + extra)


def same_response(portal_url: str, bare_url: str) -> None:
    """The bare `/ping` must answer what the portal's `/healthz` does, or the ratio compares
    two different responses."""
    ours, theirs = httpx.get(portal_url), httpx.get(bare_url)
    varying = {"date", "server"}

    def shape(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
        headers = {k: v for k, v in response.headers.items() if k not in varying}
        return response.status_code, response.content, headers

    if shape(ours) != shape(theirs):
        raise RuntimeError(f"bare /ping answers {shape(theirs)}, /healthz {shape(ours)}")


def api_read(
    driver: Driver, portal: str, bare: str, fx: Fixtures, seconds: float, database: str
) -> Row:
    headers = {"Authorization": f"Bearer {fx.api_secret}"}
    full = driver(portal, [f"/api/v1/clients/{i}" for i in fx.client_ids], headers, seconds)
    plain = driver(bare, [f"/client/{i}" for i in fx.client_ids], seconds=seconds)
    return ratio_row("API read of one client with its records", full, plain, 0.5, database)


def search_terms(count: int = 500) -> list[str]:
    """What someone types: 2 to 8 letters of a first or last name, and a few misses."""
    rng = random.Random(11)
    words = [w.lower() for w in dataset.FIRST + dataset.LAST]
    terms = []
    for _ in range(count):
        word = rng.choice(words)
        terms.append(word[: rng.randint(2, len(word))])
    terms += ["zzq", "xylo", "nobody"]  # no match: the whole table is searched
    rng.shuffle(terms)
    return terms


def board_search(driver: Driver, portal: str, seconds: float, database: str) -> Row:
    headers = {"HX-Request": "true", "Cookie": staff_cookie(portal)}
    load = driver(
        portal, [f"/staff/?q={t}" for t in search_terms()], headers, seconds, connections=2
    )
    passed = load.p95_ms < 50 and load.errors == 0
    value = f"p95 {load.p95_ms:.1f} ms, p50 {load.p50_ms:.1f} ms ({load.rps:,.0f} req/s)"
    if load.errors:
        value += f", {load.errors} errors"
    return Row("Board live search (2 typists)", database, value, "p95 < 50 ms", passed)


def _page_times(
    base: str, path: str, headers: dict[str, str], key: str,
    cursor: str | None = None, pages: int | None = None,
) -> list[float]:  # fmt: skip
    """Follow the cursor (from the start, or `cursor`) to the end or for `pages` pages;
    the seconds each page took."""
    times: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        while pages is None or len(times) < pages:
            url = path + (f"&after={cursor}" if cursor else "")
            began = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - began)
            response.raise_for_status()
            body = response.json()
            cursor = body.get("next_cursor")
            if not body[key] or not (body.get("has_more", cursor is not None)):
                break
    return times


def sync(portal: str, fx: Fixtures, database: str) -> list[Row]:
    headers = {"Authorization": f"Bearer {fx.api_secret}"}
    # The change feed is walked from the start to the end, every page.
    times = _page_times(portal, "/api/v1/changes?limit=1000", headers, "changes")
    full = times[:-1] if len(times) > 3 else times  # the very last page may be short
    # Ten pages at each end: one page takes 25-55 ms at random on a loaded loopback, so the
    # median of three pages said more about the noise than about the feed.
    # A short walk (a small practice) compares its halves, never a page with itself.
    ends = max(1, min(ENDS, len(full) // 2))
    first, last = statistics.median(full[:ends]), statistics.median(full[-ends:])
    summary = f"medians of the first and last {ends}; {len(times)} pages in {sum(times):.1f} s"
    rows = [_paging_row("Sync: /api/v1/changes, pages of 1000", first, last, summary, database)]
    # Full client records cost ~2 ms each: the first three pages, then the last three from a
    # cursor made from the id 1,500 before the end (what an EHR walking every page reaches).
    path = f"/api/v1/clients?limit={CLIENT_PAGE}"
    head = _page_times(portal, path, headers, "data", pages=3)
    tail = _page_times(portal, path, headers, "data", cursor=fx.tail_cursor, pages=3)
    summary = "first 3 and last 3 pages"
    label = f"Sync: /api/v1/clients, pages of {CLIENT_PAGE}"
    first, last = statistics.median(head), statistics.median(tail)
    rows.append(_paging_row(label, first, last, summary, database))
    return rows


def _paging_row(label: str, first: float, last: float, summary: str, database: str) -> Row:
    value = f"first page {first * 1000:.0f} ms, last {last * 1000:.0f} ms ({summary})"
    return Row(label, database, value, "last <= 1.5x first", last <= 1.5 * first)
