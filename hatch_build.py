"""Build hook: fetch pinned third-party assets from the npm registry into the source tree.

The repository holds only code written for it, so these are fetched at build time, checked
against the registry's published sha512, and included in the wheel even though git ignores
them:

- htmx, served by the app itself (pages work without it);
- the DejaVu Sans fonts, so a receipt PDF prints any Latin, Greek or Cyrillic name and comes out
  byte-identical on every machine (without them it falls back to the system's DejaVu, or to
  Helvetica).

Set PORTAL_REQUIRE_ASSETS=1 (CI, Docker) to make a failed fetch an error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script (python hatch_build.py) to fetch for development
    BuildHookInterface = object  # type: ignore[assignment,misc]


class Asset(NamedTuple):  # not a dataclass: hatchling loads this file outside sys.modules
    package: str
    version: str
    sha512: str  # the registry's dist.integrity, base64
    files: dict[str, str]  # path in the package tarball -> path in the source tree

    @property
    def url(self) -> str:
        name = self.package.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.package}/-/{name}-{self.version}.tgz"


ASSETS = (
    Asset(
        "htmx.org",
        "2.0.8",
        "fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kFisLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q==",
        {"package/dist/htmx.min.js": "portal/static/htmx.min.js"},
    ),
    Asset(
        "dejavu-fonts-ttf",
        "2.37.3",
        "f1hd7jJbeQa1VWcw+K2KrTXS50zTMaHpVC4XIKJpNcDeYR5ajMtj/iLlQDYNvLOKamUB3ARVVCf79lNwNVztSQ==",
        {
            "package/ttf/DejaVuSans.ttf": "plugins/portal_signature/fonts/DejaVuSans.ttf",
            "package/ttf/DejaVuSans-Bold.ttf": "plugins/portal_signature/fonts/DejaVuSans-Bold.ttf",
            "package/LICENSE": "plugins/portal_signature/fonts/LICENSE",
        },
    ),
)


def fetch(root: Path, asset: Asset) -> list[Path]:
    targets = [root / path for path in asset.files.values()]
    if all(target.is_file() for target in targets):
        return targets
    with urllib.request.urlopen(asset.url, timeout=120) as response:  # noqa: S310 (fixed https)
        archive = response.read()
    digest = base64.b64encode(hashlib.sha512(archive).digest()).decode()
    if digest != asset.sha512:
        raise RuntimeError(f"{asset.package} {asset.version} does not match its sha512")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member_name, path in asset.files.items():
            member = tar.extractfile(member_name)
            if member is None:
                raise RuntimeError(f"{asset.package} has no {member_name}")
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(member.read())
    return targets


def wheel_path(path: str) -> str:
    """Where a source-tree file lands in the wheel (plugins/x/... is installed as x/...)."""
    return path.removeprefix("plugins/")


class AssetsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        for asset in ASSETS:
            try:
                fetch(Path(self.root), asset)
            except Exception as exc:
                if os.environ.get("PORTAL_REQUIRE_ASSETS") == "1":
                    raise
                self.app.display_warning(f"{asset.package} not fetched ({exc}).")
                continue
            if self.target_name == "wheel" and version != "editable":
                for path in asset.files.values():
                    build_data["force_include"][str(Path(self.root) / path)] = wheel_path(path)


if __name__ == "__main__":
    for asset in ASSETS:
        try:
            for path in fetch(Path(__file__).resolve().parent, asset):
                print(path)
        except Exception as exc:
            if os.environ.get("PORTAL_REQUIRE_ASSETS") == "1":
                raise
            print(f"warning: {asset.package} not fetched ({exc}).")
