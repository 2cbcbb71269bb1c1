"""Content negotiation: this server speaks FHIR JSON only, and says so (406) when asked for XML."""

from __future__ import annotations

from starlette.requests import Request

from portal.fhir.outcome import FhirError

# `_format` values meaning JSON (FHIR's short form, the media types, and DSTU2's old name).
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
ACCEPTABLE_RANGES = JSON_FORMATS | {"*/*", "application/*"}
MAX_ACCEPT = 1000


def require_json(request: Request) -> None:
    """Raise 406 unless the caller accepts JSON. `_format` overrides Accept, as in FHIR."""
    formats = request.query_params.getlist("_format")
    if len(formats) > 1:
        raise FhirError(400, "The parameter '_format' is given more than once.")
    if formats:
        # An unencoded "+" in a query string arrives as a space: "application/fhir json".
        if formats[0].strip().lower().replace(" ", "+") not in JSON_FORMATS:
            raise _not_acceptable()
        return
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    if len(accept) > MAX_ACCEPT or not any(
        _media_range(part) in ACCEPTABLE_RANGES for part in accept.split(",")
    ):
        raise _not_acceptable()


def _media_range(part: str) -> str:
    """The media range of one Accept entry, or "" when its q is 0 (not acceptable)."""
    media, *parameters = (piece.strip() for piece in part.split(";"))
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                if float(value) <= 0:
                    return ""
            except ValueError:
                return ""
    return media.lower()


def _not_acceptable() -> FhirError:
    return FhirError(
        406, "This server answers in FHIR JSON only (application/fhir+json, _format=json)."
    )
