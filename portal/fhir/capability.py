"""GET /fhir/r4/metadata: the CapabilityStatement, saying exactly what this server does."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from portal.fhir import CLIENT_ID_SYSTEM, FHIR_VERSION
from portal.fhir.paging import CURSOR
from portal.fhir.params import DEFAULT_COUNT, MAX_COUNT

# When this statement's content last changed; bump it with the statement.
REVISED = "2026-11-21"
SOFTWARE = "therapy-intake-portal"
SEARCH_PARAMETER = "http://hl7.org/fhir/SearchParameter/"
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"

STRICT = (
    "Searches are strict: an unknown parameter, a modifier or a bad value is answered with 400 "
    "and an OperationOutcome naming it, never ignored."
)
PAGING = [
    {
        "name": "_count",
        "type": "number",
        "documentation": f"Page size, {DEFAULT_COUNT} by default; larger values give {MAX_COUNT}.",
    },
    {
        "name": CURSOR,
        "type": "string",
        "documentation": "Opaque keyset cursor; follow the Bundle's next link rather than "
        "building it.",
    },
]
LAST_UPDATED = {
    "name": "_lastUpdated",
    "definition": SEARCH_PARAMETER + "Resource-lastUpdated",
    "type": "date",
    "documentation": "Prefixes eq, gt, ge, lt, le; repeat the parameter for a range. "
    "A date without a time is a UTC day.",
}
READ_AND_SEARCH = [{"code": "read"}, {"code": "search-type"}]


def software_version() -> str:
    try:
        return metadata.version(SOFTWARE)
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def capability_statement(base: str, mrn_system: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": REVISED,
        "kind": "instance",
        "software": {"name": SOFTWARE, "version": software_version()},
        "implementation": {
            "description": "Consent and contact-preference records of a practice's intake portal",
            "url": base,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only. " + STRICT,
                "security": {
                    "cors": False,
                    "description": "Send an API key issued by the practice as "
                    "'Authorization: Bearer KEY' (not SMART on FHIR). Patient and Consent need "
                    "the scope clients:read; Patient.telecom and the contact-preference "
                    "Consents also need contacts:read (without it they are left out of "
                    "results, and reading such a Consent is refused with 403); $export needs "
                    "the scope export. This statement needs no key.",
                },
                "resource": [_patient(mrn_system), _consent()],
                "operation": [
                    {"name": "export", "definition": BULK_DATA + "export"},
                ],
            }
        ],
    }


def _patient(mrn_system: str) -> dict[str, Any]:
    return {
        "type": "Patient",
        "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
        "interaction": READ_AND_SEARCH,
        "versioning": "no-version",
        "readHistory": False,
        "searchParam": [
            {
                "name": "identifier",
                "definition": SEARCH_PARAMETER + "Patient-identifier",
                "type": "token",
                "documentation": f"system|value, system| or value; the systems are "
                f"{CLIENT_ID_SYSTEM} (the portal's id) and {mrn_system} (the EHR's MRN).",
            },
            {"name": "_id", "definition": SEARCH_PARAMETER + "Resource-id", "type": "token"},
            LAST_UPDATED,
            *PAGING,
        ],
        "operation": [{"name": "export", "definition": BULK_DATA + "patient-export"}],
    }


def _consent() -> dict[str, Any]:
    return {
        "type": "Consent",
        "profile": "http://hl7.org/fhir/StructureDefinition/Consent",
        "interaction": READ_AND_SEARCH,
        "versioning": "no-version",
        "readHistory": False,
        "searchParam": [
            {
                "name": "patient",
                "definition": SEARCH_PARAMETER + "clinical-patient",
                "type": "reference",
                "documentation": "Patient/ID or ID.",
            },
            {"name": "status", "definition": SEARCH_PARAMETER + "Consent-status", "type": "token"},
            {
                "name": "category",
                "definition": SEARCH_PARAMETER + "Consent-category",
                "type": "token",
                "documentation": "code or system|code, e.g. "
                "urn:intake-portal:consent-category|contact-preferences.",
            },
            LAST_UPDATED,
            *PAGING,
        ],
    }
