"""The `$export` kick-off request, checked strictly as the Bulk Data IG (v2) asks.

A parameter this server does not support is an error unless the client sent
`Prefer: handling=lenient`, in which case it is ignored (IG v2, "Query Parameters").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from portal.fhir.outcome import bad_request

OUTPUT_FORMAT = "application/fhir+ndjson"
# The IG's accepted spellings; a raw '+' in a query string arrives as a space.
OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
KNOWN = {"_outputFormat", "_since", "_type", "_format"}
SINGLE = {"_outputFormat", "_since", "_format"}
MAX_URL = 2000
_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class ExportRequest:
    types: list[str]
    since: datetime | None
    output_format: str


def preferences(request: Request) -> set[str]:
    """The Prefer header's preferences, lower-cased (it may be sent several times)."""
    found = set()
    for header in request.headers.getlist("prefer"):
        for part in header.split(","):
            name = part.split(";", 1)[0].strip().replace(" ", "").lower()
            if name:
                found.add(name)
    return found


def parse(request: Request, supported_types: list[str]) -> ExportRequest:
    """The kick-off's parameters, or FhirError 400 naming what is wrong."""
    prefer = preferences(request)
    if "respond-async" not in prefer:
        raise bad_request("$export runs asynchronously: send the header 'Prefer: respond-async'.")
    if len(str(request.url)) > MAX_URL:
        raise bad_request(f"The request URL is too long (at most {MAX_URL} characters).")
    params = request.query_params
    lenient = "handling=lenient" in prefer
    for name in params:
        if name not in KNOWN and not lenient:
            raise bad_request(
                f"The parameter {name[:60]!r} is not supported by this server's $export "
                "(it takes _outputFormat, _since and _type; send 'Prefer: handling=lenient' "
                "to have unsupported parameters ignored)."
            )
        if name in SINGLE and len(params.getlist(name)) > 1:
            raise bad_request(f"The parameter {name!r} is given more than once.")
    return ExportRequest(
        types=_types(params.getlist("_type"), supported_types),
        since=_since(params.get("_since")),
        output_format=_output_format(params.get("_outputFormat")),
    )


def _types(raw: list[str], supported: list[str]) -> list[str]:
    if not raw:
        return list(supported)
    asked = [part.strip() for value in raw for part in value.split(",")]
    for name in asked:
        if name not in supported:
            shown = repr(name[:60]) if name else "an empty value"
            raise bad_request(
                f"_type: {shown} is not a resource type this server exports; "
                f"use {', '.join(supported)}."
            )
    return [name for name in supported if name in asked]


def _output_format(raw: str | None) -> str:
    if raw is None:
        return OUTPUT_FORMAT
    value = raw.strip().lower().replace(" ", "+")
    if value not in OUTPUT_FORMATS:
        raise bad_request(
            f"_outputFormat: {raw[:60]!r} is not supported; use application/fhir+ndjson "
            "(or application/ndjson, ndjson)."
        )
    return OUTPUT_FORMAT


def _since(raw: str | None) -> datetime | None:
    """A FHIR instant (seconds and a time zone required), e.g. 2026-11-02T09:30:00Z."""
    if raw is None:
        return None
    value = raw.strip().replace(" ", "+")  # an unencoded '+' in an offset arrives as a space
    match = _INSTANT.fullmatch(value)
    problem = (
        f"_since: {raw[:40]!r} is not a FHIR instant; use e.g. 2026-11-02T09:30:00Z "
        "(seconds and a time zone are required), or pass back a manifest's transactionTime."
    )
    if match is None:
        raise bad_request(problem)
    fraction = ((match["fraction"] or "") + "000000")[:6]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}+00:00")
        zone = match["zone"]
        if zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                raise ValueError(zone)
            offset = timedelta(hours=hours, minutes=minutes)
            moment = moment - offset if zone[0] == "+" else moment + offset
    except (ValueError, OverflowError):
        raise bad_request(problem) from None
    return moment.astimezone(UTC)
