"""The practice details form: checks what the admin typed and saves it with an audit event.

The details are filled into the policy clients sign and into every email, so each is a single
line of plain text; nothing here is about a client.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Practice
from portal.validation import clean_email


@dataclass(frozen=True)
class DetailField:
    name: str
    label: str
    max_length: int
    required: bool = False
    hint: str | None = None


FIELDS: tuple[DetailField, ...] = (
    DetailField("name", "Practice name", 200, required=True),
    DetailField("phone", "Phone", 60, hint="For example (206) 555-0142"),
    DetailField("email", "Email address", 254),
    DetailField("website", "Website", 300, hint="Starts with https://"),
    DetailField(
        "licensing_board",
        "Licensing board",
        300,
        hint="Where clients can take a complaint, e.g. the state department of health",
    ),
    DetailField(
        "crisis_line",
        "Crisis line",
        200,
        hint="What clients should do after hours, e.g. Call our after-hours line at ...",
    ),
)

_PHONE_RE = re.compile(r"^\+?[0-9 ().\-/]+(?:\s*(?:ext\.?|x)\s*[0-9]{1,6})?$", re.IGNORECASE)


def values_of(practice: Practice | None) -> dict[str, str]:
    if practice is None:
        return {spec.name: "" for spec in FIELDS}
    return {spec.name: str(getattr(practice, spec.name) or "") for spec in FIELDS}


def clean(form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Return (values, errors); values are single-line and errors name the problem."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in FIELDS:
        value = unicodedata.normalize("NFC", " ".join(str(form.get(spec.name, "")).split()))
        values[spec.name] = value
        error = _check(spec, value)
        if error:
            errors[spec.name] = error
        elif spec.name == "email" and value:
            values["email"], email_error = clean_email(value)
            if email_error:
                errors["email"] = email_error
    return values, errors


def _check(spec: DetailField, value: str) -> str | None:
    label = spec.label.lower()
    if not value:
        return f"Please enter the {label}." if spec.required else None
    if len(value) > spec.max_length:
        return f"The {label} is too long: {spec.max_length} characters at most."
    if "<" in value or ">" in value:
        return f"The {label} can't contain < or >. Please type it as plain text."
    if any(unicodedata.category(char)[0] == "C" for char in value):
        return f"The {label} contains characters that can't be shown. Please retype it."
    if spec.name == "phone" and (
        not _PHONE_RE.match(value) or sum(char.isdigit() for char in value) < 7
    ):
        return "The phone number doesn't look right: use digits, spaces, + - ( ) and ext."
    if spec.name == "website":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
            return "The website should be a full address starting with https://"
    return None


def save(
    db: Session,
    practice: Practice | None,
    values: Mapping[str, str],
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> list[str]:
    """Store the details; returns the names of the fields that changed (audited, not valued)."""
    row = practice or Practice(id=1, name=values["name"])
    changed = [spec.name for spec in FIELDS if getattr(row, spec.name, "") != values[spec.name]]
    if practice is not None and not changed:
        return []
    for spec in FIELDS:
        setattr(row, spec.name, values[spec.name])
    row.updated_at = now
    db.add(row)
    audit.record(db, actor, "practice.details_updated", "practice", "1", meta, fields=changed)
    return changed
