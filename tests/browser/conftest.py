"""Real-browser fixtures: Debian's Chromium driven by Playwright, and the real app served on
loopback by uvicorn, delivering its own mail to the test SMTP server (aiosmtpd).

Chromium is required: without /usr/bin/chromium (apt-get install -y chromium; .ci/run does it)
these tests fail, they are never skipped. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import publish_default
from playwright.sync_api import Browser, BrowserContext, sync_playwright
from processes import live_portal

from browser.browsing import Portal, Watched, watch
from portal.mail_catcher import MailCatcher
from portal.settings import Settings

CHROMIUM = Path(os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps calling home, and a closed network
# refuses it; none of them changes what a page does.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per test module (Playwright's sync API holds the thread's event loop while
    it runs, so it is not left open for the rest of the suite)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is required for the browser tests and is not at {CHROMIUM}. "
            "Install it with `apt-get install -y chromium` (.ci/run does), or point "
            "PORTAL_TEST_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def portal(settings: Settings, mail: MailCatcher) -> Iterator[Portal]:
    """The real app under uvicorn on loopback, with a practice and its published policy; it
    delivers its own mail (as `portal serve` does) to the test SMTP server."""
    with live_portal(settings) as (base, rt):
        publish_default(rt)
        yield Portal(base, rt, mail)


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Callable[..., Watched]]:
    """open_page(device, **options): a watched page in a fresh browser context (its own
    cookies: one person on one device)."""
    contexts: list[BrowserContext] = []

    def make(device: dict[str, Any], **options: Any) -> Watched:
        context = chromium.new_context(**device, **options)
        contexts.append(context)
        watched = watch(context.new_page())
        if options.get("java_script_enabled") is False:
            checking = chromium.new_context(**device)
            contexts.append(checking)
            checking.route("**/*.js", lambda route: route.abort())  # the copy stays script-free
            watched.checker = checking.new_page()
        return watched

    yield make
    for context in contexts:
        context.close()
