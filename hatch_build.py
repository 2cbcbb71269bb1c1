"""Build hook: fetch the pinned htmx release from the npm registry into portal/static.

The repository holds only code written for it, so htmx is fetched at build time, checked
against the registry's published sha512, and included in the wheel even though git ignores it.
Pages work without it; set PORTAL_REQUIRE_HTMX=1 (CI, Docker) to make a failed fetch an error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script (python hatch_build.py) to fetch htmx for development
    BuildHookInterface = object  # type: ignore[assignment,misc]

HTMX_VERSION = "2.0.8"
HTMX_URL = f"https://registry.npmjs.org/htmx.org/-/htmx.org-{HTMX_VERSION}.tgz"
HTMX_SHA512 = (
    "fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kFisLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q=="
)
TARGET = Path("portal") / "static" / "htmx.min.js"


def fetch_htmx(root: Path) -> Path:
    target = root / TARGET
    if target.is_file():
        return target
    with urllib.request.urlopen(HTMX_URL, timeout=60) as response:
        archive = response.read()
    digest = base64.b64encode(hashlib.sha512(archive).digest()).decode()
    if digest != HTMX_SHA512:
        raise RuntimeError(f"htmx {HTMX_VERSION} from the registry does not match its sha512")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile("package/dist/htmx.min.js")
        if member is None:
            raise RuntimeError("htmx archive has no dist/htmx.min.js")
        data = member.read()
    target.write_bytes(data)
    return target


class HtmxBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        try:
            target = fetch_htmx(Path(self.root))
        except Exception as exc:
            if os.environ.get("PORTAL_REQUIRE_HTMX") == "1":
                raise
            self.app.display_warning(f"htmx not fetched ({exc}); pages work without it.")
            return
        if self.target_name == "wheel" and version != "editable":
            build_data["force_include"][str(target)] = str(TARGET)


if __name__ == "__main__":
    try:
        print(fetch_htmx(Path(__file__).resolve().parent))
    except Exception as exc:
        if os.environ.get("PORTAL_REQUIRE_HTMX") == "1":
            raise
        print(f"warning: htmx not fetched ({exc}); pages work without it.")
