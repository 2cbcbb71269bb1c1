"""Query parameters of /api/v1, parsed strictly: a bad value is a 400 that names it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from portal.api.problems import ApiProblem

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def bad_request(detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", detail)


def only(params: QueryParams, allowed: set[str]) -> None:
    """Refuse unknown or repeated parameters: a typo must not silently mean 'everything'."""
    for name in params:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise bad_request(
                f"Unknown query parameter {name[:40]!r}; this endpoint takes {known}."
            )
        if len(params.getlist(name)) > 1:
            raise bad_request(f"The query parameter {name!r} is given more than once.")


def limit(params: QueryParams, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise bad_request(f"'limit' must be a whole number from 1 to {maximum}.")
    return int(raw)


def boolean(params: QueryParams, name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise bad_request(f"'{name}' must be true or false.")


def instant(params: QueryParams, name: str) -> datetime | None:
    """An ISO 8601 date-time with a time zone (e.g. 2026-11-01T09:00:00Z).

    RFC 3339 allows a lower-case "t" and "z", so they are accepted too."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().upper().replace("Z", "+00:00"))
        # An offset can push the first or last representable day out of range.
        moment = value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise bad_request(
            f"'{name}' must be a date-time with a time zone, e.g. 2026-11-01T09:00:00Z."
        )
    return moment
