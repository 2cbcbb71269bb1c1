"""`portal demo` as a newcomer runs it: one command, then a working portal and caught mail."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from portal.mail_catcher import free_port

PORTAL = str(Path(sys.executable).parent / "portal")


def test_demo_runs_with_data_mail_and_a_ready_link(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    process = subprocess.Popen(
        [
            PORTAL,
            "demo",
            "--port",
            str(port),
            "--folder",
            str(tmp_path / "demo"),
            "--public-url",
            f"http://127.0.0.1:{port}/",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while "/i/" not in output:
            assert time.monotonic() < deadline, output
            line = process.stdout.readline()
            assert line or process.poll() is None, output
            output += line
        base = f"http://127.0.0.1:{port}"
        assert f"Demo portal:      {base}/" in output
        link = re.search(rf"{re.escape(base)}/i/\S+", output)
        assert link
        with httpx.Client(base_url=base, timeout=10) as browser:
            for _ in range(100):
                try:
                    browser.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert "Begin" in browser.get(link.group(0)).text
            assert "Version 1" in browser.get("/policy").text
            # The in-process outbox hands the demo's invitations to the embedded SMTP server.
            for _ in range(100):
                inbox = browser.get("/demo/mail").text
                if inbox.count("please complete your onboarding") >= 4:
                    break
                time.sleep(0.2)
            assert inbox.count("please complete your onboarding") >= 4, inbox
            assert "your signed acknowledgement" not in inbox  # demo clients allowed no email
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    database = sqlite3.connect(tmp_path / "demo" / "portal.db")
    statuses = {row[0] for row in database.execute("SELECT status FROM enrollment")}
    assert statuses == {"invited", "in_progress", "complete"}
    # Three demo clients plus the fresh invitation printed for the newcomer.
    assert database.execute("SELECT count(*) FROM client").fetchone()[0] == 4
