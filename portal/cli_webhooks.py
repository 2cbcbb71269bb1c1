"""`portal webhook ...`: endpoints that receive a signed POST on each change."""

from __future__ import annotations

import click

from portal.audit import Actor, RequestMeta
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.webhooks import admin


@click.group("webhook")
def webhook() -> None:
    """Webhooks for EHR systems: a signed POST listing the clients that changed."""


@webhook.command("add")
@click.argument("url")
@click.option("--name", help="A name for the endpoint (default: the URL's host).")
def add(url: str, name: str | None) -> None:
    """Add an endpoint. Prints its signing secret once, as the last line."""
    rt = open_runtime()
    try:
        with transaction(rt.engine) as db:
            endpoint, secret = admin.create(
                db,
                url=url,
                name=name,
                actor=Actor("cli", "webhook-add"),
                meta=RequestMeta.none(),
                now=utcnow(),
                allow_any_http=rt.settings.demo,
            )
    except admin.WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added webhook {endpoint.name!r}: changes from now on are POSTed to it.")
    click.echo("Give this signing secret to the receiver now; it is not shown again:")
    click.echo(secret)


@webhook.command("list")
def list_endpoints() -> None:
    """Every endpoint: name, URL, and whether deliveries succeed."""
    rt = open_runtime()
    with transaction(rt.engine, read_only=True) as db:
        rows = admin.all_endpoints(db)
    if not rows:
        click.echo("No webhooks yet: portal webhook add URL")
        return
    for endpoint in rows:
        click.echo(f"{endpoint.name}\t{endpoint.url}\t{admin.status(endpoint)}")


@webhook.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Stop deliveries to an endpoint (it is disabled and kept, with its history)."""
    rt = open_runtime()
    with transaction(rt.engine) as db:
        endpoint = admin.by_name(db, name)
        if endpoint is None:
            raise click.ClickException("No webhook has that name (see: portal webhook list).")
        changed = admin.disable(
            db, endpoint, actor=Actor("cli", "webhook-remove"), meta=RequestMeta.none(),
            now=utcnow(),
        )  # fmt: skip
    click.echo(f"Disabled {endpoint.name!r}." if changed else f"{endpoint.name!r} was disabled.")


@webhook.command("rotate-secret")
@click.argument("name")
def rotate_secret(name: str) -> None:
    """A new signing secret, printed once as the last line; the old one signs for 24 hours."""
    rt = open_runtime()
    try:
        with transaction(rt.engine) as db:
            endpoint = admin.by_name(db, name)
            if endpoint is None:
                raise admin.WebhookError("No webhook has that name (see: portal webhook list).")
            secret = admin.rotate_secret(
                db, endpoint, actor=Actor("cli", "webhook-rotate"), meta=RequestMeta.none(),
                now=utcnow(),
            )  # fmt: skip
    except admin.WebhookError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"New secret for {endpoint.name!r}; requests carry both signatures for 24 hours:")
    click.echo(secret)
