"""What the browser tests share: devices, the served portal, watched pages, screenshots."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import STAFF_PASSWORD, invite
from playwright.sync_api import ConsoleMessage, Page

from browser.accessibility import assert_accessible
from portal.mail_catcher import CaughtMail, MailCatcher
from portal.mailer import deliver_due
from portal.runtime import Runtime

# The README's pictures are refreshed only on request (`make screenshots`): pages show dates
# and times, so writing docs/ on every run would change committed files each time.
SCREENSHOTS = Path(
    os.environ.get("PORTAL_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "portal-screenshots"
)
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 1,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
    ),
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}
TIMEOUT_MS = 15_000


@dataclass
class Portal:
    """The app served on loopback, its runtime, and the SMTP server that catches its mail."""

    base_url: str
    rt: Runtime
    mail: MailCatcher

    def deliver(self) -> None:
        """Deliver what the outbox holds now (in a thread: Playwright owns this one's loop)."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, deliver_due(self.rt.engine, self.rt.settings)).result()

    def mail_to(self, address: str, subject: str = "", timeout: float = 20.0) -> CaughtMail:
        """The latest mail to `address` whose subject contains `subject`, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                m
                for m in self.mail.mails
                if address in m.envelope_to and subject.lower() in m.subject.lower()
            ]
            if found:
                return found[-1]
            subjects = [m.subject for m in self.mail.mails]
            assert time.monotonic() < deadline, f"no mail to {address} ({subject!r}): {subjects}"
            time.sleep(0.1)

    def invite(self, name: str, email: str) -> str:
        """Invite a client as the front desk does; return the link from the mail they get."""
        invite(self.rt, name=name, email=email)
        self.deliver()
        return link_in(self.mail_to(email))


def link_in(mail: CaughtMail, path: str = "") -> str:
    """The first link in a mail (whose path starts with `path`), as a reader would click it."""
    match = re.search(rf"http://127\.0\.0\.1:\d+/{re.escape(path)}\S*", mail.text)
    assert match, f"no link in the mail:\n{mail.text}"
    return match.group(0)


@dataclass
class Watched:
    """A page whose console errors are collected: the app's CSP has no unsafe-inline, so a
    refused script or style shows up here as a bug in a template or a static file."""

    page: Page
    problems: list[str] = field(default_factory=list)
    # With JavaScript off, axe (whose run waits on timers) cannot run in the page itself: it
    # runs on a copy of the page's HTML in this page, from a context with JavaScript on.
    checker: Page | None = None

    def check(self, where: str) -> None:
        """Accessibility (axe-core) of the page as it is now, and no CSP or script error."""
        if self.checker is None:
            assert_accessible(self.page, where)
        else:
            copy = self.page.content().replace("<head>", f'<head><base href="{self.page.url}">', 1)
            self.checker.set_content(copy)
            assert_accessible(self.checker, f"{where} (without JavaScript)")
        assert not self.problems, f"browser errors on {where}:\n" + "\n".join(self.problems)


def watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        # A 422 is the app answering a form with its errors, on purpose.
        if message.type == "error" and "status of 422" not in message.text:
            watched.problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.set_default_timeout(TIMEOUT_MS)
    return watched


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    """Write SCREENSHOTS/NAME.png (docs/screenshots with `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret injects a <style>, which the app's CSP rightly refuses.
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page, caret="initial")


def staff_sign_in(watched: Watched, base_url: str, email: str) -> None:
    page = watched.page
    page.goto(f"{base_url}/staff/login")
    watched.check("the staff sign-in page")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/staff/(\?.*)?$"))


def focused(page: Page) -> dict[str, Any]:
    """What has the keyboard focus, and whether a sighted user can see where it is."""
    state: dict[str, Any] = page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return {
                tag: el.tagName.toLowerCase(), id: el.id, type: el.type || "",
                name: el.name || "", text: (el.innerText || el.value || "").trim().slice(0, 80),
                outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
                onscreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
                          && box.top < innerHeight && box.left < innerWidth,
            };
        }"""
    )
    return state


def press(watched: Watched, key: str) -> dict[str, Any]:
    """Press a key; return what has focus then, after checking a sighted keyboard user can see
    it (a visible outline, on screen) and that Tab moved forward in reading order (Shift+Tab
    backward): no positive tabindex or CSS reordering sends focus jumping around the page."""
    page = watched.page
    page.keyboard.press(key)
    if key == "Enter":  # it may navigate: the caller waits for what should follow
        return {}
    state = focused(page)
    where = f"{state['tag']}#{state['id']} {state['text']!r} on {page.url}"
    if state["tag"] != "body":
        assert state["outline"], f"no visible focus indicator on {where}"
        assert state["onscreen"], f"focus went off screen: {where}"
    if key in ("Tab", "Shift+Tab"):
        in_order = page.evaluate(
            """(forward) => {
                const el = document.activeElement, prev = window.__keyboardPrevious;
                window.__keyboardPrevious = el;
                if (!prev || !prev.isConnected || prev === el) { return true; }
                const after = prev.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING;
                return forward ? Boolean(after) : !after;
            }""",
            key == "Tab",
        )
        assert in_order, f"{key} moved focus against the reading order, to {where}"
    return state


def tab_to(watched: Watched, selector: str, limit: int = 120) -> dict[str, Any]:
    """Press Tab until the element matching `selector` has focus (each step checked)."""
    for _ in range(limit):
        state = press(watched, "Tab")
        if watched.page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return state
    raise AssertionError(f"{selector} never got focus in {limit} presses of Tab")
