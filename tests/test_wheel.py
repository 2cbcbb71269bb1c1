"""`pip install .` (not editable) gives a working `portal` with templates and static files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from portal.mail_catcher import free_port

ROOT = Path(__file__).resolve().parent.parent


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is required to build the wheel (make install provides it)")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = (work / "dist").glob("*.whl")
    subprocess.run(
        [uv, "venv", "--python", sys.executable, str(work / "venv")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [uv, "pip", "install", "--python", str(work / "venv" / "bin" / "python"), str(wheel)],
        check=True,
        capture_output=True,
    )
    return work


def test_wheel_contains_templates_static_and_migrations(installed: Path) -> None:
    [wheel] = (installed / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "portal/templates/base.html",
        "portal/templates/wizard/step.html",
        "portal/static/portal.css",
        "portal/static/htmx.min.js",
        "portal/migrations/env.py",
        "portal/migrations/versions/host_0001_initial.py",
        "portal_policy/default_policy.md",
        "portal_policy/templates/policy/step.html",
        "portal_signature/fonts/DejaVuSans.ttf",
        "portal_signature/fonts/DejaVuSans-Bold.ttf",
        "portal_signature/fonts/LICENSE",
    ]:
        assert expected in names, f"{expected} is missing from the wheel"


def test_installed_portal_command_serves_pages(installed: Path, tmp_path: Path) -> None:
    portal = str(installed / "venv" / "bin" / "portal")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PORTAL_SECRET_KEYS": "w" * 40,
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            [portal, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    run("migrate")
    run(
        "practice",
        "set",
        "--name",
        "Wheel Test Practice",
        "--phone",
        "555",
        "--email",
        "a@example.com",
        "--website",
        "https://example.com",
        "--licensing-board",
        "Board",
        "--crisis-line",
        "Call 988",
    )
    assert "Published version 1" in run("policy", "publish", "--default")
    port = free_port()
    server = subprocess.Popen(
        [portal, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        policy = urllib.request.urlopen(f"{base}/policy").read().decode()  # noqa: S310
        assert "Wheel Test Practice" in policy and "988" in policy
        css = urllib.request.urlopen(f"{base}/static/portal.css")  # noqa: S310
        assert css.status == 200
        htmx = urllib.request.urlopen(f"{base}/static/htmx.min.js")  # noqa: S310
        assert htmx.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
