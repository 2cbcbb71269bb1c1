"""Nothing identifying reaches the logs: the whole journey, staff work and API reads run with
every logger at DEBUG, and the captured text is searched for the client's details."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from helpers import csrf_token, make_staff, post_form, publish_default, staff_sign_in
from httpx2 import Response
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portal.db import transaction
from portal.mail_catcher import MailCatcher
from portal.models import Client, Enrollment
from portal.runtime import Runtime

NAME = "Jordan Quillfeather"
EMAIL = "jordan.quillfeather@example.com"
CONTACT_EMAIL = "jq.contact@example.org"
SECOND_SIGNER = "Casey Quillfeather"
MRN = "MRN-48213-QF"
# Each phone as typed, and every other way it might be written (E.164 is how it is stored).
PHONES = {
    "(206) 555-0148": ["206-555-0148", "206.555.0148", "2065550148", "+12065550148"],
    "425.555.0117": ["(425) 555-0117", "425-555-0117", "4255550117", "+14255550117"],
}
# Other parties' logs, not the portal's: the test's SMTP server (the mail provider) and the
# test's own browsers and EHR (httpx; the portal makes no HTTP requests in this journey).
NOT_THE_PORTAL = ("mail.log", "httpx2", "httpcore")


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if not name.startswith(NOT_THE_PORTAL):
            caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def forbidden_strings() -> list[str]:
    first, last = NAME.split()
    words = [NAME, first, last, EMAIL, CONTACT_EMAIL, SECOND_SIGNER, MRN, "Quillfeather"]
    words += [EMAIL.split("@")[0], CONTACT_EMAIL.split("@")[0]]
    for typed, others in PHONES.items():
        words += [typed, *others, typed[-8:]]  # "555-0148": the local part on its own too
    return words


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in caplog.records:
        if record.name.startswith(NOT_THE_PORTAL):
            continue
        lines.append(formatter.format(record))  # message, traceback and stack included
        lines.append(repr({k: v for k, v in vars(record).items() if k not in {"msg", "args"}}))
    return "\n".join(lines)


def step_fields(page: str) -> dict[str, str]:
    form = page.split('<form method="post" action="/onboarding/', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))


def submit(browser: TestClient, key: str, data: dict[str, str]) -> Response:
    page = browser.get(f"/onboarding/{key}")
    assert page.status_code == 200, page.text
    return post_form(browser, f"/onboarding/{key}", {**step_fields(page.text), **data})


def test_the_whole_journey_logs_nothing_identifying(
    every_logger_at_debug: pytest.LogCaptureFixture,
    app: Starlette,
    rt: Runtime,
    mail: MailCatcher,
    deliver_mail,  # type: ignore[no-untyped-def]
) -> None:
    caplog = every_logger_at_debug
    publish_default(rt)
    staff_email = make_staff(rt, "admin", name="Dana Whitfield")
    with TestClient(app, follow_redirects=False) as staff:
        assert staff_sign_in(staff, staff_email).status_code == 303
        invite_page = staff.get("/staff/invite")
        invited = post_form(
            staff,
            "/staff/invite",
            {
                "name": NAME,
                "email": EMAIL,
                **({"therapist": ""} if 'name="therapist"' in invite_page.text else {}),
            },
        )
        assert invited.status_code in {200, 303}, invited.text
    # The first delivery is refused by the mail server with a reply that echoes the address
    # (as real servers do); the retry goes through.
    mail.reject(f"450 4.2.1 <{EMAIL}>: mailbox busy, try again later")
    assert deliver_mail() == (0, 1)
    mail.reject(None)
    assert deliver_mail() == (1, 0)
    [invitation] = mail.wait_for(1)
    link = re.search(r"http://testserver(/i/\S+)", invitation.text)
    assert link, invitation.text

    with TestClient(app, follow_redirects=False) as browser:
        assert browser.get(link.group(1)).status_code == 200
        assert post_form(browser, link.group(1), {}).status_code == 303
        assert submit(browser, "policy", {}).status_code == 303
        contact = {
            "phone_0_number": "(206) 555-014",  # one digit short: refused, echoed, not logged
            "phone_0_kind": "cell",
            "phone_0_voicemail": "practice_name",
            "phone_1_number": "425.555.0117",
            "phone_1_kind": "work",
            "phone_1_voicemail": "none",
            "email_address": CONTACT_EMAIL,
            "email_warning_accepted": "yes",
        }
        assert submit(browser, "contact", contact).status_code == 422
        contact["phone_0_number"] = "(206) 555-0148"
        assert submit(browser, "contact", contact).status_code == 303
        chosen = {"choice": "first_name", "placement_website": "yes"}
        assert submit(browser, "testimonial", chosen).status_code == 303
        who = submit(browser, "sign", {"party": "adults", "adult_1_name": SECOND_SIGNER})
        assert who.status_code == 200, who.text
        for typed in [NAME, SECOND_SIGNER]:
            signed = submit(
                browser, "sign", {"esign_consent": "yes", "acknowledge": "yes", "typed_name": typed}
            )
            assert signed.status_code in {200, 303}, signed.text
        assert browser.get("/onboarding/done").status_code == 200
        assert browser.get("/onboarding/receipt.pdf").status_code == 200
        # Asking for a new link types the address into a public form.
        assert post_form(browser, "/link", {"email": EMAIL}).status_code == 200
    sent, _ = deliver_mail()
    assert sent >= 1
    assert any(m.envelope_to == [CONTACT_EMAIL] for m in mail.wait_for(2))  # the receipt

    with transaction(rt.engine, read_only=True) as db:
        client = db.exec(select(Client).where(Client.email == EMAIL)).one()
        enrollment = db.exec(select(Enrollment).where(Enrollment.client_id == client.id)).one()
    with TestClient(app, follow_redirects=False) as staff:
        assert staff_sign_in(staff, staff_email).status_code == 303
        # Live search types the name; the board and the client's page show it.
        assert staff.get("/staff/", params={"q": "Quillfeather"}).status_code == 200
        assert staff.get("/staff/", params={"q": EMAIL}).status_code == 200
        page = staff.get(f"/staff/clients/{enrollment.id}")
        assert page.status_code == 200 and NAME in page.text
        token = csrf_token(staff)
        saved = staff.post(
            f"/staff/clients/{enrollment.id}/mrn", data={"csrf_token": token, "mrn": MRN}
        )
        assert saved.status_code == 303
        assert staff.get("/staff/export.csv").status_code == 200

    from helpers import api_key

    bearer = {"authorization": f"Bearer {api_key(rt)}"}
    with TestClient(app, follow_redirects=False) as ehr:
        record = ehr.get(f"/api/v1/clients/{client.id}", headers=bearer)
        assert record.status_code == 200 and EMAIL in record.text
        assert ehr.get("/api/v1/clients", params={"mrn": MRN}, headers=bearer).status_code == 200
        fhir = {**bearer, "accept": "application/fhir+json"}
        patients = ehr.get("/fhir/r4/Patient", params={"identifier": MRN}, headers=fhir)
        assert patients.status_code == 200 and "+12065550148" in patients.text
        assert ehr.get("/api/v1/changes", headers=bearer).status_code == 200

    logged = everything_logged(caplog)
    # The capture really saw the run: the access log, SQL at DEBUG, mail delivery.
    assert "portal.access" in logged and "/onboarding/contact" in logged
    assert "/i/***" in logged and "sqlalchemy.engine" in logged
    assert "not delivered" in logged
    words = forbidden_strings()
    leaks = [line for line in logged.splitlines() if any(w.lower() in line.lower() for w in words)]
    print(
        f"\nlog records searched: {len(caplog.records)}, lines with identifying data: {len(leaks)}"
    )
    assert not leaks, "identifying data in the logs:\n" + "\n".join(x[:300] for x in leaks[:10])
