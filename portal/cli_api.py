"""`portal api-key ...`: keys for EHR systems from the command line."""

from __future__ import annotations

import click

from portal.api import keys
from portal.audit import Actor, RequestMeta
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow


@click.group("api-key")
def api_key() -> None:
    """API keys for EHR systems (sent as 'Authorization: Bearer KEY')."""


@api_key.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([s.value for s in keys.Scope]),
    help="What the key may read (repeat for several; default: clients:read).",
)
def add(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key. Prints it once, as the last line: it is stored only as a hash."""
    rt = open_runtime()
    try:
        with transaction(rt.engine) as db:
            key, secret = keys.create(
                db,
                name=name,
                scopes=scopes or (keys.Scope.CLIENTS_READ.value,),
                actor=Actor("cli", "api-key-add"),
                meta=RequestMeta.none(),
                now=utcnow(),
            )
    except keys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created API key {key.name!r} with scopes {', '.join(key.scopes)}.")
    click.echo("Store it now; it cannot be shown again:")
    click.echo(secret)


@api_key.command("list")
def list_keys() -> None:
    """Every key: name, scopes, created, last used, revoked."""
    rt = open_runtime()
    with transaction(rt.engine, read_only=True) as db:
        rows = keys.all_keys(db)
    if not rows:
        click.echo("No API keys yet: portal api-key add NAME")
        return
    for key in rows:
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        click.echo(
            f"{key.name}\t{','.join(key.scopes)}\tcreated {key.created_at:%Y-%m-%d %H:%M}"
            f"\tlast used {used}\t{state}"
        )


@api_key.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a key by name: it stops working at once."""
    rt = open_runtime()
    with transaction(rt.engine) as db:
        key = keys.by_name(db, " ".join(name.split()))
        if key is None:
            raise click.ClickException("No API key has that name (see: portal api-key list).")
        changed = keys.revoke(
            db, key, actor=Actor("cli", "api-key-revoke"), meta=RequestMeta.none(), now=utcnow()
        )
    click.echo(f"Revoked {key.name!r}." if changed else f"{key.name!r} was revoked already.")
