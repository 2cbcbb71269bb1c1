"""The consent board and a client's page, as the front desk and therapists use them."""

from __future__ import annotations

import pytest
from helpers import make_staff, onboard, post_form, publish_default, staff_sign_in
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import AuditEvent
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher
from portal.models import Client, Enrollment
from portal.runtime import Runtime
from portal.staff.board import PAGE_SIZE


def signed_in(
    client: TestClient, rt: Runtime, role: str = "front_desk", name: str = "Pat Kim"
) -> None:
    email = make_staff(rt, role, name=name)
    assert staff_sign_in(client, email).status_code == 303


def test_board_shows_status_and_contact_rules_at_a_glance(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    onboard(rt, "Avery Chen", "avery@example.com", steps=0)
    onboard(rt, "Sam Okafor", "sam@example.com", steps=None)
    signed_in(client, rt)
    page = client.get("/staff/")
    assert page.status_code == 200
    text = page.text
    assert "Avery Chen" in text and "Invited" in text and "Not signed" in text
    assert "Sam Okafor" in text and "Complete" in text
    assert "Cell (206) 555-0148: voicemail OK, may name the practice. No email." in text
    assert "Signed v1; countersignature pending" in text


def test_search_works_with_and_without_javascript(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    onboard(rt, "Avery Chen", "avery@example.com", steps=0)
    onboard(rt, "Sam Okafor", "sam@example.com", steps=0)
    signed_in(client, rt)
    plain = client.get("/staff/?q=okaf")
    assert "Sam Okafor" in plain.text and "Avery Chen" not in plain.text
    assert 'value="okaf"' in plain.text  # the search stays in the URL and the form
    live = client.get("/staff/?q=AVERY@", headers={"HX-Request": "true"})
    assert live.text.lstrip().startswith('<div id="results"')
    assert "Avery Chen" in live.text and "Sam Okafor" not in live.text
    assert "No clients match" in client.get("/staff/?q=%25_nobody").text


def test_status_filter_and_sort(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    onboard(rt, "Zed Young", "zed@example.com", steps=0)
    onboard(rt, "Abby Adams", "abby@example.com", steps=None)
    signed_in(client, rt)
    complete = client.get("/staff/?status=complete").text
    assert "Abby Adams" in complete and "Zed Young" not in complete
    by_name = client.get("/staff/?sort=name").text
    assert by_name.index("Abby Adams") < by_name.index("Zed Young")
    # Unknown values are ignored, never an error.
    assert client.get("/staff/?status=bogus&sort=%27;drop").status_code == 200


def test_pages_follow_on_without_gaps_or_repeats(client: TestClient, rt: Runtime) -> None:
    with transaction(rt.engine) as db:
        for i in range(PAGE_SIZE + 7):
            person = Client(full_name=f"Client {i:03d}", email=f"c{i}@example.com")
            db.add(person)
            db.add(Enrollment(client_id=person.id))
    signed_in(client, rt)
    seen: list[str] = []
    url = "/staff/?sort=name"
    while url:
        page = client.get(url).text
        seen += [
            line.split(">")[1].split("<")[0] for line in page.split('href="/staff/clients/')[1:]
        ]
        marker = 'rel="next" href="'
        url = (
            page.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
            if marker in page and "Next" in page
            else ""
        )
    assert len(seen) == PAGE_SIZE + 7 == len(set(seen))
    assert seen == sorted(seen)


def test_client_page_shows_the_record_and_is_audited(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    enrollment_id = onboard(rt, "Sam Okafor", "sam@example.com", steps=None).id
    signed_in(client, rt)
    page = client.get(f"/staff/clients/{enrollment_id}")
    assert page.status_code == 200
    text = page.text
    # Contact rules first, in plain words.
    assert text.index("How we may contact them") < text.index("Signed acknowledgement")
    assert "Cell (206) 555-0148: voicemail OK, may name the practice" in text
    assert "Never: text messages" in text
    assert "Acknowledges the Social Media and Communications Policy, version 1" in text
    assert "No: the practice may not share anything you say." in text
    assert "onboarding: completed" in text  # the timeline
    with transaction(rt.engine) as db:
        viewed = db.exec(select(AuditEvent).where(AuditEvent.action == "client.viewed")).all()
    assert [e.enrollment_id for e in viewed] == [enrollment_id]
    assert viewed[0].actor.startswith("staff:")
    assert client.get("/staff/clients/nope").status_code == 404


def test_therapist_countersigns(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    publish_default(rt)
    enrollment_id = onboard(rt, "Sam Okafor", "sam@example.com", steps=None).id
    front_desk = TestClient(app, base_url="http://testserver", follow_redirects=False)
    signed_in(front_desk, rt, "front_desk")
    assert "Countersign</button>" not in front_desk.get(f"/staff/clients/{enrollment_id}").text
    refused = post_form(
        front_desk,
        f"/staff/clients/{enrollment_id}/countersign",
        {"confirm": "yes", "typed_name": "Pat Kim"},
    )
    assert refused.status_code == 403
    signed_in(client, rt, "therapist", name="Dr. Lee Moreno")
    url = f"/staff/clients/{enrollment_id}/countersign"
    wrong = post_form(client, url, {"confirm": "yes", "typed_name": "Someone Else"})
    assert wrong.status_code == 422 and "Dr. Lee Moreno" in wrong.text
    done = post_form(client, url, {"confirm": "yes", "typed_name": "dr. lee moreno"})
    assert done.status_code == 303
    page = client.get(f"/staff/clients/{enrollment_id}").text
    assert "Countersigns the client&#39;s acknowledgement" in page
    assert "Signed v1, countersigned" in client.get("/staff/").text
    again = post_form(client, url, {"confirm": "yes", "typed_name": "Dr. Lee Moreno"})
    assert again.status_code == 422 and "Already countersigned" in again.text


def test_staff_invite(client: TestClient, rt: Runtime, mail: MailCatcher, deliver_mail) -> None:  # type: ignore[no-untyped-def]
    signed_in(client, rt)
    bad = post_form(client, "/staff/invite", {"name": "<b>Jo</b>", "email": "nope"})
    assert bad.status_code == 422
    assert "can&#39;t contain" in bad.text and 'value="nope"' in bad.text
    ok = post_form(client, "/staff/invite", {"name": "Jo Park", "email": "jo@example.com"})
    assert ok.status_code == 303
    page = client.get(ok.headers["location"])
    assert "Invitation queued" in page.text and "Jo Park" in page.text
    deliver_mail()
    assert mail.wait_for(1)[0].envelope_to == ["jo@example.com"]


def test_filter_by_therapist_and_invitation_date(client: TestClient, rt: Runtime) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    therapist_email = make_staff(rt, "therapist", name="Dr. Lee Moreno")
    signed_in(client, rt)
    page = client.get("/staff/invite").text
    therapist_id = page.split('<option value="', 2)[2].split('"', 1)[0]
    assert "Dr. Lee Moreno" in page
    post_form(
        client,
        "/staff/invite",
        {"name": "Ana Lima", "email": "ana@example.com", "therapist": therapist_id},
    )
    post_form(client, "/staff/invite", {"name": "Bo Chan", "email": "bo@example.com"})
    refused = post_form(
        client,
        "/staff/invite",
        {"name": "Cy Diaz", "email": "cy@example.com", "therapist": "forged"},
    )
    assert refused.status_code == 422 and "Choose a therapist" in refused.text
    mine = client.get(f"/staff/?therapist={therapist_id}").text
    assert "Ana Lima" in mine and "Bo Chan" not in mine and "Dr. Lee Moreno" in mine
    with transaction(rt.engine) as db:
        db.execute(
            update(Enrollment)
            .where(
                Enrollment.client_id.in_(  # type: ignore[attr-defined]
                    select(Client.id).where(Client.full_name == "Bo Chan")
                )
            )
            .values(created_at=utcnow() - timedelta(days=30))
        )
    cutoff = (utcnow() - timedelta(days=7)).date().isoformat()
    old = client.get(f"/staff/?invited_before={cutoff}").text
    assert "Bo Chan" in old and "Ana Lima" not in old
    assert client.get("/staff/?invited_before=not-a-date").status_code == 200
    assert therapist_email


def test_a_tampered_page_cursor_shows_the_first_page(client: TestClient, rt: Runtime) -> None:
    import base64
    import json

    onboard(rt, "Avery Chen", "avery@example.com", steps=0)
    signed_in(client, rt)
    for value in [1, "nope", {"a": 1}, None]:
        cursor = base64.urlsafe_b64encode(json.dumps([value, "x"]).encode()).decode()
        for sort in ["invited", "name"]:
            page = client.get(f"/staff/?sort={sort}&after={cursor}")
            assert page.status_code == 200
            if not isinstance(value, str) or sort == "invited":  # not a cursor of ours
                assert "Avery Chen" in page.text
    assert client.get("/staff/?after=%%%").status_code == 200


def test_only_the_clients_own_therapist_countersigns(client: TestClient, rt: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    publish_default(rt)
    enrollment_id = onboard(rt, "Sam Okafor", "sam@example.com", steps=None).id
    own = make_staff(rt, "therapist", email="own@example.com", name="Dr. Own")
    with transaction(rt.engine) as db:
        from portal.staff import accounts

        account = accounts.by_email(db, own)
        assert account is not None
        db.execute(
            update(Enrollment)
            .where(Enrollment.id == enrollment_id)  # type: ignore[arg-type]
            .values(therapist_id=account.id)
        )
    signed_in(client, rt, "therapist", name="Dr. Other")
    url = f"/staff/clients/{enrollment_id}/countersign"
    refused = post_form(client, url, {"confirm": "yes", "typed_name": "Dr. Other"})
    assert refused.status_code == 422 and "own therapist" in refused.text
    mine = TestClient(app, base_url="http://testserver", follow_redirects=False)
    staff_sign_in(mine, own)
    assert post_form(mine, url, {"confirm": "yes", "typed_name": "Dr. Own"}).status_code == 303


def test_search_short_terms_match_the_start_of_a_word_longer_ones_anywhere(
    client: TestClient, rt: Runtime
) -> None:
    onboard(rt, "Sam Okafor", "sam.okafor@example.com", steps=0)
    onboard(rt, "Ana Lima-Brook", "al@example.com", steps=0)
    onboard(rt, "Joe Hookes", "joe@example.com", steps=0)
    signed_in(client, rt)

    def found(term: str) -> set[str]:
        page = client.get("/staff/", params={"q": term}, headers={"HX-Request": "true"}).text
        names = {"Sam Okafor", "Ana Lima-Brook", "Joe Hookes"}
        return {name for name in names if name in page}

    assert found("ok") == {"Sam Okafor"}  # not "Hookes": two letters start a word
    assert found("Br") == {"Ana Lima-Brook"}  # after a hyphen too
    assert found("o") == {"Sam Okafor"}
    assert found("jo") == {"Joe Hookes"}  # first name and email
    assert found("al") == {"Ana Lima-Brook"}  # the email's start
    assert found("oke") == {"Joe Hookes"}  # three letters: anywhere
    assert found("OKA") == {"Sam Okafor"}
    assert found("ma-b") == {"Ana Lima-Brook"}
    assert found("e.com") == {"Sam Okafor", "Ana Lima-Brook", "Joe Hookes"}
    assert found('"o') == found("a%") == found("zzq") == set()
    assert "One or two letters" in client.get("/staff/").text  # the help text says so


def test_a_renamed_client_is_found_by_the_new_name_only(client: TestClient, rt: Runtime) -> None:
    from sqlalchemy import update

    enrollment_id = onboard(rt, "Riley Marsh", "riley@example.com", steps=0).id
    signed_in(client, rt)
    assert enrollment_id in client.get("/staff/?q=marsh").text
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        db.execute(
            update(Client)
            .where(Client.id == enrollment.client_id)  # type: ignore[arg-type]
            .values(full_name="Riley Quade", email="rq@example.com")
        )
    for term in ["quade", "qu", "rq@"]:
        assert enrollment_id in client.get("/staff/", params={"q": term}).text, term
    for term in ["marsh", "ma", "riley@"]:
        assert enrollment_id not in client.get("/staff/", params={"q": term}).text, term


def test_search_pages_are_the_same_from_the_index_and_from_the_walk(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A term matching at most CAP clients is answered from the index, a commoner one by
    walking the board's order: the pages, their order and their ends are the same."""
    from portal.staff import board_search

    clients = 2 * PAGE_SIZE + 9

    with transaction(rt.engine) as db:
        for i in range(clients):
            name = f"Morgan Client{i:03d}" if i % 3 else f"Quinn Other{i:03d}"
            person = Client(full_name=name, email=f"m{i}@example.com")
            db.add(person)
            db.add(Enrollment(client_id=person.id))
    signed_in(client, rt)

    def every_page(term: str, sort: str) -> list[str]:
        seen: list[str] = []
        url = f"/staff/?q={term}&sort={sort}"
        while url:
            page = client.get(url).text
            seen += [
                row.split("<", 1)[0].split(">")[-1] for row in page.split("/staff/clients/")[1:]
            ]
            marker = 'rel="next" href="'
            url = (
                page.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
                if marker in page
                else ""
            )
        return seen

    terms = ["mo", "client0", "m"]
    for sort in ["invited", "name"]:
        monkeypatch.setattr(board_search, "CAP", 0)  # every match is "too many": walk
        walked = {term: every_page(term, sort) for term in terms}
        monkeypatch.setattr(board_search, "CAP", 10_000)  # sort the index's matches
        indexed = {term: every_page(term, sort) for term in terms}
        assert walked == indexed
        assert (
            len(walked["mo"])
            == len(set(walked["mo"]))
            == sum(1 for i in range(clients) if i % 3)
            > PAGE_SIZE  # several pages, from the index as from the walk
        )
        assert all(name.startswith("Morgan Client0") for name in walked["client0"])
