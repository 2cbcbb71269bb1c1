"""The staff side in headless Chromium on a desktop screen: the board's live search (htmx) and a
therapist's countersignature; the admin publishing a new policy version, and a client signing
it again on a phone from the link in the email they get. Every page is checked with axe-core;
the desktop screenshots for the README come from here."""

from __future__ import annotations

import re
from collections.abc import Callable

from helpers import add_client, make_staff
from playwright.sync_api import expect
from sqlmodel import select

from browser.browsing import (
    DESKTOP,
    PHONE,
    Portal,
    Watched,
    link_in,
    screenshot,
    staff_sign_in,
)
from portal.db import transaction
from portal_signature.models import Signature

# Demo-looking people (no real client) at different points of the journey.
CLIENTS: list[tuple[str, str, dict[str, str]]] = [
    ("Jordan Rivers", "jordan@example.com", {"allow_email": "jr@example.com"}),
    ("Sam Okafor", "sam@example.com", {}),
    ("Avery Chen", "avery@example.com", {"until": "sign"}),
    ("Morgan Ellis", "morgan@example.com", {"until": "contact"}),
    ("Priya Natarajan", "priya@example.com", {"allow_email": "priya.n@example.com"}),
]


def board_names(watched: Watched) -> list[str]:
    return watched.page.locator("#results tbody tr td:first-child a").all_inner_texts()


def test_live_search_and_a_countersignature(
    portal: Portal, open_page: Callable[..., Watched]
) -> None:
    for name, email, progress in CLIENTS:
        add_client(portal.rt, name, email, **progress)
    therapist = make_staff(portal.rt, "therapist", name="Dana Whitfield")
    staff = open_page(DESKTOP)
    page = staff.page
    staff_sign_in(staff, portal.base_url, therapist)

    expect(page.get_by_role("heading", level=1)).to_have_text("Clients")
    assert sorted(board_names(staff)) == sorted(name for name, _, _ in CLIENTS)
    staff.check("the consent board")
    screenshot(page, "staff-board")

    # Typing filters the list in place (htmx): no new page, focus stays in the search box,
    # and the address bar keeps the search so Back and a reload show the same list.
    page.evaluate("window.sameDocument = true")
    search = page.get_by_label("Search by name or email")
    search.press_sequentially("okaf", delay=30)
    expect(page.locator("#results tbody tr")).to_have_count(1)
    assert board_names(staff) == ["Sam Okafor"]
    expect(search).to_be_focused()
    expect(page).to_have_url(re.compile(r"[?&]q=okaf"))
    assert page.evaluate("window.sameDocument") is True
    staff.check("the board filtered by the live search")
    search.fill("")
    search.press_sequentially("nobody-here", delay=10)
    expect(page.locator("#results")).to_contain_text('No clients match "nobody-here"')

    # The client's page, and the countersignature: a wrong name is refused and said so.
    search.fill("")
    search.press_sequentially("jordan", delay=10)
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Jordan Rivers").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Jordan Rivers")
    expect(page.get_by_text("Therapist countersignature pending.")).to_be_visible()
    staff.check("the client page")
    screenshot(page, "staff-client")

    page.get_by_label("I have reviewed this acknowledgement").check()
    page.get_by_label("Type your name to countersign").fill("Dana W.")
    page.get_by_role("button", name="Countersign").click()
    expect(page.get_by_role("alert")).to_contain_text("Dana Whitfield")
    staff.check("a refused countersignature")
    page.go_back()
    page.get_by_label("I have reviewed this acknowledgement").check()
    page.get_by_label("Type your name to countersign").fill("Dana Whitfield")
    page.get_by_role("button", name="Countersign").click()
    expect(page.get_by_role("status")).to_have_text("Countersigned.")
    expect(page.get_by_text("Therapist countersignature pending.")).to_have_count(0)
    staff.check("the client page after the countersignature")

    with transaction(portal.rt.engine) as db:
        countersigned = [s for s in db.exec(select(Signature)) if s.typed_name == "Dana Whitfield"]
    assert len(countersigned) == 1


