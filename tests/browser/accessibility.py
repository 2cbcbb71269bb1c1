"""axe-core, the accessibility engine, fetched from the npm registry and run in a page.

The release is pinned with the integrity the registry publishes for it (dist.integrity), and
the tarball is checked against it on every load, cached or not. The cache lives outside the
repository (~/.cache/portal-tests, or $PORTAL_TEST_CACHE), so a run needs the network once.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

VERSION = "4.14.1"
# The registry's dist.integrity for VERSION: "sha512-" and the base64 digest.
SHA512 = "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
INTEGRITY = f"sha512-{SHA512}"
REGISTRY = "https://registry.npmjs.org/axe-core"
FAILING_IMPACTS = ("serious", "critical")


def _cache_dir() -> Path:
    return Path(os.environ.get("PORTAL_TEST_CACHE", Path.home() / ".cache" / "portal-tests"))


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _download() -> bytes:
    with urllib.request.urlopen(f"{REGISTRY}/{VERSION}", timeout=60) as response:  # noqa: S310
        meta = json.load(response)
    published = meta["dist"]["integrity"]
    if published != INTEGRITY:
        raise AssertionError(f"axe-core {VERSION}: the registry now says {published}")
    with urllib.request.urlopen(meta["dist"]["tarball"], timeout=120) as response:  # noqa: S310
        return bytes(response.read())


@cache
def source() -> str:
    """The text of axe.min.js, from a tarball whose sha512 matches the pinned integrity."""
    tarball = _cache_dir() / f"axe-core-{VERSION}.tgz"
    data = tarball.read_bytes() if tarball.is_file() else b""
    if _integrity(data) != INTEGRITY:
        try:
            data = _download()
        except OSError as exc:
            raise AssertionError(
                f"axe-core {VERSION} is needed from the npm registry and could not be fetched "
                f"({exc.__class__.__name__}: {exc})"
            ) from exc
        if _integrity(data) != INTEGRITY:
            raise AssertionError(f"axe-core {VERSION}: the tarball does not match {INTEGRITY}")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        tarball.write_bytes(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None, "axe-core tarball without package/axe.min.js"
        return member.read().decode()


def violations(page: Page) -> list[dict[str, Any]]:
    """Run axe on the page as it is now. Evaluated through the DevTools protocol, so it works
    under the app's strict CSP and with JavaScript disabled for the page itself."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html,
                                          summary: n.failureSummary})),
            }));
        }"""
    )
    return found


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        lines.append(f"    {violation['helpUrl']}")
        for node in violation["nodes"]:
            lines.append(f"    - {node['target']}: {node['html'][:200]}")
            lines.append("      " + (node["summary"] or "").replace("\n", "\n      "))
    return "\n".join(lines)


def assert_accessible(page: Page, where: str = "") -> None:
    """No serious or critical axe violation on the page as it is now."""
    failing = [v for v in violations(page) if v["impact"] in FAILING_IMPACTS]
    assert not failing, (
        f"axe-core {VERSION} found serious or critical problems on {where or page.url}:\n"
        + describe(failing)
    )
