"""API keys for EHR systems: created once, stored only as a hash, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import JSON, Column, bindparam, update
from sqlmodel import Field, Session, SQLModel, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.db import UTCDateTime, new_id, utcnow
from portal.rows import as_model, core_rows, every_column


class Scope(StrEnum):
    CLIENTS_READ = "clients:read"
    CONTACTS_READ = "contacts:read"
    EXPORT = "export"
    IDENTIFIERS_WRITE = "identifiers:write"


SCOPE_LABELS = {
    Scope.CLIENTS_READ: "Read clients and their consents",
    Scope.CONTACTS_READ: "Read contact preferences",
    Scope.EXPORT: "Bulk export",
    Scope.IDENTIFIERS_WRITE: "Set the EHR's record number on a client",
}

PREFIX = "pk"
PUBLIC_ID_LENGTH = 8
NAME_MAX = 80
# Writing last_used_at on every request would turn each read into a write; once a minute is enough.
LAST_USED_EVERY = timedelta(minutes=1)
_PUBLIC_ALPHABET = string.ascii_lowercase + string.digits
_KEY_RE = re.compile(r"^pk_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=NAME_MAX, unique=True)
    public_id: str = Field(max_length=PUBLIC_ID_LENGTH, unique=True)
    # sha256 of the whole key: the key has 256 bits of entropy, so a slow hash would add nothing.
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    created_by: str = Field(max_length=100)
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyError(Exception):
    """A key can't be created or found as asked; the message says why, for a person."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clean_name(raw: str | None) -> str:
    """The key's name (it appears in the audit trail), or ApiKeyError naming the problem."""
    name = " ".join((raw or "").split())
    if not name:
        raise ApiKeyError("Give the key a name, e.g. the EHR system that will use it.")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"The name is too long: at most {NAME_MAX} characters.")
    if not _NAME_RE.match(name):
        raise ApiKeyError(
            "The name may use letters, digits, spaces, dots, dashes and underscores only."
        )
    return name


def clean_scopes(raw: Iterable[str]) -> list[str]:
    """Known scopes in a stable order, or ApiKeyError naming the unknown one."""
    given = set(raw)
    unknown = sorted(given - {s.value for s in Scope})
    if unknown:
        raise ApiKeyError(f"Unknown scope {unknown[0][:40]!r}: use {', '.join(Scope)}.")
    if not given:
        raise ApiKeyError("Choose at least one scope.")
    return [s.value for s in Scope if s.value in given]


def by_name(db: Session, name: str) -> ApiKey | None:
    return db.exec(select(ApiKey).where(ApiKey.name == name)).first()


def all_keys(db: Session) -> list[ApiKey]:
    return list(db.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc(), ApiKey.id)))


def create(
    db: Session,
    *,
    name: str,
    scopes: Iterable[str],
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is returned here once and never stored."""
    clean = clean_name(name)
    chosen = clean_scopes(scopes)
    if by_name(db, clean) is not None:
        raise ApiKeyError("A key with that name exists already: choose another name.")
    public_id = "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
    secret = f"{PREFIX}_{public_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=clean,
        public_id=public_id,
        key_hash=hash_key(secret),
        scopes=chosen,
        created_at=now,
        created_by=actor.label[:100],
    )
    db.add(key)
    db.flush()
    audit.record(db, actor, "api_key.created", "api_key", key.id, meta, name=clean, scopes=chosen)
    return key, secret


def revoke(db: Session, key: ApiKey, *, actor: Actor, meta: RequestMeta, now: datetime) -> bool:
    """Stop a key at once; False when it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = now
    db.add(key)
    audit.record(db, actor, "api_key.revoked", "api_key", key.id, meta, name=key.name)
    return True


# Built once: every API request runs it, and reads the key as a Core row (see portal.rows).
_BY_PUBLIC_ID = every_column(ApiKey).where(col(ApiKey.public_id) == bindparam("public_id"))


def verify(db: Session, presented: str) -> ApiKey | None:
    """The live key matching `presented`, or None (unknown, malformed or revoked). Reads only,
    and gives a read-only view of the key (not an object of the session)."""
    match = _KEY_RE.match(presented)
    if match is None:
        return None
    row = core_rows(db, _BY_PUBLIC_ID, public_id=match.group(1)).first()
    key = as_model(ApiKey, row) if row is not None else None
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(presented)):
        return None
    if key.revoked_at is not None:
        return None
    return key


def use_is_due(key: ApiKey, now: datetime) -> bool:
    """Whether `last_used_at` should be written now (at most once a minute per key)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY


def record_use(db: Session, key: ApiKey, now: datetime) -> None:
    db.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))


def looks_like_key(presented: str) -> bool:
    return _KEY_RE.match(presented) is not None
