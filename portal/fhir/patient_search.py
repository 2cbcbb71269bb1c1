"""Patient search: one indexed keyset query over clients, the filters in SQL."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, false, or_, true
from sqlmodel import Session, col, select

from portal.changes import ClientChange
from portal.fhir import CLIENT_ID_SYSTEM, resources
from portal.fhir.dates import Window
from portal.fhir.params import Token
from portal.models import Client
from portal.runtime import Runtime


@dataclass(frozen=True)
class PatientQuery:
    identifiers: list[list[Token]] = field(default_factory=list)  # AND of ORs
    ids: list[list[str]] = field(default_factory=list)
    last_updated: Window = field(default_factory=Window)


def search(
    rt: Runtime,
    db: Session,
    query: PatientQuery,
    scopes: Collection[str],
    after: str | None,
    count: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of Patients in id order after `after`, and the id to continue after (or None)."""
    statement = select(Client).order_by(col(Client.id)).limit(count + 1)
    for group in query.identifiers:
        statement = statement.where(or_(*(_identifier(rt, token) for token in group)))
    for ids in query.ids:
        statement = statement.where(col(Client.id).in_(ids))
    statement = statement.where(*changed_within(query.last_updated))
    if after is not None:
        statement = statement.where(col(Client.id) > after)
    clients = list(db.exec(statement))
    page = clients[:count]
    more = len(clients) > count
    return resources.patients(rt, db, page, scopes), page[-1].id if more else None


def changed_within(window: Window) -> list[Any]:
    """SQL conditions: the client's latest change (their Patient's lastUpdated) is in `window`.

    "Latest change >= lower" is "some change >= lower": an uncorrelated IN, one range scan of
    the change log's time index per query. (A correlated EXISTS probes the log once per client
    scanned: 57 ms instead of 0.2 ms for a page of a selective search over 100,000 clients on
    SQLite.) "Latest change < upper" is "no change >= upper": NOT EXISTS, an anti-join on
    PostgreSQL, where NOT IN over a large set can fall back to rescanning it per row."""
    conditions: list[Any] = []
    if window.lower is not None:
        changed = select(ClientChange.client_id).where(col(ClientChange.changed_at) >= window.lower)
        conditions.append(col(Client.id).in_(changed))
    if window.upper is not None:
        later = exists().where(
            col(ClientChange.client_id) == col(Client.id),
            col(ClientChange.changed_at) >= window.upper,
        )
        conditions.append(~later)
    return conditions


def _identifier(rt: Runtime, token: Token) -> Any:
    """SQL condition for one identifier token against the client id and the MRN."""
    if token.system is None:  # a bare value: any of the patient's identifiers
        return or_(col(Client.id) == token.code, col(Client.mrn) == token.code)
    if token.system == CLIENT_ID_SYSTEM:
        return col(Client.id) == token.code if token.code else true()
    if token.system == rt.settings.ehr_mrn_system:
        return col(Client.mrn) == token.code if token.code else col(Client.mrn).is_not(None)
    # "|code" (an identifier without a system) and unknown systems: we issue no such identifier.
    return false()