NEW_SECTION = """
## Video sessions

Sessions held online use a secure video service chosen by {{ practice_name }}. Please join from a
private place; we never record sessions.
"""


def test_the_admin_publishes_a_policy_and_a_client_signs_it_again(
    portal: Portal, open_page: Callable[..., Watched]
) -> None:
    add_client(portal.rt, "Jordan Rivers", "jordan@example.com", allow_email="jr@example.com")
    add_client(portal.rt, "Sam Okafor", "sam@example.com")  # allowed no email: asked in person
    admin = open_page(DESKTOP)
    page = admin.page
    staff_sign_in(admin, portal.base_url, make_staff(portal.rt, "admin", name="Alex Moreno"))
    staff_nav = page.get_by_role("navigation", name="Staff")
    staff_nav.get_by_role("link", name="Policy", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Policy and practice details")
    expect(page.get_by_text("2 clients have signed an earlier version")).to_be_visible()
    admin.check("the admin policy page")

    # Edit, preview (the changes are listed), then publish with the confirmation ticked.
    source = page.get_by_label("Policy text (Markdown)")
    source.fill(source.input_value() + NEW_SECTION)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#policy-preview")).to_contain_text("Video sessions")
    admin.check("the policy preview")
    screenshot(page, "admin-policy")
    page.get_by_role("button", name="Publish as version 2").click()
    expect(page.locator(".error-summary")).to_be_focused()  # the confirmation was not ticked
    expect(page.get_by_label(re.compile("I reviewed the changes"))).to_have_attribute(
        "aria-invalid", "true"
    )
    admin.check("the policy page refusing to publish unconfirmed")
    page.get_by_label(re.compile("I reviewed the changes")).check()
    page.get_by_role("button", name="Publish as version 2").click()
    published = page.locator(".notice[role=status]")
    expect(published).to_contain_text("Version 2 is published. 1 client was emailed")
    admin.check("the policy page after publishing")

    # The client opens the email's link on a phone and signs version 2.
    notice = portal.mail_to("jr@example.com", "updated")
    assert "- New section: Video sessions" in notice.text
    client = open_page(PHONE)
    phone = client.page
    phone.goto(link_in(notice, "r/"))
    client.check("the re-acknowledgement welcome")
    phone.get_by_role("button", name="Continue").click()
    expect(phone).to_have_url(re.compile(r"/onboarding/policy$"))
    expect(phone.get_by_text("What changed since version 1")).to_be_visible()
    client.check("the policy step with its changes")
    phone.get_by_role("button", name="I've read the policy: continue").click()
    expect(phone).to_have_url(re.compile(r"/onboarding/sign$"))
    expect(phone.get_by_text("updated its policy to version 2")).to_be_visible()
    client.check("who signs, again")
    phone.get_by_label("Just me").check()
    phone.get_by_role("button", name="Save and go on to signing").click()
    expect(phone.get_by_role("heading", name="Jordan Rivers, please sign")).to_be_visible()
    client.check("signing version 2")
    phone.get_by_label("I agree to use electronic records").check()
    phone.locator("#f-acknowledge").check()
    phone.get_by_label("Type your full name to sign").fill("Jordan Rivers")
    phone.get_by_role("button", name="Sign", exact=True).click()
    expect(phone).to_have_url(re.compile(r"/onboarding/done$"))
    client.check("the done page after signing again")

    # The board no longer asks Jordan to sign again; Sam still has to.
    page.goto(f"{portal.base_url}/staff/")
    jordan = page.locator("#results tr", has_text="Jordan Rivers")
    sam = page.locator("#results tr", has_text="Sam Okafor")
    expect(sam).to_contain_text("Must re-acknowledge")
    expect(jordan).not_to_contain_text("Must re-acknowledge")
    with transaction(portal.rt.engine) as db:
        versions = sorted(s.policy_version for s in db.exec(select(Signature)))
    assert versions == [1, 1, 2]
