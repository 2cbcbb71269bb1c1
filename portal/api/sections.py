"""What a plugin contributes to the EHR-facing API: a section of each client's record.

A step plugin owns its records, so it also says how they appear to an EHR: as a JSON section of
the client in ``/api/v1`` and, optionally, as FHIR R4 resources (Consent, Patient.telecom).
Loaders work on a batch of clients with one query per batch, so listing and bulk export cost
the same per client whatever the page size; they only read, so they may read Core rows
(`portal.rows`) rather than ORM objects, which cost most of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session


@dataclass(frozen=True)
class ClientRef:
    """A client as section loaders see it: the client and their latest enrollment (if any)."""

    client_id: str
    enrollment_id: str | None


# (session, clients, with_history) -> {client_id: the section's JSON value}. A client missing
# from the result has nothing in this section yet (the API shows null).
SectionLoader = Callable[[Session, Sequence[ClientRef], bool], Mapping[str, Any]]


@dataclass(frozen=True)
class FhirMapping:
    """How a section appears in FHIR R4. The mapping callables are pure: they map the section's
    value (loaded *with* history) and do no I/O."""

    # (client_id, value) -> Consent resources (dicts, each with "id" and "meta.lastUpdated").
    consents: Callable[[str, Any], list[dict[str, Any]]] | None = None
    # value -> Patient.telecom entries (ContactPoint dicts).
    telecom: Callable[[Any], list[dict[str, Any]]] | None = None
    # The id prefix of this section's Consent resources ("ack" for "ack-<row id>"), and how to
    # find the client who owns a Consent id: (session, id without prefix) -> client id or None.
    consent_prefix: str = ""
    consent_owner: Callable[[Session, str], str | None] | None = None


@dataclass(frozen=True)
class ApiSection:
    key: str  # property of the client JSON, e.g. "contact"
    title: str  # one line for the API documentation
    scope: str  # the API key scope needed to see it (a portal.api.keys.Scope value)
    schema: dict[str, Any]  # JSON Schema (2020-12) of the value, with its history, for OpenAPI
    load: SectionLoader
    fhir: FhirMapping = field(default_factory=FhirMapping)
