"""The admin's policy page: practice details, the Markdown editor, its preview and difference
from the published version, and publishing a new version."""

from __future__ import annotations

import html
import re

import pytest
from helpers import make_staff, post_form, publish_default, staff_sign_in
from sqlmodel import select
from starlette.testclient import TestClient

from portal.audit import Actor, AuditEvent, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime
from portal_policy import service
from portal_policy.models import PolicyCampaign, PolicyVersion
from portal_policy.rendering import default_policy_source

V1 = """# Our Policy

Read this first.

## Contact

Call {{ practice_name }} at {{ practice_phone }}.

Email is for scheduling only.

## Reviews

We never ask for reviews.
"""

V2 = """# Our Policy

Read this first.

## Contact

Call {{ practice_name }} at {{ practice_phone }}.

Email is for scheduling and
billing only.

## Video sessions

We use a secure video service.
"""

DETAILS = {
    "name": "Harbor Light Counseling",
    "phone": "(206) 555-0142",
    "email": "office@harborlight.example",
    "website": "https://harborlight.example",
    "licensing_board": "Washington State Department of Health",
    "crisis_line": "Call our after-hours line at (206) 555-0199.",
}


def publish(rt: Runtime, source: str) -> PolicyVersion:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        return service.publish(
            db, source, practice, actor=Actor("cli", "t"), meta=RequestMeta(), now=utcnow()
        )


def versions(rt: Runtime) -> list[int]:
    with transaction(rt.engine) as db:
        return sorted(v.version for v in db.exec(select(PolicyVersion)))


def as_admin(client: TestClient, rt: Runtime) -> None:
    email = make_staff(rt, "admin", name="Alex Moreno")
    assert staff_sign_in(client, email).status_code == 303


def field_error(page: str, name: str) -> str:
    match = re.search(rf'<span class="field-error" id="err-{name}"[^>]*>([^<]*)<', page)
    assert match, f"no error slot for {name}"
    return html.unescape(match.group(1))


def textarea(page: str) -> str:
    match = re.search(r'<textarea id="f-source"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no policy editor on the page"
    return html.unescape(match.group(1))


def publish_form(source: str, base: int, confirm: bool = True) -> dict[str, str]:
    form = {"source": source, "base_version": str(base)}
    if confirm:
        form["confirm"] = "yes"
    return form


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "therapist"])
def test_only_the_admin_may_open_or_change_the_policy(
    client: TestClient, rt: Runtime, role: str
) -> None:
    publish(rt, V1)
    assert staff_sign_in(client, make_staff(rt, role)).status_code == 303
    assert client.get("/staff/policy").status_code == 403
    assert post_form(client, "/staff/policy/details", DETAILS).status_code == 403
    assert post_form(client, "/staff/policy/preview", {"source": V2}).status_code == 403
    refused = post_form(client, "/staff/policy/publish", publish_form(V2, 1))
    assert refused.status_code == 403
    assert versions(rt) == [1]
    assert 'href="/staff/policy"' not in client.get("/staff/").text  # not offered either


def test_without_a_session_the_policy_page_asks_to_sign_in(client: TestClient) -> None:
    response = client.get("/staff/policy")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login?next=/staff/policy"


# -- practice details ------------------------------------------------------------------------


def test_admin_saves_the_practice_details_with_an_audit_event(
    client: TestClient, rt: Runtime
) -> None:
    as_admin(client, rt)
    page = client.get("/staff/policy")
    assert page.status_code == 200
    assert 'value="Harbor Light Counseling"' in page.text
    assert '<label for="f-crisis_line">' in page.text
    changed = {**DETAILS, "phone": "(206) 555-0100", "crisis_line": "Call 988 after hours."}
    response = post_form(client, "/staff/policy/details", changed)
    assert response.status_code == 303
    assert "saved" in client.get(response.headers["location"]).text
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        assert (practice.phone, practice.crisis_line) == ("(206) 555-0100", "Call 988 after hours.")
        [event] = db.exec(
            select(AuditEvent).where(AuditEvent.action == "practice.details_updated")
        ).all()
    assert event.detail == {"fields": ["phone", "crisis_line"]}
    assert event.actor.startswith("staff:")


