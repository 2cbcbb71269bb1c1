"""Search parameters, parsed strictly: an unknown name, a modifier or a bad value is a 400
that names it (FHIR lets a server ignore what it does not know; a silently ignored filter would
hand an EHR far more than it asked for)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from portal.fhir.outcome import bad_request

DEFAULT_COUNT = 50
MAX_COUNT = 500
MAX_VALUE = 2000
MAX_VALUES = 100
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Parameters of every interaction: the response format, and our paging cursor.
COMMON = {"_format"}
PAGING = {"_count", "_cursor"}
# Given at most once: repeating them has no meaning.
SINGLE = {"_format", "_count", "_cursor"}


@dataclass(frozen=True)
class Token:
    """A token search value: `code`, `system|code`, `|code` (no system) or `system|` (any code).

    `system` is None when the value named no system at all."""

    system: str | None
    code: str


def check_names(params: QueryParams, allowed: set[str]) -> None:
    for name in params:
        base, colon, _modifier = name.partition(":")
        if base in allowed and colon:
            raise bad_request(f"Search modifiers are not supported: {name[:60]!r}.")
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise bad_request(f"Unknown search parameter {name[:60]!r}; this search takes {known}.")
        if name in SINGLE and len(params.getlist(name)) > 1:
            raise bad_request(f"The parameter {name!r} is given more than once.")
    if len(params.multi_items()) > MAX_VALUES:
        raise bad_request(f"Too many search parameters (at most {MAX_VALUES}).")


def count(params: QueryParams) -> int:
    """_count: 1 to 500 (a larger request gets pages of 500, as FHIR lets a server decide)."""
    raw = params.get("_count")
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isdigit() or int(raw) < 1:
        raise bad_request(f"_count must be a whole number from 1 to {MAX_COUNT}.")
    return min(int(raw), MAX_COUNT)


def values(params: QueryParams, name: str) -> list[list[str]]:
    """Each occurrence of `name` (AND) as its comma-separated values (OR), unescaped."""
    groups = []
    for raw in params.getlist(name):
        if len(raw) > MAX_VALUE:
            raise bad_request(f"The value of {name!r} is too long.")
        parts = [_unescape(part) for part in _split(raw, ",")]
        if any(not part.strip() for part in parts):
            raise bad_request(f"{name!r} has an empty value.")
        groups.append([part.strip() for part in parts])
    return groups


def codes(params: QueryParams, name: str, allowed: Sequence[str]) -> list[list[str]]:
    """Values of a token parameter bound to a fixed set of codes (no system): a code outside
    the set can never match, so it is a mistake worth naming."""
    groups = values(params, name)
    for group in groups:
        for code in group:
            if code not in allowed:
                raise bad_request(f"{name}: {code[:40]!r} is not one of {', '.join(allowed)}.")
    return groups


def tokens(params: QueryParams, name: str) -> list[list[Token]]:
    groups = []
    for raw in params.getlist(name):
        if len(raw) > MAX_VALUE:
            raise bad_request(f"The value of {name!r} is too long.")
        group = []
        for part in _split(raw, ","):
            pieces = _split(part, "|")
            if len(pieces) > 2 or not part.strip() or part.strip() == "|":
                raise bad_request(f"{name!r} takes 'code', 'system|code', '|code' or 'system|'.")
            if len(pieces) == 1:
                group.append(Token(None, _unescape(pieces[0]).strip()))
            else:
                system, code = (_unescape(piece).strip() for piece in pieces)
                group.append(Token(system, code))
        groups.append(group)
    return groups


def ids(params: QueryParams, name: str) -> list[list[str]]:
    groups = values(params, name)
    for group in groups:
        for value in group:
            if not FHIR_ID.fullmatch(value):
                raise bad_request(f"{name!r}: {value[:70]!r} is not a FHIR resource id.")
    return groups


def references(params: QueryParams, name: str, resource_type: str, base: str) -> list[list[str]]:
    """Reference values naming `resource_type` ("Patient/ID", an absolute URL on this server,
    or a bare "ID") as their ids."""
    groups = []
    for group in values(params, name):
        found = []
        for value in group:
            local = value.removeprefix(base.rstrip("/") + "/")
            kind, slash, resource_id = local.rpartition("/")
            if slash and kind != resource_type:
                raise bad_request(f"{name!r} must reference a {resource_type}: {value[:70]!r}.")
            if not FHIR_ID.fullmatch(resource_id):
                raise bad_request(f"{name!r}: {value[:70]!r} is not a {resource_type} reference.")
            found.append(resource_id)
        groups.append(found)
    return groups


def _split(raw: str, separator: str) -> list[str]:
    """Split on `separator` unless escaped with a backslash (FHIR search escaping)."""
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", value)
