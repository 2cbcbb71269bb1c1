"""Alembic environment: every table of the host and of every plugin, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import portal.api.keys
import portal.audit
import portal.models
import portal.outbox
import portal.staff.attestations
import portal.staff.models  # noqa: F401  (imports register the host's tables)
from portal.db import make_engine
from portal.plugins import load_all_models
from portal.settings import Settings
from portal.staff.board_search import is_index_table

load_all_models()
target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # Plain `alembic` CLI use (writing a revision): settings come from the environment.
    settings = config.attributes.get("settings") or Settings(demo=True)
    engine = make_engine(settings)
    with engine.begin() as conn:
        _run(conn)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        # SQLite's full-text index for the board is made by its migration, not the models.
        include_name=lambda name, kind, _parent: not (kind == "table" and is_index_table(name)),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
