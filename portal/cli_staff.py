"""`portal staff ...`: staff accounts from the command line."""

from __future__ import annotations

import sys

import click

from portal.audit import Actor, RequestMeta
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.staff import accounts
from portal.staff.models import Role


@click.group()
def staff() -> None:
    """Staff accounts: admin, therapist, front desk."""


@staff.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", default="", help="Full name (defaults to the part before the @).")
def add(email: str, role: str, name: str) -> None:
    """Create a staff account. The password is read from standard input when piped."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    rt = open_runtime()
    try:
        with transaction(rt.engine) as db:
            account = accounts.create(
                db,
                email=email,
                name=name,
                role=role,
                password=password,
                actor=Actor("cli", "staff-add"),
                meta=RequestMeta.none(),
                now=utcnow(),
            )
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {account.role} account for {account.email}.")


@staff.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an account; its sessions end at once."""
    rt = open_runtime()
    with transaction(rt.engine) as db:
        account = accounts.by_email(db, email)
        if account is None:
            raise click.ClickException("No staff account has that email address.")
        accounts.set_disabled(
            db,
            account,
            True,
            actor=Actor("cli", "staff-disable"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    click.echo(f"Disabled {email}; its sessions have ended.")


@staff.command("require-totp")
@click.argument("state", type=click.Choice(["on", "off"]))
def require_totp(state: str) -> None:
    """Require a second sign-in step (TOTP) for every staff account, or stop requiring it."""
    rt = open_runtime()
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        if practice is None:
            raise click.ClickException("Set the practice's details first: portal practice set")
        practice.require_staff_totp = state == "on"
        db.add(practice)
    click.echo(f"Two-step sign-in is {'required' if state == 'on' else 'optional'} for staff.")
