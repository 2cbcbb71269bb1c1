"""The results table: printed, and written into docs/benchmarks.md with the machine it ran on."""

from __future__ import annotations

import os
import platform
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results -->", "<!-- /bench:results -->"


@dataclass(frozen=True)
class Row:
    figure: str
    database: str
    value: str
    goal: str
    passed: bool


def table(rows: list[Row]) -> str:
    lines = [
        "| figure | database | value | goal | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        verdict = "pass" if row.passed else "**fail**"
        lines.append(f"| {row.figure} | {row.database} | {row.value} | {row.goal} | {verdict} |")
    return "\n".join(lines)


def machine(postgres_version: str | None, busy: str) -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    ram = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        ram = f", {int(found.group(1)) / 1024 / 1024:.0f} GiB RAM" if found else ""
    parts = [
        f"{cpu}, {os.cpu_count()} cores{ram}",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"PostgreSQL {postgres_version}" if postgres_version else "PostgreSQL not measured",
        f"run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    return "; ".join(parts) + (f". {busy}" if busy else ".")


def write_doc(rows: list[Row], clients: int, about: str) -> None:
    """Replace the results section of docs/benchmarks.md (between its markers)."""
    block = (
        f"{BEGIN}\n`make bench` with {clients:,} clients. Machine: {about}\n\n{table(rows)}\n{END}"
    )
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n## Latest results\n\n" + block + "\n"
    DOC.write_text(doc)
