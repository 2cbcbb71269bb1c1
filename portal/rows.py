"""Core rows read through a model's type, for code that only reads (the API's records, FHIR
reads and bulk export, the consent board).

Building ORM objects is most of what a batch loader costs (identity map, instance state,
SQLModel's constructor), and these readers only read them. A Core row of the model's columns
has the same attribute names with the same values (column types such as JSON and UTCDateTime
convert rows in Core too), so the plugins' JSON builders, written for model objects, accept it.
An ORM statement costs ~38 us before the database sees it, the same statement as Core ~11 us.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar, cast

from sqlalchemy import BindParameter, CursorResult, Executable, Row, Select, bindparam, select
from sqlmodel import Session, SQLModel

T = TypeVar("T")
# `.in_(IDS)`: the batch's ids given at execution (`core_rows(db, statement, ids)`), rather than
# as a literal list that SQLAlchemy coerces value by value each time the statement is built.
IDS: BindParameter[Any] = bindparam("ids", expanding=True)


def every_column(model: type[SQLModel]) -> Select[Any]:
    """`select(model)` as Core: every column of its table, read as rows named as its fields."""
    return select(*model.__table__.columns)  # type: ignore[attr-defined]


def core_rows(
    db: Session, statement: Executable, ids: Collection[str] | None = None, **params: Any
) -> CursorResult[Any]:
    """Run a select of columns on the session's connection (its transaction), as Core: the
    ORM's execution path would still wrap every row on the way out. `ids` fill `IDS`."""
    if ids is not None:
        params["ids"] = list(ids)
    return db.connection().execute(statement, params or None)


def as_model(model: type[T], row: Row[Any]) -> T:
    """`row` typed as an instance of `model`, to read only: select every column the reader uses."""
    return cast(T, row)
