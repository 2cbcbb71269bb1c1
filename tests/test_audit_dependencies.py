"""scripts/audit_dependencies.py (`make audit`): a vulnerability audit of uv.lock that never
reports a clean result when it could not consult the advisory data. No network needed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from portal.mail_catcher import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_dependencies.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_an_unreachable_advisory_service_fails_loudly() -> None:
    """Every request goes to a proxy on a closed port: pip-audit cannot ask anyone."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in {"no_proxy", "all_proxy"}}
    env.update(HTTPS_PROXY=closed, HTTP_PROXY=closed, https_proxy=closed, http_proxy=closed)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--timeout", "5"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not reach the advisory database" in done.stderr
    assert "No known vulnerabilities" not in done.stdout + done.stderr


def report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def run_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: dict[str, Any]
) -> tuple[int, ModuleType]:
    script = load_script()
    path = tmp_path / "report.json"
    path.write_text(json.dumps(answer))
    monkeypatch.setattr(script, "locked_requirements", lambda folder: folder / "req.txt")
    monkeypatch.setattr(script, "run_pip_audit", lambda *args: path)
    return script.main([]), script


def test_packages_the_service_could_not_answer_for_are_not_clean(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What pip-audit reports where the advisory API answers 404: every package skipped."""
    reason = "Dependency not found on PyPI and could not be audited"
    skipped = report(
        {"name": "starlette", "skip_reason": reason},
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
    )
    code, _ = run_with(monkeypatch, tmp_path, skipped)
    out = capsys.readouterr()
    assert code == 2
    assert "could not reach the advisory database (pypi) for 1 of 2 locked packages" in out.err
    assert "No known vulnerabilities" not in out.out


def test_vulnerabilities_are_listed_with_their_fixes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vulnerable = report(
        {"name": "starlette", "version": "1.3.0",
         "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["1.3.1"]}]},
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
    )  # fmt: skip
    code, _ = run_with(monkeypatch, tmp_path, vulnerable)
    assert code == 1
    assert "VULNERABLE starlette 1.3.0: GHSA-xxxx (fixed in 1.3.1)" in capsys.readouterr().out


def test_a_clean_result_counts_what_was_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = report(
        {"name": "starlette", "version": "1.10.0", "vulns": []},
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
    )
    code, _ = run_with(monkeypatch, tmp_path, clean)
    assert code == 0
    assert "No known vulnerabilities in 2 locked packages (pypi)." in capsys.readouterr().out


def test_the_lock_pins_releases_with_their_security_fixes() -> None:
    """Floors from published advisories (a fresh audit is `make audit`; this holds the line)."""
    floors = {
        "starlette": (1, 3, 1),  # form limits ignored (CVE-2026-54283), Host header (-48710)
        "jinja2": (3, 1, 6),  # sandbox breakout through |attr (CVE-2025-27516)
        "python-multipart": (0, 0, 30),  # CVE-2026-53539; part-header DoS (CVE-2026-42561)
        "aiosmtpd": (1, 4, 6),  # SMTP smuggling, STARTTLS injection (CVE-2024-27305, -34083)
        "h11": (0, 16, 0),  # request smuggling (CVE-2025-43859)
        "urllib3": (2, 6, 0),  # decompression bombs, redirects (CVE-2025-66418, -66471, -50181)
        "requests": (2, 32, 4),  # .netrc credential leak (CVE-2024-47081)
        "idna": (3, 7),  # quadratic encode (CVE-2024-3651)
        "anyio": (4, 4, 0),  # thread race crash (GHSA-mr82-8j83-vxmv)
        "pypdf": (6, 16, 1),  # 2025-2026 DoS advisories (CVE-2026-84310, -84311)
    }
    import tomllib

    lock = tomllib.loads((SCRIPT.parent.parent / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    for name, floor in floors.items():
        assert name in locked, f"{name} is no longer locked: drop it from this list"
        version = tuple(int(part) for part in locked[name].split(".")[: len(floor)])
        assert version >= floor, f"{name} {locked[name]} predates its security fix {floor}"
