"""Alembic, driven from code: `portal migrate` and the start-up schema check."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from portal.plugins import get_plugin_manager
from portal.resources import migrations_dir
from portal.settings import Settings


class SchemaNotCurrent(RuntimeError):
    pass


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # The host's revisions plus one branch per plugin (see hookspecs.portal_migration_dirs).
    pm = get_plugin_manager(settings)
    folders = [migrations_dir() / "versions"]
    folders += [folder for group in pm.hook.portal_migration_dirs() for folder in group]
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(f) for f in folders))
    # ConfigParser interpolates %, which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.attributes["settings"] = settings
    return config


# Any fixed number: the key of the PostgreSQL advisory lock that `portal migrate` holds.
MIGRATION_LOCK = 0x706F7274616C  # "portal"


def upgrade(settings: Settings, engine: Engine) -> None:
    config = alembic_config(settings)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several containers starting at once each run `portal migrate`: one upgrades,
            # the others wait here, then find the schema current.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def current(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def pending(settings: Settings, engine: Engine) -> list[str]:
    """Revisions `portal migrate` would apply (dependencies between branches included)."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    have = tuple(current(engine))
    revisions = script.iterate_revisions("heads", have, implicit_base=True)
    return [revision.revision for revision in revisions]


def check_current(settings: Settings, engine: Engine) -> None:
    missing = pending(settings, engine)
    if missing:
        state = "is empty" if not current(engine) else "is at an older version"
        raise SchemaNotCurrent(
            f"The database schema {state} ({len(missing)} migration(s) to apply: "
            f"{', '.join(sorted(missing))}). Run `portal migrate` first."
        )
