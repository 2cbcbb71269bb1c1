"""Migrations create every table of the host and the plugins, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from portal import migrations
from portal.app import create_app
from portal.db import make_engine
from portal.plugins import load_all_models
from portal.runtime import Runtime
from portal.settings import Settings


# SQLite cannot reflect expression indexes (the board's lower(full_name)); both say so.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_the_models(rt: Runtime) -> None:
    load_all_models()
    with rt.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    migrations.check_current(rt.settings, rt.engine)


def test_every_plugin_table_exists(rt: Runtime) -> None:
    load_all_models()
    from sqlalchemy import inspect

    tables = set(inspect(rt.engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables


def test_app_refuses_an_unmigrated_database(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    empty = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    app = create_app(empty)
    with (
        pytest.raises(migrations.SchemaNotCurrent, match="Run `portal migrate`"),
        TestClient(app),
    ):
        pass
    engine = make_engine(empty)
    migrations.upgrade(empty, engine)
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
    engine.dispose()
