"""The README's production role on PostgreSQL: the app runs a whole journey and a countersignature
without UPDATE or DELETE on the evidence tables, and cannot alter the audit log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PRACTICE
from helpers import make_staff, post_form, publish_default, start_journey, submit_step
from helpers import staff_sign_in as sign_in
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlmodel import select
from starlette.testclient import TestClient

from portal import audit_chain
from portal.app import create_app
from portal.db import transaction
from portal.models import Enrollment, EnrollmentStatus, Practice
from portal.runtime import Runtime
from portal.settings import Settings
from portal_signature.models import Signature

README = Path(__file__).resolve().parent.parent / "README.md"
APPEND_ONLY = [
    "audit_event",
    "signature",
    "acknowledgement",
    "signer_slot",
    "contact_preference",
    "testimonial_decision",
    "paper_acknowledgement",
    "policy_discussion",
    "client_change",
]


def readme_sql() -> list[str]:
    """The statements of the README's append-only role section, in order."""
    section = README.read_text().split("### The audit log and append-only evidence", 1)[1]
    section = section.split("\n### ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the README section should give the role and its grants"
    script = "\n".join(blocks)
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


@pytest.fixture
def app_role(settings: Settings) -> Iterator[str]:
    """The README's statements run as the owner; yields a database URL as the app's role."""
    owner_url = make_url(settings.database_url)
    role = f"portal_app_{uuid.uuid4().hex[:8]}"
    database = owner_url.database or ""
    owner = create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        for statement in readme_sql():
            statement = statement.replace("portal_app", role)
            statement = statement.replace("DATABASE portal ", f'DATABASE "{database}" ')
            conn.execute(text(statement.replace("choose-a-password", "unused-trust-auth")))
    yield owner_url.set(username=role, password=None).render_as_string(hide_password=False)
    with owner.connect() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))
    owner.dispose()


@pytest.mark.postgresql_only
def test_a_journey_and_countersignature_run_without_update_or_delete_on_evidence(
    settings: Settings, app_role: str
) -> None:
    app = create_app(settings.model_copy(update={"database_url": app_role}))
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        assert db.exec(text("SELECT current_user")).scalar_one().startswith("portal_app_")  # type: ignore[call-overload]
        db.add(Practice(**PRACTICE))
    publish_default(rt)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        enrollment = start_journey(client, rt)
        assert submit_step(client, "policy", {"policy_version": "1"}).status_code == 303
        contact = {
            "phone_0_number": "(206) 555-0148",
            "phone_0_kind": "cell",
            "phone_0_voicemail": "practice_name",
            "email_address": "jordan.r@example.com",
            "email_warning_accepted": "yes",
        }
        assert submit_step(client, "contact", contact).status_code == 303
        testimonial = {"choice": "anonymous", "placement_website": "yes"}
        assert submit_step(client, "testimonial", testimonial).status_code == 303
        who = {"phase": "who", "action": "save", "party": "individual"}
        assert submit_step(client, "sign", who).status_code == 200
        page = client.get("/onboarding/sign").text
        signed = submit_step(
            client,
            "sign",
            {
                "phase": "sign",
                "slot_id": re.search(r'name="slot_id" value="([^"]+)"', page).group(1),  # type: ignore[union-attr]
                "policy_version": "1",
                "esign_consent": "yes",
                "acknowledge": "yes",
                "typed_name": "Jordan Rivers",
                "action": "save",
            },
        )
        assert signed.headers.get("location") == "/onboarding/done", signed.text
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as staff:
        email = make_staff(rt, "therapist", name="Dr. Lee Moreno")
        assert sign_in(staff, email).status_code == 303
        url = f"/staff/clients/{enrollment.id}/countersign"
        done = post_form(staff, url, {"confirm": "yes", "typed_name": "Dr. Lee Moreno"})
        assert done.status_code == 303, done.text
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None and row.status == EnrollmentStatus.COMPLETE
        assert len(db.exec(select(Signature)).all()) == 2  # the client's and the therapist's
    assert audit_chain.verify(rt.engine).whole

    # The app's role is refused any change to the evidence, whatever the statement.
    for table in APPEND_ONLY:
        change = f"UPDATE {table} SET {_any_column(rt, table)}"  # noqa: S608 - fixed names
        for statement in (change, f"DELETE FROM {table}"):  # noqa: S608 - fixed names
            with (
                pytest.raises(ProgrammingError, match="permission denied"),
                rt.engine.begin() as conn,
            ):
                conn.execute(text(statement))
    rt.engine.dispose()


def _any_column(rt: Runtime, table: str) -> str:
    with rt.engine.connect() as conn:
        column = conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = :t ORDER BY ordinal_position LIMIT 1"
            ),
            {"t": table},
        ).scalar_one()
    return f"{column} = {column}"
