"""JSON Schema (2020-12, as OpenAPI 3.1 uses) of the "contact" section."""

from __future__ import annotations

from typing import Any

from portal_contact.choices import VOICEMAIL_RULES

DATE_TIME = {"type": "string", "format": "date-time"}
CHANNEL_CODES = ["phone_call", "voicemail", "sms", "email", "social_media_message", "public_reply"]

CHANNEL: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "rank",
        "system",
        "kind",
        "value",
        "display",
        "texts_allowed",
        "voicemail_allowed",
        "voicemail",
        "purpose",
    ],
    "properties": {
        "rank": {"type": "integer", "minimum": 1, "description": "1 = preferred"},
        "system": {"type": "string", "enum": ["phone", "email"]},
        "kind": {"type": "string", "enum": ["mobile", "home", "work", "email"]},
        "value": {
            "type": "string",
            "description": "The number in E.164 form, or the email address.",
        },
        "display": {"type": "string", "description": "As the practice should read it."},
        "texts_allowed": {
            "type": "boolean",
            "description": "Always false: the practice does not send text messages.",
        },
        "voicemail_allowed": {"type": "boolean"},
        "voicemail": {
            "type": ["string", "null"],
            "enum": [*VOICEMAIL_RULES, None],
            "description": "What a voicemail may say (phones only): none, callback_only (a "
            "first name and a callback number, no practice name), practice_name, details "
            "(may include appointment details).",
        },
        "purpose": {
            "type": ["string", "null"],
            "enum": ["administrative", None],
            "description": "administrative: scheduling and administrative matters only.",
        },
    },
}

DO_NOT_USE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["channel", "value", "reason"],
    "properties": {
        "channel": {"type": "string", "enum": CHANNEL_CODES},
        "value": {
            "type": ["string", "null"],
            "description": "The number the rule is about (voicemail), or null for any.",
        },
        "reason": {
            "type": "string",
            "enum": ["not_offered", "not_given", "declined"],
            "description": "not_offered: the practice never uses it; not_given: the client "
            "gave none; declined: the client said no.",
        },
    },
}

REVISION_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "revision": {"type": "integer", "minimum": 1},
    "given_at": DATE_TIME,
    "source": {"type": "string", "enum": ["client", "staff"]},
    "channels": {
        "type": "array",
        "items": CHANNEL,
        "minItems": 1,
        "description": "In rank order. Only these channels may be used.",
    },
    "do_not_use": {"type": "array", "items": DO_NOT_USE},
    "email_warning_accepted_at": {"type": ["string", "null"], "format": "date-time"},
}
REVISION_REQUIRED = list(REVISION_PROPERTIES)

REVISION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": REVISION_REQUIRED,
    "properties": REVISION_PROPERTIES,
}

CONTACT_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "The client's current contact rules (null until they have given them).",
    "additionalProperties": False,
    "required": REVISION_REQUIRED,
    "properties": {
        **REVISION_PROPERTIES,
        "history": {
            "type": "array",
            "items": REVISION,
            "description": "Earlier revisions, newest first (only when history is asked for).",
        },
    },
}
