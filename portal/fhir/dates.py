"""`_lastUpdated`: FHIR date search with the prefixes eq, gt, ge, lt and le.

A search value stands for the whole range of its precision (``2026-11`` is all of November),
and each prefix compares that range with the resource's instant, as the FHIR search page says:
``eq`` inside it, ``ge`` from its start, ``gt`` after its end, ``lt`` before its start, ``le``
before its end. Several occurrences narrow the window (AND). Dates without a time are UTC days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.datastructures import QueryParams

from portal.fhir.outcome import bad_request

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
SUPPORTED = ("eq", "gt", "ge", "lt", "le")
_DATE = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}))?)?)?"
)


@dataclass(frozen=True)
class Window:
    """Instants `lower <= t < upper`; None is unbounded."""

    lower: datetime | None = None
    upper: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        return (self.lower is None or moment >= self.lower) and (
            self.upper is None or moment < self.upper
        )

    @property
    def unbounded(self) -> bool:
        return self.lower is None and self.upper is None


def window(params: QueryParams, name: str = "_lastUpdated") -> Window:
    lower: datetime | None = None
    upper: datetime | None = None
    for raw in params.getlist(name):
        value = raw.strip()
        prefix = value[:2] if value[:2] in PREFIXES else "eq"
        if value[:2] in PREFIXES:
            value = value[2:]
        if prefix not in SUPPORTED:
            raise bad_request(
                f"{name}: the prefix {prefix!r} is not supported; use {', '.join(SUPPORTED)}."
            )
        start, end = _range(name, value)
        if prefix in ("eq", "ge"):
            lower = _later(lower, start)
        if prefix == "gt":
            lower = _later(lower, end) if end is not None else datetime.max.replace(tzinfo=UTC)
        if prefix in ("eq", "le"):
            upper = _earlier(upper, end)
        if prefix == "lt":
            upper = _earlier(upper, start)
    return Window(lower, upper)


def _range(name: str, value: str) -> tuple[datetime, datetime | None]:
    """The instants a date search value covers: [start, end); end None past year 9999."""
    match = _DATE.fullmatch(value)
    if match is None:
        raise bad_request(
            f"{name}: {value[:40]!r} is not a FHIR date-time; use e.g. ge2026-11-01 or "
            "gt2026-11-01T09:00:00Z (a time needs a time zone)."
        )
    parts = match.groupdict()
    fraction = parts["fraction"] or ""
    try:
        start = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int((fraction + "000000")[:6]),
            tzinfo=UTC,
        )
        zone = parts["zone"]
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                raise ValueError(zone)
            start -= sign * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):
        raise bad_request(f"{name}: {value[:40]!r} is not a valid date-time.") from None
    return start, _end(start, parts, len(fraction))


def _end(start: datetime, parts: dict[str, str | None], digits: int) -> datetime | None:
    try:
        if parts["second"] is not None:
            return start + timedelta(microseconds=max(1, 10 ** (6 - min(digits, 6))))
        if parts["minute"] is not None:
            return start + timedelta(minutes=1)
        if parts["day"] is not None:
            return start + timedelta(days=1)
        if parts["month"] is not None:
            year, month = divmod(start.month, 12)
            return start.replace(year=start.year + year, month=month + 1)
        return start.replace(year=start.year + 1)
    except (ValueError, OverflowError):
        return None


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def _earlier(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate < current else current
