"""Consent search: keyset over (patient id, consent id).

Consents are not rows: the plugins compute them from their records (``FhirMapping.consents``).
So the search walks clients in id order, builds their Consents a batch of clients at a time,
filters them, and stops as soon as it holds one more match than the page needs; the cursor is the
last Consent returned, and the next page starts inside that same client, right after it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from portal.fhir import resources
from portal.fhir.dates import Window
from portal.fhir.params import Token
from portal.fhir.patient_search import changed_within
from portal.models import Client
from portal.runtime import Runtime

# Clients per batch: the first batch guesses from the page size (clients usually hold several
# Consents); each further batch doubles, up to MAX_BATCH.
FIRST_BATCH = 10
MAX_BATCH = 500

STATUSES = ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error")


@dataclass(frozen=True)
class ConsentQuery:
    patients: list[list[str]] = field(default_factory=list)  # AND of ORs
    statuses: list[list[str]] = field(default_factory=list)
    categories: list[list[Token]] = field(default_factory=list)
    last_updated: Window = field(default_factory=Window)

    def matches(self, consent: dict[str, Any]) -> bool:
        if not all(consent.get("status") in group for group in self.statuses):
            return False
        codings = [
            (coding.get("system"), coding.get("code"))
            for concept in consent.get("category", [])
            for coding in concept.get("coding", [])
        ]
        if not all(any(_token_matches(t, codings) for t in group) for group in self.categories):
            return False
        if self.last_updated.unbounded:
            return True
        stamp = consent.get("meta", {}).get("lastUpdated")
        return stamp is not None and self.last_updated.contains(_instant(stamp))


def search(
    rt: Runtime,
    db: Session,
    query: ConsentQuery,
    scopes: Collection[str],
    after: tuple[str, str] | None,
    count: int,
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """A page of Consents after `after` (patient id, consent id), and where the next starts."""
    if not resources.consent_sections(rt, scopes):
        return [], None  # nothing this key may see: no need to walk every client
    base = select(Client).order_by(col(Client.id))
    for group in query.patients:
        base = base.where(col(Client.id).in_(group))
    # A Consent's lastUpdated is never later than its client's latest change (every write to
    # the records behind it logs a change when it commits), so clients changed since the lower
    # bound are the only candidates. The upper bound is applied to each Consent below.
    base = base.where(*changed_within(Window(lower=query.last_updated.lower)))
    found: list[tuple[str, dict[str, Any]]] = []
    batch = min(MAX_BATCH, max(FIRST_BATCH, count // 3 + 1))
    start = after[0] if after else None
    first = True
    while len(found) <= count:
        statement = base.limit(batch)
        if start is not None:
            statement = statement.where(
                col(Client.id) >= start if first else col(Client.id) > start
            )
        clients = list(db.exec(statement))
        grouped = resources.consents_by_client(rt, db, clients, scopes)
        for client in clients:
            for consent in grouped[client.id]:
                if after and (client.id, consent["id"]) <= after:
                    continue
                if query.matches(consent):
                    found.append((client.id, consent))
        if len(clients) < batch:
            break
        start, first = clients[-1].id, False
        batch = min(MAX_BATCH, batch * 2)
    page = found[:count]
    more = len(found) > count
    return [consent for _, consent in page], (page[-1][0], page[-1][1]["id"]) if more else None


def _token_matches(token: Token, codings: list[tuple[Any, Any]]) -> bool:
    for system, code in codings:
        if token.system is None:
            if code == token.code:
                return True
        elif token.system == "":
            if system is None and code == token.code:
                return True
        elif system == token.system and (not token.code or code == token.code):
            return True
    return False


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
