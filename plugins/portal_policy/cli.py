"""`portal policy publish FILE.md` and `portal policy show`."""

from __future__ import annotations

from pathlib import Path

import click

from portal.audit import Actor, RequestMeta
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.models import Practice
from portal_policy import service
from portal_policy.publishing import publish_new_version
from portal_policy.rendering import PolicyTemplateError, default_policy_source


@click.group()
def policy() -> None:
    """The practice's social media and communications policy."""


@policy.command()
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option(
    "--default", "use_default", is_flag=True, help="Publish the policy this product ships."
)
def publish(file: Path | None, use_default: bool) -> None:
    """Publish FILE.md (Markdown with {{ practice_name }}-style placeholders) as a new version."""
    if (file is None) == (not use_default):
        raise click.UsageError("Give either FILE.md or --default.")
    source = default_policy_source() if use_default or file is None else _read(file)
    rt = open_runtime()
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        if practice is None:
            raise click.ClickException("Set the practice's details first: portal practice set")
        try:
            version, campaign = publish_new_version(
                db,
                rt.services,
                source,
                practice,
                actor=Actor("cli", "policy"),
                meta=RequestMeta.none(),
                now=utcnow(),
            )
        except PolicyTemplateError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Published version {version.version} (sha256 {version.content_hash}).")
    if campaign is not None:
        click.echo(
            f"Emailed {campaign.clients_notified} client(s) who signed an earlier version; "
            f"{campaign.clients_not_emailed} allowed no email and must be told another way."
        )


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text.") from exc


@policy.command()
def show() -> None:
    """Print the current version's number, date and hash."""
    rt = open_runtime()
    with transaction(rt.engine) as db:
        version = service.current(db)
        if version is None:
            click.echo("No policy published yet. Run: portal policy publish --default")
            return
        click.echo(
            f"Version {version.version}, published {version.published_at:%Y-%m-%d %H:%M} UTC, "
            f"sha256 {version.content_hash}"
        )
