"""The client journey with a keyboard alone (Tab, Shift+Tab, Space, Enter, and typing text; no
clicks): every focused control is visibly marked, Tab follows the reading order, the skip link
works, and after htmx swaps a step in, focus lands on its error summary, not lost on the page."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect
from sqlmodel import select

from browser.browsing import DESKTOP, Portal, Watched, focused, press, tab_to
from portal.db import transaction
from portal.models import Enrollment, EnrollmentStatus
from portal_signature.models import Signature


def test_a_keyboard_user_completes_the_journey(
    portal: Portal, open_page: Callable[..., Watched]
) -> None:
    link = portal.invite("Riley Moss", "riley@example.com")
    client = open_page(DESKTOP)
    page = client.page
    page.goto(link)
    client.check("the welcome page")

    # The first Tab reaches the skip link, shown when focused; it leads into the content.
    skip = press(client, "Tab")
    assert skip["tag"] == "a" and skip["text"] == "Skip to content"
    press(client, "Enter")
    expect(page.locator("#main")).to_be_focused()
    begin = press(client, "Tab")
    assert begin["text"] == "Begin"
    press(client, "Enter")

    # The policy: through its links to the button; Shift+Tab steps back, Tab forward again.
    expect(page).to_have_url(re.compile(r"/onboarding/policy$"))
    tab_to(client, "button[value=save]")
    back = press(client, "Shift+Tab")
    assert back["tag"] == "a", back
    press(client, "Tab")
    press(client, "Enter")

    # Contact: a wrong number, then Enter. Leaving the field validates it inline without
    # taking focus away; submitting moves focus to the error summary swapped in by htmx.
    expect(page).to_have_url(re.compile(r"/onboarding/contact$"))
    tab_to(client, "#f-phone_0_number")
    page.keyboard.type("12345")
    tab_to(client, "#f-phone_0_kind")
    expect(page.locator("#err-phone_0_number")).to_contain_text("valid phone number")
    expect(page.locator("#f-phone_0_kind")).to_be_focused()
    # The message pushed the focused select down; it is still on screen, not below the fold.
    assert focused(page)["onscreen"], "the inline error pushed the focused control off screen"
    page.keyboard.type("c")  # a select's type-ahead: the first kind starting with c
    expect(page.locator("#f-phone_0_kind")).to_have_value("cell")
    tab_to(client, "#f-phone_0_voicemail")
    press(client, "Space")
    expect(page.locator("#f-phone_0_voicemail")).to_be_checked()
    tab_to(client, "button[value=save]")
    press(client, "Enter")
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("valid phone number")
    client.check("the contact step with an error, after the htmx swap")
    # The summary's link takes focus to the field, to fix it.
    fix = press(client, "Tab")
    assert fix["tag"] == "a" and "valid phone number" in fix["text"]
    press(client, "Enter")
    expect(page.locator("#f-phone_0_number")).to_be_focused()
    page.keyboard.press("End")  # text editing keys, to replace what was typed
    for _ in range(5):
        page.keyboard.press("Backspace")
    page.keyboard.type("(206) 555-0177")
    expect(page.locator("#f-phone_0_number")).to_have_value("(206) 555-0177")
    tab_to(client, "button[value=save]")
    press(client, "Enter")

    # Testimonials: "No" is the first choice, as easy as any other.
    expect(page).to_have_url(re.compile(r"/onboarding/testimonial$"))
    client.check("the testimonial step")
    tab_to(client, "#f-choice")
    press(client, "Space")
    expect(page.locator("#f-choice")).to_be_checked()
    tab_to(client, "button[value=save]")
    press(client, "Enter")

    # Signing alone.
    expect(page).to_have_url(re.compile(r"/onboarding/sign$"))
    tab_to(client, "#f-party")
    press(client, "Space")
    tab_to(client, "button.primary[value=save]")
    press(client, "Enter")
    expect(page.get_by_role("heading", name="Riley Moss, please sign")).to_be_visible()
    client.check("the signing page")
    tab_to(client, "#f-esign_consent")
    press(client, "Space")
    assert press(client, "Tab")["id"] == "f-acknowledge"
    press(client, "Space")
    assert press(client, "Tab")["id"] == "f-typed_name"
    page.keyboard.type("Riley Moss")
    press(client, "Enter")  # Enter in a text field submits with the form's first button: Sign

    expect(page).to_have_url(re.compile(r"/onboarding/done$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Thank you, Riley"))
    client.check("the done page")
    assert "signed copy (PDF)" in tab_to(client, "a[href$='receipt.pdf']")["text"]

    with transaction(portal.rt.engine) as db:
        [enrollment] = db.exec(select(Enrollment)).all()
        assert enrollment.status == EnrollmentStatus.COMPLETE
        assert [s.typed_name for s in db.exec(select(Signature))] == ["Riley Moss"]
