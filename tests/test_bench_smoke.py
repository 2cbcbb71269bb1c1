"""The benchmark's pieces at a tiny size, so `make bench` cannot rot between runs.

The figures themselves are the bench's business (docs/benchmarks.md); here every piece runs
end to end (data generator, the portal and the bare app served by uvicorn, the Python driver,
the recorded-SQL replay, sync paging, the export worker, journeys, a policy campaign) and
the results are checked for what must hold at any size: no errors, nothing lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

from bench import campaign, dataset, export, journey, load, web
from bench.server import portal_env, serve

CLIENTS = 200
# SQLite cannot reflect the board's expression indexes; the generator's ANALYZE says so.
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "practice.db"
    dataset.build(f"sqlite:///{path}", CLIENTS)
    return path


@pytest.fixture
def practice(generated: Path, tmp_path: Path) -> str:
    """A fresh copy of the generated practice."""
    shutil.copy(generated, tmp_path / "p.db")
    return f"sqlite:///{tmp_path / 'p.db'}"


def count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text(f"SELECT count(*) FROM {table}")  # noqa: S608
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_the_generator_writes_a_whole_practice(practice: str) -> None:
    url = practice
    assert count(url, "client") == CLIENTS
    assert count(url, "enrollment") == CLIENTS
    assert count(url, "client_change") == CLIENTS
    # 8 in 10 completed every step: an acknowledgement, its two signer slots, one signature.
    assert count(url, "acknowledgement") == CLIENTS * 8 // 10
    assert count(url, "signer_slot") == 2 * count(url, "acknowledgement")
    assert count(url, "signature") == count(url, "acknowledgement")
    engine = create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT count(DISTINCT full_name) FROM client")).scalar()
        typed = conn.execute(
            text(
                "SELECT count(*) FROM signature s JOIN acknowledgement a "
                "ON a.id = s.acknowledgement_id JOIN client c ON c.id = a.client_id "
                "WHERE s.typed_name = c.full_name"
            )
        ).scalar()
    engine.dispose()
    assert names == CLIENTS  # each clone has its own name...
    assert typed == count(url, "signature")  # ...and signed with it


def test_the_http_figures_run_against_both_apps(practice: str, tmp_path: Path) -> None:
    url = practice
    fx = web.prepare(url, tmp_path, sample=50)
    recording = json.loads(fx.recording.read_text())
    assert any("JOIN signature" in s["sql"] for s in recording["statements"])
    env = {"BENCH_DATABASE_URL": url, "BENCH_RECORDING": str(fx.recording)}
    with (
        serve("bench.server:full_app", portal_env(url), "/healthz") as portal,
        serve("bench.bare_app:app_from_environment", env, "/ping") as bare,
    ):
        # The bare handler really runs the API read's queries for the asked-for client.
        other = fx.client_ids[1]
        replayed = httpx.get(f"{bare}/client/{other}").json()
        assert other in json.dumps(replayed)
        assert httpx.get(f"{bare}/client/{'0' * 32}").status_code == 404
        # The trivial route is compared with a bare app answering the same bytes, checked.
        with pytest.raises(RuntimeError, match="bare /ping answers"):
            web.same_response(f"{portal}/healthz", f"{bare}/plain")
        rows = [
            web.trivial(load.python_driver, portal, bare, seconds=0.5),
            web.api_read(load.python_driver, portal, bare, fx, 0.5, "SQLite"),
            web.board_search(load.python_driver, portal, 0.5, "SQLite"),
            *web.sync(portal, fx, "SQLite"),
        ]
    assert len(rows) == 5
    for row in rows:
        assert "error" not in row.value, row


def test_export_journeys_and_a_policy_campaign(practice: str, tmp_path: Path) -> None:
    url = practice
    run = export.measure(url)
    assert run.clients == CLIENTS and run.resources >= CLIENTS and run.peak_mb > 0

    links = journey.invite(url, 3)
    with serve("bench.server:full_app", portal_env(url), "/healthz") as portal:
        timings, _ = journey.run(portal, links, concurrency=2)
    assert (timings.completed, timings.errors) == (3, 0)
    assert count(url, "enrollment WHERE status = 'complete'") == CLIENTS * 8 // 10 + 3

    emailable = f"sqlite:///{tmp_path / 'e.db'}"
    dataset.build(emailable, 10, mix="emailable")
    row = campaign.measure(emailable, timeout=30)
    print(row)
    assert row.passed and row.value.startswith("10 queued"), row
