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
from portal.staff.board_search import is_index_table


# SQLite cannot reflect expression indexes (the board's lower(full_name)); both say so.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_the_models(rt: Runtime) -> None:
    load_all_models()
    with rt.engine.connect() as connection:
        opts = {"compare_type": False, "include_name": _not_search_index}
        context = MigrationContext.configure(connection, opts=opts)
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    migrations.check_current(rt.settings, rt.engine)


def _not_search_index(name: str | None, kind: str, _parent: object) -> bool:
    return not (kind == "table" and is_index_table(name))


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # host_0012 is SQLite's
def test_the_search_index_migration_goes_down_and_up(rt: Runtime) -> None:
    """host_0012 down and up again: the index is rebuilt from the clients written meanwhile."""
    from alembic import command
    from sqlalchemy import inspect

    from portal.db import transaction
    from portal.models import Client, Enrollment
    from portal.staff.board import BoardQuery, search

    def add(name: str) -> None:
        with transaction(rt.engine) as db:
            person = Client(full_name=name, email=f"{name.split()[0].lower()}@example.com")
            db.add(person)
            db.add(Enrollment(client_id=person.id))

    def found(term: str) -> list[str]:
        with transaction(rt.engine, read_only=True) as db:
            return [row.full_name for row in search(db, BoardQuery(q=term), []).rows]

    add("Avery Chen")
    config = migrations.alembic_config(rt.settings)
    with rt.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "host_0011")
    try:
        assert "client_search" not in inspect(rt.engine).get_table_names()
        add("Jordan Chen")  # written while the index is gone
    finally:
        migrations.upgrade(rt.settings, rt.engine)
    migrations.check_current(rt.settings, rt.engine)
    assert sorted(found("chen")) == ["Avery Chen", "Jordan Chen"]
    assert found("jo") == ["Jordan Chen"]
    add("Sam Chenko")  # and kept up to date afterwards
    assert sorted(found("chen")) == ["Avery Chen", "Jordan Chen", "Sam Chenko"]
