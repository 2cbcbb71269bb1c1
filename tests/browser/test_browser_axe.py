"""The accessibility check itself: axe-core (pinned, integrity-checked) finds and describes
real problems, so a clean result in the journeys means something."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from browser.accessibility import VERSION, assert_accessible

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>
<h1>Sign up</h1><form><input id="name" type="text"><img src="data:,"></form>
<p style="color:#ccc;background:#fff">Hard to read</p></main></body></html>"""


def test_axe_reports_serious_problems_with_their_nodes(chromium: Browser) -> None:
    page = chromium.new_page()
    try:
        page.set_content(BROKEN)
        with pytest.raises(AssertionError) as failure:
            assert_accessible(page, "a page built to fail")
    finally:
        page.close()
    report = str(failure.value)
    assert f"axe-core {VERSION}" in report
    assert "[critical] label:" in report and "#name" in report  # the unlabelled input
    assert "[critical] image-alt:" in report
    assert "[serious] color-contrast:" in report
