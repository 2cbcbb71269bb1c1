"""JSON Schema (2020-12, as OpenAPI 3.1 uses) of the "acknowledgements" section."""

from __future__ import annotations

from typing import Any

from portal_signature.models import Party, Role

DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
STATUSES = ["signed", "awaiting_signatures", "awaiting_countersignature", "superseded"]

POLICY: dict[str, Any] = {
    "id": {"type": "string"},
    "policy_version": {"type": "integer", "minimum": 1},
    "policy_sha256": {**SHA256, "description": "SHA-256 of the policy text as published."},
    "policy_url": {
        "type": "string",
        "format": "uri",
        "description": "Public page of that policy version.",
    },
    "created_at": DATE_TIME,
}

SIGNER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "role",
        "expected_name",
        "relationship",
        "signed",
        "signed_at",
        "typed_name",
        "esign_disclosure_version",
    ],
    "properties": {
        "role": {"type": "string", "enum": [str(role) for role in Role]},
        "expected_name": {
            "type": ["string", "null"],
            "description": "Who must sign (null for the therapist's countersignature).",
        },
        "relationship": {
            "type": ["string", "null"],
            "description": "A guardian's relationship to the minor, e.g. mother.",
        },
        "signed": {"type": "boolean"},
        "signed_at": NULLABLE_DATE_TIME,
        "typed_name": {"type": ["string", "null"], "description": "The typed signature."},
        "esign_disclosure_version": {
            "type": ["string", "null"],
            "description": "The e-sign disclosure the signer consented to.",
        },
    },
}

ONLINE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        *POLICY,
        "kind",
        "status",
        "party",
        "minor_name",
        "supersedes_id",
        "superseded_at",
        "signers",
    ],
    "properties": {
        **POLICY,
        "kind": {"const": "online"},
        "status": {
            "type": "string",
            "enum": STATUSES,
            "description": "awaiting_countersignature: every client-side signer signed.",
        },
        "party": {"type": "string", "enum": [str(party) for party in Party]},
        "minor_name": {"type": ["string", "null"]},
        "supersedes_id": {"type": ["string", "null"]},
        "superseded_at": NULLABLE_DATE_TIME,
        "signers": {"type": "array", "items": SIGNER, "minItems": 1},
    },
}

PAPER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        *POLICY,
        "kind",
        "status",
        "signer_names",
        "signed_on",
        "scan_sha256",
        "scan_content_type",
        "scan_size",
    ],
    "properties": {
        **POLICY,
        "kind": {"const": "paper"},
        "status": {"const": "signed"},
        "signer_names": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "signed_on": {"type": "string", "format": "date"},
        "scan_sha256": SHA256,
        "scan_content_type": {"type": "string"},
        "scan_size": {"type": "integer", "minimum": 0},
    },
}

DISCUSSION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "policy_version", "discussed_on", "recorded_at", "recorded_by"],
    "properties": {
        "id": {"type": "string"},
        "policy_version": {"type": "integer", "minimum": 1},
        "discussed_on": {"type": "string", "format": "date"},
        "recorded_at": DATE_TIME,
        "recorded_by": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "name"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        },
    },
}

ACKNOWLEDGEMENTS_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "The policy acknowledgements (null until there is one, on paper or online).",
    "additionalProperties": False,
    "required": ["items", "policy_discussions"],
    "properties": {
        "items": {
            "type": "array",
            "description": "Online and paper acknowledgements, newest first. Without history "
            "only those in force (superseded ones are left out).",
            "items": {"oneOf": [ONLINE, PAPER]},
        },
        "policy_discussions": {
            "type": "array",
            "description": "Times a therapist discussed the policy in session, newest first.",
            "items": DISCUSSION,
        },
    },
}
