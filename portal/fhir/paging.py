"""Keyset cursors for search pages and the searchset Bundle that carries them.

A cursor names the last resource of a page (for Consent: its patient and its id), so the next
page starts right after it with an indexed range scan: the last page costs what the first does,
and a resource written meanwhile is neither skipped nor repeated. Cursors are opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from portal.fhir import PREFIX
from portal.fhir.outcome import bad_request
from portal.fhir.params import FHIR_ID

CURSOR = "_cursor"
MAX_CURSOR = 300


def encode(kind: str, *keys: str) -> str:
    raw = "/".join([kind, *keys]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, kind: str, parts: int) -> tuple[str, ...]:
    """The keys in a cursor this server issued for a `kind` search, or 400."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = ""
    found, *keys = raw.split("/")
    if found != kind or len(keys) != parts or not all(FHIR_ID.fullmatch(key) for key in keys):
        raise bad_request(
            f"{CURSOR} is not a cursor from a {kind} search of this server; "
            "start the search again without it."
        )
    return tuple(keys)


def base_url(request: Request) -> str:
    """This server's FHIR base as the caller reached it (e.g. http://host/fhir/r4)."""
    return str(request.base_url).rstrip("/") + PREFIX


def searchset(
    request: Request,
    resource_type: str,
    resources: Sequence[dict[str, Any]],
    next_cursor: str | None,
) -> dict[str, Any]:
    """A searchset Bundle: self and (when more follow) next links, one entry per match."""
    links = [{"relation": "self", "url": str(request.url)}]
    if next_cursor is not None:
        links.append(
            {"relation": "next", "url": str(request.url.include_query_params(_cursor=next_cursor))}
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    base = base_url(request)
    if resources:  # FHIR JSON allows no empty arrays: no matches, no "entry"
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{resource_type}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ]
    return bundle
