"""`portal audit ...`: check the audit log's hash chain from the command line."""

from __future__ import annotations

import click

from portal import audit_chain
from portal.cli_support import open_runtime


@click.group("audit")
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
def verify() -> None:
    """Walk the hash chain; name the first broken link (exit 1), or count the events (exit 0)."""
    rt = open_runtime()
    verdict = audit_chain.verify(rt.engine)
    if not verdict.whole:
        click.echo(f"Audit chain BROKEN after {verdict.count} intact events.", err=True)
        click.echo(verdict.problem, err=True)
        raise SystemExit(1)
    click.echo(f"Audit chain intact: {verdict.count} events. Head hash: {verdict.head}")
