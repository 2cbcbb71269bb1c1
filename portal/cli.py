"""The `portal` command line."""

from __future__ import annotations

import asyncio
import logging

import click
import uvicorn

from portal import invitations, migrations
from portal.audit import Actor, RequestMeta
from portal.cli_support import load_settings, open_runtime
from portal.db import make_engine, transaction, utcnow
from portal.mailer import DeliveryLoop, deliver_due
from portal.models import Practice
from portal.validation import clean_email, clean_name
from portal.webhooks import delivery as webhook_delivery


@click.group()
def cli() -> None:
    """Intake portal for mental-health practices."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="WEB_CONCURRENCY",
    help="Worker processes, each with its own app (env: WEB_CONCURRENCY).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the portal (and deliver mail in-process unless PORTAL_MAIL_IN_PROCESS=false)."""
    from portal.app import create_app

    settings = load_settings()
    if settings.check_schema:
        engine = make_engine(settings)
        try:
            migrations.check_current(settings, engine)
        except migrations.SchemaNotCurrent as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
    if workers > 1 and settings.is_sqlite:
        logging.getLogger("portal").warning(
            "%d workers on SQLite: their writes wait on each other in SQLite's busy handler; "
            "one worker serves a practice best, several want PostgreSQL.",
            workers,
        )
    if not settings.demo and "127.0.0.1" in settings.base_url:
        logging.getLogger("portal").warning(
            "PORTAL_BASE_URL is %s: links in mail will only work on this machine.",
            settings.base_url,
        )
    uvicorn.run(
        # Several workers need an import string: each process builds its own app.
        "portal.asgi:app" if workers > 1 else create_app(settings, freeze_heap=True),
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@cli.command()
def migrate() -> None:
    """Create or upgrade every table (host and plugins) to the current schema."""
    settings = load_settings()
    engine = make_engine(settings)
    migrations.upgrade(settings, engine)
    click.echo(f"Database is at {', '.join(sorted(migrations.current(engine)))}.")


@cli.command()
@click.argument("email")
@click.option("--name", required=True, help="The client's full name.")
def invite(email: str, name: str) -> None:
    """Invite a client by email. Prints the invitation link as the last line."""
    clean, problem = clean_email(email)
    full_name, name_problem = clean_name(name, label="client's name")
    if problem or name_problem:
        raise click.ClickException(problem or name_problem or "")
    rt = open_runtime()
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        if practice is None:
            raise click.ClickException("Set the practice's details first: portal practice set")
        _, link = invitations.invite(
            db,
            rt.services,
            practice,
            full_name=full_name,
            email=clean,
            actor=Actor("cli", "invite"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    click.echo("Invitation queued for email delivery.")
    click.echo(link)


@cli.command("mail-worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
def mail_worker(once: bool, interval: float) -> None:
    """Deliver queued mail and webhooks from a separate process (set
    PORTAL_MAIL_IN_PROCESS=false on serve)."""
    rt = open_runtime()
    if once:
        sent, failed = asyncio.run(deliver_due(rt.engine, rt.settings))
        click.echo(f"Sent {sent}, failed {failed}.")
        delivered, missed = asyncio.run(webhook_delivery.deliver_once(rt.engine, rt.settings))
        click.echo(f"Webhook batches delivered {delivered}, failed {missed}.")
        return
    loop = DeliveryLoop(rt.engine, rt.settings, interval=interval)
    hooks = webhook_delivery.WebhookLoop(rt.engine, rt.settings, interval=interval)

    async def run_both() -> None:
        await asyncio.gather(loop.run(), hooks.run())

    try:
        asyncio.run(run_both())
    except KeyboardInterrupt:
        loop.stop()
        hooks.stop()


@cli.group()
def practice() -> None:
    """The practice's details, filled into the policy and the mail."""


@practice.command("set")
@click.option("--name")
@click.option("--phone")
@click.option("--email")
@click.option("--website")
@click.option("--licensing-board")
@click.option("--crisis-line")
def practice_set(**values: str | None) -> None:
    """Set one or more details (the others keep their values)."""
    rt = open_runtime()
    given = {key: value.strip() for key, value in values.items() if value is not None}
    with transaction(rt.engine) as db:
        row = db.get(Practice, 1)
        if row is None:
            if not given.get("name"):
                raise click.ClickException("The first time, give at least --name.")
            row = Practice(name=given["name"])
        for key, value in given.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        db.add(row)
    click.echo("Practice details saved. Publish the policy again for clients to see changes.")


def _add_plugin_commands() -> None:
    from portal.cli_api import api_key
    from portal.cli_audit import audit
    from portal.cli_backup import backup, restore
    from portal.cli_export import export_worker
    from portal.cli_staff import staff
    from portal.cli_webhooks import webhook
    from portal.demo import demo
    from portal.plugins import get_plugin_manager

    cli.add_command(demo)
    cli.add_command(staff)
    cli.add_command(api_key)
    cli.add_command(audit)
    cli.add_command(backup)
    cli.add_command(restore)
    cli.add_command(export_worker)
    cli.add_command(webhook)
    for group in get_plugin_manager().hook.portal_commands():
        for command in group:
            cli.add_command(command)


def main() -> None:
    _add_plugin_commands()
    cli()