def test_bad_details_are_named_kept_and_not_saved(client: TestClient, rt: Runtime) -> None:
    as_admin(client, rt)
    bad = {
        "name": "",
        "phone": "call us",
        "email": "not-an-address",
        "website": "harborlight",
        "licensing_board": "<script>alert(1)</script>",
        "crisis_line": "x" * 10_000,
    }
    response = post_form(client, "/staff/policy/details", bad)
    assert response.status_code == 422
    page = response.text
    assert field_error(page, "name") == "Please enter the practice name."
    assert "phone number doesn't look right" in field_error(page, "phone")
    assert "email address doesn't look right" in field_error(page, "email")
    assert "starting with https://" in field_error(page, "website")
    assert "can't contain < or >" in field_error(page, "licensing_board")
    assert "too long: 200 characters" in field_error(page, "crisis_line")
    assert 'value="call us"' in page and 'value="harborlight"' in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    assert 'aria-describedby="err-phone' in page and 'aria-invalid="true"' in page
    # Missing fields are errors too, not a crash.
    assert post_form(client, "/staff/policy/details", {}).status_code == 422
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None and practice.phone == DETAILS["phone"]
        assert not db.exec(
            select(AuditEvent).where(AuditEvent.action == "practice.details_updated")
        ).all()


# -- the editor ------------------------------------------------------------------------------


def test_editor_starts_from_the_default_policy_then_the_published_one(
    client: TestClient, rt: Runtime
) -> None:
    as_admin(client, rt)
    first = client.get("/staff/policy").text
    assert textarea(first) == default_policy_source()
    assert "Publish as version 1" in first and "this will be version 1" in first
    publish(rt, V1)
    page = client.get("/staff/policy").text
    assert textarea(page) == V1
    assert "Publish as version 2" in page
    assert "No differences from version 1" in page
    assert "identical to the published version 1" in page
    assert 'hx-post="/staff/policy/preview"' in page and "keyup changed delay:500ms" in page


def test_live_preview_renders_escaped_html(client: TestClient, rt: Runtime) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    client.get("/staff/policy")
    source = V1 + "\n## Notes\n\n<script>alert('x')</script> and <b>bold</b>\n"
    live = post_form(
        client,
        "/staff/policy/preview",
        {"source": source, "base_version": "1"},
        headers={"HX-Request": "true"},
    )
    assert live.status_code == 200
    assert live.text.lstrip().startswith('<div id="policy-preview">')  # the fragment only
    assert "&lt;script&gt;alert(" in live.text
    assert "<script>alert" not in live.text and "<b>bold" not in live.text
    assert "Harbor Light Counseling at (206) 555-0142" in live.text
    assert "<strong>New section:</strong> Notes" in live.text
    # Without JavaScript the Preview button shows the whole page, entries kept.
    plain = post_form(client, "/staff/policy/preview", {"source": source, "base_version": "1"})
    assert plain.status_code == 200 and "<h1>Policy and practice details</h1>" in plain.text
    assert textarea(plain.text) == source
    assert "&lt;script&gt;alert(" in plain.text and "<script>alert" not in plain.text


def test_difference_lists_sections_and_lines(client: TestClient, rt: Runtime) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    client.get("/staff/policy")
    page = post_form(client, "/staff/policy/preview", {"source": V2}).text
    assert "Changes from the published version 1" in page
    assert "<strong>New section:</strong> Video sessions" in page
    assert "<strong>Changed:</strong> Contact" in page
    assert "<strong>Removed section:</strong> Reviews" in page
    assert "<strong>Removed:</strong> <del>Email is for scheduling only.</del>" in page
    assert "<strong>Added:</strong> <ins>Email is for scheduling and billing only.</ins>" in page
    # Line by line, each line under the section a reader finds it in.
    assert "In the section <strong>Contact</strong>:" in page
    assert "New section <strong>Video sessions</strong>:" in page
    assert "<strong>Added:</strong> <ins>We use a secure video service.</ins>" in page
    assert "Removed section <strong>Reviews</strong>:" in page
    assert "<strong>Removed:</strong> <del>We never ask for reviews.</del>" in page
    listed = page.split('id="changes-title"')[1].split("Preview:")[0]
    assert "Read this first." not in listed  # unchanged lines are not listed
    # The preview is not a publication.
    assert versions(rt) == [1]


