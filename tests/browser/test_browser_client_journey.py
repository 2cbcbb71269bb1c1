"""The whole client journey in headless Chromium on a phone-sized screen, with two adults
signing: once as most clients meet it (JavaScript on, htmx), once with JavaScript off (plain
forms). Every page is checked with axe-core; the phone screenshots for the README come from
the htmx run."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from browser.browsing import PHONE, Portal, Watched, screenshot
from portal.db import transaction
from portal.models import Enrollment, EnrollmentStatus
from portal_contact.models import ContactPreference
from portal_signature.models import Signature


def field_error(page: Page, name: str) -> str:
    """The error a screen reader hears with field NAME: the text of what its
    aria-describedby points at, once the field is marked invalid."""
    control = page.locator(f"#f-{name}")
    expect(control).to_have_attribute("aria-invalid", "true")
    described = control.get_attribute("aria-describedby") or ""
    assert f"err-{name}" in described.split(), described
    return page.locator(f"#err-{name}").inner_text()


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_two_adults_complete_the_journey_on_a_phone(
    portal: Portal, open_page: Callable[..., Watched], javascript: bool
) -> None:
    link = portal.invite("Jordan Rivers", "jordan@example.com")
    client = open_page(PHONE, java_script_enabled=javascript)
    page = client.page

    # The welcome page from the emailed link; the link is used only by the button.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Jordan")
    assert page.evaluate("typeof window.htmx") == ("object" if javascript else "undefined")
    client.check("the welcome page")
    if javascript:
        screenshot(page, "phone-welcome")
    page.get_by_role("button", name="Begin").click()

    # The policy.
    expect(page).to_have_url(re.compile(r"/onboarding/policy$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("policy", re.I))
    expect(page.get_by_text("Harbor Light Counseling").first).to_be_visible()
    client.check("the policy step")
    if javascript:
        screenshot(page, "phone-policy", full_page=False)  # its first screen: it is long
    page.get_by_role("button", name="I've read the policy: continue").click()

    # Contact: a number that cannot be right is refused, said in words, tied to its field.
    expect(page).to_have_url(re.compile(r"/onboarding/contact$"))
    page.get_by_label("Phone number").first.fill("12345")
    if javascript:
        page.get_by_label("Kind of phone").first.focus()  # leaving the field validates it
        assert "valid phone number" in field_error(page, "phone_0_number")
        # ...and said once through the page's standing live region.
        expect(page.locator("#announcer[aria-live=polite]")).to_contain_text("valid phone number")
    page.get_by_label("Kind of phone").first.select_option("cell")
    page.locator("#f-phone_0_voicemail-practice_name").check()
    page.get_by_label("Email address").fill("jordan.r@example.com")
    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Save and continue").click()

    summary = page.locator(".error-summary")
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("valid phone number")
    expect(summary).to_contain_text("Email is not fully secure")
    expect(summary).to_be_focused()  # moved there after the swap, or autofocused on load
    # With JavaScript the errors were swapped into this page by htmx; without, a new page.
    assert page.evaluate("window.sameDocument === true") is javascript
    assert "valid phone number" in field_error(page, "phone_0_number")
    assert "not fully secure" in field_error(page, "email_warning_accepted")
    expect(page.get_by_label("Email address")).to_have_value("jordan.r@example.com")
    client.check("the contact step with errors")
    if javascript:
        screenshot(page, "phone-contact")

    page.get_by_label("Phone number").first.fill("(206) 555-0148")
    page.locator("#f-email_warning_accepted").check()
    page.get_by_role("button", name="Save and continue").click()

    # Testimonials: yes, anonymously, on the website only.
    expect(page).to_have_url(re.compile(r"/onboarding/testimonial$"))
    client.check("the testimonial step")
    page.locator("#f-choice-anonymous").check()
    page.get_by_label("The practice's website").check()
    page.get_by_role("button", name="Save and continue").click()

    # Who signs: Jordan and another adult.
    expect(page).to_have_url(re.compile(r"/onboarding/sign$"))
    client.check("who signs")
    page.get_by_label("Me and other adults seen together").check()
    page.get_by_label("Full name of other adult 1").fill("Casey Rivers")
    page.get_by_role("button", name="Save and go on to signing").click()

    for name, shot in (("Jordan Rivers", "phone-sign"), ("Casey Rivers", None)):
        expect(page.get_by_role("heading", name=f"{name}, please sign")).to_be_visible()
        if javascript and name == "Casey Rivers":
            # The next signer's form was swapped in by htmx: focus is on its heading, not
            # lost with the button that was replaced.
            expect(page.locator("#step-title")).to_be_focused()
        client.check(f"the signing page for {name}")
        if javascript and shot:
            screenshot(page, shot)
        page.get_by_label("I agree to use electronic records").check()
        page.locator("#f-acknowledge").check()
        page.get_by_label("Type your full name to sign").fill(name)
        page.get_by_role("button", name="Sign", exact=True).click()

    # Done: a thank-you, the choices in plain words, and the receipt.
    expect(page).to_have_url(re.compile(r"/onboarding/done$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Thank you, Jordan"))
    expect(page.get_by_text("(206) 555-0148").first).to_be_visible()
    client.check("the done page")
    if javascript:
        screenshot(page, "phone-done")
    with page.expect_download() as download:
        page.locator("a[href$='receipt.pdf']").first.click()
    receipt = Path(download.value.path()).read_bytes()
    assert receipt.startswith(b"%PDF-")
    assert "Jordan" not in download.value.suggested_filename

    with transaction(portal.rt.engine) as db:
        [enrollment] = db.exec(select(Enrollment)).all()
        assert enrollment.status == EnrollmentStatus.COMPLETE
        signed = sorted(s.typed_name for s in db.exec(select(Signature)))
        assert signed == ["Casey Rivers", "Jordan Rivers"]
        assert len(db.exec(select(ContactPreference)).all()) == 1  # the refused try stored nothing
