"""JSON Schemas (2020-12) of what /api/v1 sends and accepts, for its OpenAPI document.

Hand-written rather than generated, so each one states the exact contract (required keys, no
others, nullability, patterns); tests/test_api_openapi.py holds real responses against them
and the fuzz in tests/test_api_fuzz.py does the same for generated requests. The sections the
plugins add to a client come from `ApiSection.schema` and are placed here, not restated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from portal.api.keys import Scope
from portal.api.sections import ApiSection
from portal.identifiers import MRN_MAX, MRN_PATTERN
from portal.models import EnrollmentStatus

Schema = dict[str, Any]

ID_PATTERN = "^[0-9a-f]{32}$"
# base64url without padding: what Position.encode() and the client list's cursor produce.
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
CURSOR_MAX = 64
PROBLEM_MEDIA_TYPE = "application/problem+json"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], *, optional: Sequence[str] = ()) -> Schema:
    """An object with exactly these keys, all required except `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


CLIENT_ID: Schema = {"type": "string", "pattern": ID_PATTERN, "description": "The client's id."}
MRN: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MRN_MAX,
    "pattern": MRN_PATTERN,
    "description": "The EHR's medical record number for the client.",
}
CURSOR: Schema = {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": CURSOR_MAX}
DATE_TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}

PROBLEM: Schema = {
    "description": "RFC 9457 problem details.",
    **_object(
        {
            "type": {"type": "string", "format": "uri-reference", "const": "about:blank"},
            "title": {"type": "string", "minLength": 1},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What was wrong, for a person."},
        },
        optional=["detail"],
    ),
}

WHO_AM_I: Schema = _object(
    {
        "name": {"type": "string", "minLength": 1, "description": "The key's name."},
        "scopes": {
            "type": "array",
            "items": {"enum": [s.value for s in Scope]},
            "uniqueItems": True,
        },
    }
)

ENROLLMENT: Schema = {
    "description": "The client's current onboarding journey.",
    **_object(
        {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "status": {"enum": [s.value for s in EnrollmentStatus]},
            "invited_at": DATE_TIME,
            "started_at": NULLABLE_DATE_TIME,
            "completed_at": NULLABLE_DATE_TIME,
            "therapist": _nullable(
                _object(
                    {"id": {"type": "string", "pattern": ID_PATTERN}, "name": {"type": "string"}}
                )
            ),
        }
    ),
}

MRN_BODY: Schema = {
    "description": "A record number sets it (surrounding spaces are dropped); null clears it.",
    **_object({"mrn": _nullable(MRN)}),
}
MRN_RESULT: Schema = _object({"id": CLIENT_ID, "mrn": _nullable(MRN)})

CLIENT_LIST: Schema = _object(
    {
        "data": {"type": "array", "items": ref("Client")},
        "next_cursor": {
            "anyOf": [CURSOR, {"type": "null"}],
            "description": "Pass as `after` for the next page; null on the last page.",
        },
        "sync_cursor": {
            **CURSOR,
            "description": "Where the change log stood before this page was read: poll "
            "/api/v1/changes?after=<sync_cursor> to miss nothing committed since.",
        },
    }
)

CHANGE: Schema = _object(
    {
        "cursor": {**CURSOR, "description": "This entry's place in the log."},
        "client_id": CLIENT_ID,
        "changed_at": DATE_TIME,
        "records": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "The kinds of record that changed (table names, e.g. client).",
        },
        "client_url": {
            "type": "string",
            "format": "uri-reference",
            "pattern": "^/api/v1/clients/[0-9a-f]{32}$",
        },
    }
)

CHANGE_FEED: Schema = _object(
    {
        "changes": {"type": "array", "items": ref("Change")},
        "next_cursor": {**CURSOR, "description": "Pass as `after` on the next poll."},
        "has_more": {"type": "boolean", "description": "True: poll again at once."},
    }
)


def client_schema(step_keys: Sequence[str], sections: Sequence[ApiSection]) -> Schema:
    """The client record: the host's fields, then one optional property per plugin section."""
    step = _object(
        {
            "key": {"enum": list(step_keys)} if step_keys else {"type": "string"},
            "title": {"type": "string"},
            "complete": {"type": "boolean"},
        }
    )
    properties: dict[str, Schema] = {
        "id": CLIENT_ID,
        "mrn": _nullable(MRN),
        "name": {"type": "string"},
        "email": {"type": "string"},
        "created_at": DATE_TIME,
        "updated_at": {**DATE_TIME, "description": "When anything in this record last changed."},
        "enrollment": _nullable(ref("Enrollment")),
        "steps": {"type": "array", "items": step, "description": "Each onboarding step."},
    }
    for section in sections:
        properties[section.key] = {
            "anyOf": [ref(section_name(section)), {"type": "null"}],
            "description": f"{section.title}. Present only for keys with the scope "
            f"'{section.scope}'; null while the client has no such record.",
            "x-required-scope": section.scope,
        }
    return _object(properties, optional=[section.key for section in sections])


def section_name(section: ApiSection) -> str:
    """The component name of a section's schema: "contact" -> "ContactSection"."""
    words = re.split(r"[^A-Za-z0-9]+", section.key)
    return "".join(word[:1].upper() + word[1:] for word in words) + "Section"


def section_components(section: ApiSection) -> dict[str, Schema]:
    """The section's schema as components: its `$defs` become siblings (prefixed with the
    section's name) and references to them are rewritten, because inside an OpenAPI document
    "#/$defs/..." would point at the document's root, not at the section's schema."""
    name = section_name(section)
    schema = {k: v for k, v in section.schema.items() if k not in {"$schema", "$id", "$defs"}}
    defs: dict[str, Schema] = section.schema.get("$defs", {})
    found = {name: _rewrite_refs(schema, name)}
    for key, value in defs.items():
        found[f"{name}{key}"] = _rewrite_refs(value, name)
    return found


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """ "#/$defs/Channel/..." -> "#/components/schemas/<prefix>Channel/..."."""
    if isinstance(node, dict):
        rewritten = {key: _rewrite_refs(value, prefix) for key, value in node.items()}
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith("#/$defs/"):
            rewritten["$ref"] = f"#/components/schemas/{prefix}" + target.removeprefix("#/$defs/")
        return rewritten
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


def components(step_keys: Sequence[str], sections: Sequence[ApiSection]) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {
        "Problem": PROBLEM,
        "WhoAmI": WHO_AM_I,
        "Client": client_schema(step_keys, sections),
        "Enrollment": ENROLLMENT,
        "ClientList": CLIENT_LIST,
        "MrnBody": MRN_BODY,
        "MrnResult": MRN_RESULT,
        "Change": CHANGE,
        "ChangeFeed": CHANGE_FEED,
    }
    for section in sections:
        schemas.update(section_components(section))
    return schemas
