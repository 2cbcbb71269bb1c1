"""The consent board as CSV: contents, filters, paging through the keyset query, formula
injection, and the audit event; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from helpers import invite, make_staff, post_form, staff_sign_in
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.models import Client, Enrollment, EnrollmentStatus
from portal.runtime import Runtime
from portal.staff import board
from portal.staff.export import safe_cell

FIXED = ["Name", "Email", "Status", "Invited"]


def read_csv(response_text: str) -> list[list[str]]:
    assert response_text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(response_text.removeprefix("\ufeff"))))


def add_clients(
    rt: Runtime, count: int, status: EnrollmentStatus = EnrollmentStatus.INVITED
) -> None:
    """Clients straight into the tables: many, quickly, a second apart."""
    start = utcnow() - timedelta(days=1)
    with transaction(rt.engine) as db:
        for n in range(count):
            at = start + timedelta(seconds=n)
            client = Client(
                full_name=f"Client {n:03d}", email=f"c{n:03d}@example.com", created_at=at
            )
            db.add(client)
            db.add(Enrollment(client_id=client.id, created_at=at, status=status))


def export_events(rt: Runtime) -> list[AuditEvent]:
    with transaction(rt.engine) as db:
        query = select(AuditEvent).where(AuditEvent.action == "board.exported")
        return list(db.exec(query))


@pytest.fixture
def signed_in(client: TestClient, rt: Runtime) -> TestClient:
    staff_sign_in(client, make_staff(rt, "front_desk"))
    return client


def test_one_row_per_client_with_every_board_column(signed_in: TestClient, rt: Runtime) -> None:
    invite(rt, name="Jordan Rivers", email="jordan@example.com")
    invite(rt, name="Ana Lima", email="ana@example.com")
    response = signed_in.get("/staff/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="clients-') and disposition.endswith(
        '.csv"'
    )
    rows = read_csv(response.text)
    heading = rows[0]
    assert heading[:4] == FIXED
    assert {"Acknowledgement", "Testimonials"} <= set(heading[4:])
    today = utcnow().strftime("%Y-%m-%d")
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"Jordan Rivers", "Ana Lima"}
    jordan = dict(zip(heading, by_name["Jordan Rivers"], strict=True))
    assert jordan["Email"] == "jordan@example.com" and jordan["Status"] == "Invited"
    assert jordan["Invited"] == today  # a date, not a time
    assert jordan["Acknowledgement"] == "Not signed" and jordan["Testimonials"] == ""
    (event,) = export_events(rt)
    assert event.detail == {
        "rows": 2,
        "complete": True,
        "status": "",
        "sort": "invited",
        "searched": False,
    }
    assert event.actor.startswith("staff:")


def test_cells_a_spreadsheet_would_run_are_escaped(signed_in: TestClient, rt: Runtime) -> None:
    dangerous = ['=HYPERLINK("http://evil.example")', "+1 Plus", "-2 Minus", "@SUM(A1)"]
    for n, name in enumerate(dangerous):
        invite(rt, name=name, email=f"x{n}@example.com")
    invite(rt, name="\tTab Start", email="tab@example.com")
    rows = read_csv(signed_in.get("/staff/export.csv").text)
    names = {row[0] for row in rows[1:]}
    assert names == {"'" + name for name in dangerous} | {"'\tTab Start"}
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


@pytest.mark.parametrize(
    "text, safe",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ana = Lima", "Ana = Lima"),
        ("", ""),
    ],
)
def test_safe_cell(text: str, safe: str) -> None:
    assert safe_cell(text) == safe


def test_the_board_filters_apply(signed_in: TestClient, rt: Runtime) -> None:
    invite(rt, name="Jordan Rivers", email="jordan@example.com")
    invite(rt, name="Ana Lima", email="ana@example.com")
    add_clients(rt, 2, EnrollmentStatus.CANCELLED)
    everyone = read_csv(signed_in.get("/staff/export.csv").text)
    assert sorted(row[0] for row in everyone[1:]) == ["Ana Lima", "Jordan Rivers"]
    searched = read_csv(signed_in.get("/staff/export.csv?q=lima").text)
    assert [row[0] for row in searched[1:]] == ["Ana Lima"]
    cancelled = read_csv(signed_in.get("/staff/export.csv?status=cancelled").text)
    assert [row[2] for row in cancelled[1:]] == ["Cancelled", "Cancelled"]
    by_name = read_csv(signed_in.get("/staff/export.csv?sort=name&after=junk").text)
    assert [row[0] for row in by_name[1:]] == ["Ana Lima", "Jordan Rivers"]
    details = [event.detail for event in export_events(rt)]
    assert {"rows": 1, "complete": True, "status": "", "sort": "invited", "searched": True} in (
        details
    )
    assert all("lima" not in str(detail).lower() for detail in details)


def test_pages_through_every_client_in_board_order(
    signed_in: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board, "PAGE_SIZE", 7)  # many pages from few clients
    add_clients(rt, 45)
    rows = read_csv(signed_in.get("/staff/export.csv").text)[1:]
    assert [row[0] for row in rows] == [f"Client {n:03d}" for n in reversed(range(45))]
    by_name = read_csv(signed_in.get("/staff/export.csv?sort=name").text)[1:]
    assert [row[0] for row in by_name] == [f"Client {n:03d}" for n in range(45)]
    assert [event.detail["rows"] for event in export_events(rt)] == [45, 45]


def test_export_needs_a_staff_session(client: TestClient, rt: Runtime) -> None:
    invite(rt)
    response = client.get("/staff/export.csv")
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")
    assert export_events(rt) == []
    # Signed out again, the old cookie exports nothing.
    staff_sign_in(client, make_staff(rt, "therapist"))
    assert client.get("/staff/export.csv").status_code == 200
    post_form(client, "/staff/logout", {})
    assert client.get("/staff/export.csv").status_code == 303