def test_details_changes_show_in_the_difference(client: TestClient, rt: Runtime) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    post_form(client, "/staff/policy/details", {**DETAILS, "phone": "(206) 555-0100"})
    page = client.get("/staff/policy").text
    assert "<strong>Added:</strong> <ins>Call Harbor Light Counseling at (206) 555-0100.</ins>" in (
        page
    )


# -- publishing ------------------------------------------------------------------------------


def test_publishing_creates_version_2(client: TestClient, rt: Runtime) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    client.get("/staff/policy")
    response = post_form(client, "/staff/policy/publish", publish_form(V2, 1))
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/policy?published=2#campaign"
    with transaction(rt.engine) as db:
        current = service.current(db)
        assert current is not None and current.version == 2
        assert current.source_markdown == V2 and current.published_by.startswith("staff:")
        [campaign] = db.exec(select(PolicyCampaign)).all()
        assert (campaign.policy_version, campaign.clients_notified) == (2, 0)
        actions = {e.action for e in db.exec(select(AuditEvent))}
    assert {"policy.published", "policy.campaign_started"} <= actions
    page = client.get(response.headers["location"]).text
    assert "Version 2 is published." in page
    assert "Re-acknowledgement of version 2" in page
    assert textarea(page) == V2 and "Publish as version 3" in page
    assert "Reviews" not in client.get("/policy").text


def test_first_publication_from_the_browser(client: TestClient, rt: Runtime) -> None:
    as_admin(client, rt)
    client.get("/staff/policy")
    response = post_form(client, "/staff/policy/publish", publish_form(V1, 0))
    assert response.status_code == 303
    assert versions(rt) == [1]
    assert "Re-acknowledgement" not in client.get("/staff/policy").text  # nobody to ask yet


@pytest.mark.parametrize(
    ("source", "base", "confirm", "field", "message"),
    [
        (V1 + "\n{{ therapist_name }}\n", 1, True, "source", "Unknown placeholder(s)"),
        ("", 1, True, "source", "The policy is empty"),
        ("Just words, no sections.", 1, True, "source", "has no sections"),
        (V1, 1, True, "source", "identical to the published version 1"),
        (V2, 1, False, "confirm", "Tick the box to confirm"),
        (V2, 0, True, "source", "Version 1 was published while you were editing"),
        ("x" * 70_000, 1, True, "source", "too long"),
    ],
)
def test_publishing_bad_text_keeps_it_and_names_the_problem(
    client: TestClient,
    rt: Runtime,
    source: str,
    base: int,
    confirm: bool,
    field: str,
    message: str,
) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    client.get("/staff/policy")
    response = post_form(client, "/staff/policy/publish", publish_form(source, base, confirm))
    assert response.status_code == 422
    assert message in field_error(response.text, field)
    assert textarea(response.text) == source
    assert 'class="error-summary"' in response.text
    assert versions(rt) == [1]


def test_a_blank_detail_the_text_uses_stops_publication(client: TestClient, rt: Runtime) -> None:
    publish(rt, V1)
    as_admin(client, rt)
    post_form(client, "/staff/policy/details", {**DETAILS, "website": ""})
    source = V2 + "\nSee {{ practice_website }}.\n"
    response = post_form(client, "/staff/policy/publish", publish_form(source, 1))
    assert response.status_code == 422
    assert "blank: website" in field_error(response.text, "source")
    assert textarea(response.text) == source
    assert versions(rt) == [1]


def test_a_malformed_publish_request_is_refused_not_crashed(
    client: TestClient, rt: Runtime
) -> None:
    publish_default(rt)
    as_admin(client, rt)
    client.get("/staff/policy")
    assert post_form(client, "/staff/policy/publish", {}).status_code == 422
    response = post_form(client, "/staff/policy/publish", {"source": "\x00\ufffe", "confirm": "on"})
    assert response.status_code == 422
    assert versions(rt) == [1]


def test_two_admins_publishing_at_once_lose_nothing(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from portal_policy import staff_policy

    def collide(*args: object, **kwargs: object) -> None:
        raise IntegrityError("INSERT policy_version", {}, Exception("unique version"))

    publish(rt, V1)
    as_admin(client, rt)
    client.get("/staff/policy")
    monkeypatch.setattr(staff_policy, "publish_new_version", collide)
    response = post_form(client, "/staff/policy/publish", publish_form(V2, 1))
    assert response.status_code == 422
    assert "Someone else published a version at the same moment" in field_error(
        response.text, "source"
    )
    assert textarea(response.text) == V2
