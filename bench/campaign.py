"""A policy change notifying every client who may be emailed, until the SMTP server has it all.

The new version is published the way the admin page does it (`publish_new_version`: the
version and its campaign's emails commit together); the mail goes out through a real
`portal mail-worker` process to a real SMTP server (aiosmtpd, the test suite's catcher).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import dataset
from bench.report import Row
from portal.app import create_app
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher
from portal.models import Practice
from portal.runtime import Runtime

SUBJECT = "We've updated our"


def _publish(rt: Runtime) -> int:
    from portal_policy import publishing, service
    from portal_policy.rendering import default_policy_source

    source = default_policy_source() + "\n\n## Changes\n\nWe now answer email within two days.\n"
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None and service.current(db) is not None
        _, campaign = publishing.publish_new_version(
            db, rt.services, source, practice,
            actor=Actor("staff", "bench"), meta=RequestMeta.none(), now=utcnow(),
        )  # fmt: skip
        assert campaign is not None
        return campaign.clients_notified


def measure(url: str, timeout: float) -> Row:
    catcher = MailCatcher().start()
    settings = dataset.settings_for(url, smtp_host="127.0.0.1", smtp_port=catcher.port)
    rt: Runtime = create_app(settings).state.runtime
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEYS": dataset.SECRET,
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(catcher.port),
    }
    portal = str(Path(sys.executable).with_name("portal"))
    worker = None
    try:
        began = time.perf_counter()
        notified = _publish(rt)
        published = time.perf_counter() - began
        worker = subprocess.Popen([portal, "mail-worker"], env=env)  # noqa: S603
        deadline = time.monotonic() + timeout
        while True:
            caught = [m for m in catcher.mails if SUBJECT in m.subject]
            if len(caught) >= notified or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - began
        time.sleep(1)  # anything sent twice would arrive now
        caught = [m for m in catcher.mails if SUBJECT in m.subject]
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=15)
        catcher.stop()
        rt.engine.dispose()
    recipients = Counter(tuple(m.envelope_to) for m in caught)
    lost = notified - len(recipients)
    duplicated = sum(n - 1 for n in recipients.values())
    value = (
        f"{notified:,} queued (publish {published:.1f} s), {len(recipients):,} delivered in "
        f"{seconds:.1f} s, {lost} lost, {duplicated} duplicated"
    )
    return Row(
        f"Policy change notifying {notified:,} clients",
        "SQLite",
        value,
        "none lost or duplicated",
        lost == 0 and duplicated == 0 and notified > 0,
    )
