"""The EHR's own identifier for a client (medical record number), set by staff or by the API."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Client

MRN_MAX = 64
# Also the pattern the OpenAPI document gives (a value is stripped of spaces before the check).
MRN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
_MRN_RE = re.compile(MRN_PATTERN)


class InvalidMrn(ValueError):
    """The value can't be a record number; the message says why, for a person."""


class MrnTaken(Exception):
    """Another client already has this record number."""


def clean_mrn(raw: object) -> str | None:
    """The record number to store (None clears it), or InvalidMrn."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidMrn("The record number must be a string (or null to clear it).")
    value = raw.strip()
    if not value:
        return None
    if len(value) > MRN_MAX:
        raise InvalidMrn(f"The record number is too long: at most {MRN_MAX} characters.")
    if not _MRN_RE.match(value):
        raise InvalidMrn(
            "The record number may use letters, digits and . _ : / - only, starting with a "
            "letter or digit."
        )
    return value


def by_mrn(db: Session, mrn: str) -> Client | None:
    return db.exec(select(Client).where(Client.mrn == mrn)).first()


def set_mrn(db: Session, client: Client, raw: object, *, actor: Actor, meta: RequestMeta) -> bool:
    """Give `client` the record number `raw` (None or blank clears it). False when unchanged.

    Raises InvalidMrn, or MrnTaken when another client has it (also when a concurrent request
    took it first: the unique constraint decides). The number itself stays out of the audit
    trail; the event says that it was set, changed or cleared."""
    value = clean_mrn(raw)
    if value == client.mrn:
        return False
    if value is not None:
        holder = by_mrn(db, value)
        if holder is not None and holder.id != client.id:
            raise MrnTaken
    previous = client.mrn
    client.mrn = value
    try:
        with db.begin_nested():
            db.add(client)
            db.flush()
    except IntegrityError as exc:
        client.mrn = previous
        raise MrnTaken from exc
    change = "cleared" if value is None else ("changed" if previous else "set")
    audit.record(db, actor, f"client.mrn_{change}", "client", client.id, meta)
    return True
