"""Audit the locked dependencies (uv.lock, every group) for published vulnerabilities.

    python scripts/audit_dependencies.py [--service pypi|osv]      (or: make audit)

Exit codes: 0 no known vulnerability in any locked release; 1 vulnerabilities found (listed);
2 the advisory database could not be reached, or could not answer for every package. A run that
could not check a package never reports a clean result: pip-audit alone says "No known
vulnerabilities found" when the advisory service answers 404 for every package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "could not reach the advisory database"


@dataclass
class Findings:
    audited: int = 0
    vulnerable: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)


def interpret(report: dict[str, Any]) -> Findings:
    """What pip-audit's JSON report says, with skipped packages kept apart from clean ones."""
    found = Findings()
    for dep in report.get("dependencies", []):
        name = f"{dep.get('name')} {dep.get('version', '')}".strip()
        if "skip_reason" in dep:
            found.unchecked.append(f"{name}: {dep['skip_reason']}")
            continue
        found.audited += 1
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release yet"
            found.vulnerable.append(f"{name}: {vuln.get('id')} (fixed in {fixed})")
    return found


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    local = ROOT / ".tools" / "bin" / "uv"
    if found:
        return found
    if local.exists():
        return str(local)
    sys.exit("uv is needed to read uv.lock: run `make install` first.")


def locked_requirements(folder: Path) -> Path:
    """Every locked release, all dependency groups, pinned (no network: --frozen --offline)."""
    path = folder / "requirements.txt"
    exported = subprocess.run(  # noqa: S603 - our own fixed arguments
        [uv(), "export", "--frozen", "--offline", "--no-hashes", "--no-emit-project",
         "--all-groups", "--output-file", str(path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if exported.returncode != 0:
        sys.exit(f"uv export failed: {exported.stderr.strip()}")
    return path


def run_pip_audit(requirements: Path, folder: Path, service: str, timeout: int) -> Path | None:
    """pip-audit's JSON report, or None when it failed before writing one."""
    report = folder / "report.json"
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps",
        "--disable-pip", "--vulnerability-service", service, "--format", "json",
        "--output", str(report), "--progress-spinner", "off", "--timeout", str(timeout),
        # A fresh cache each run: an old cached answer must not stand in for a live one.
        "--cache-dir", str(folder / "cache"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if not report.exists() or report.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit stopped: {last[:300]}", file=sys.stderr)
        return None
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audit-") as tmp:
        folder = Path(tmp)
        requirements = locked_requirements(folder)
        report = run_pip_audit(requirements, folder, args.service, args.timeout)
        if report is None:
            print(f"FAILED: {UNREACHABLE} ({args.service}); nothing was checked.", file=sys.stderr)
            return 2
        found = interpret(json.loads(report.read_text()))
    for line in found.vulnerable:
        print(f"VULNERABLE {line}")
    if found.unchecked:
        for line in found.unchecked[:10]:
            print(f"unchecked {line}", file=sys.stderr)
        print(
            f"FAILED: {UNREACHABLE} ({args.service}) for {len(found.unchecked)} of "
            f"{len(found.unchecked) + found.audited} locked packages; their result is unknown.",
            file=sys.stderr,
        )
        return 2
    if found.vulnerable:
        print(f"{len(found.vulnerable)} known vulnerabilities in the locked releases.")
        return 1
    print(f"No known vulnerabilities in {found.audited} locked packages ({args.service}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
