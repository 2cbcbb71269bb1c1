"""The "contact" section of a client's API record: the contact rules in machine form.

One revision is what the client asked for at one moment: the channels the practice may use in
rank order (1 = preferred), with what each allows, and the channels it must not use. The
practice offers no texts, social-network messages or public replies, so those are always in
``do_not_use``; any channel not listed in ``channels`` must not be used either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from portal.api.records import iso
from portal.api.sections import ApiSection, ClientRef
from portal.rows import IDS, as_model, core_rows
from portal.settings import Settings
from portal_contact import fhir_contact
from portal_contact.api_schema import CONTACT_SCHEMA
from portal_contact.choices import ContactChoices, EmailChoice, PhoneChoice
from portal_contact.models import ContactPreference

# The stored phone kinds in FHIR ContactPoint.use words (a landline is the client's home line).
PHONE_USE = {"cell": "mobile", "landline": "home", "work": "work"}
# Never offered by the practice (see wording.NOT_OFFERED).
NOT_OFFERED = ("sms", "social_media_message", "public_reply")


def phone_json(phone: PhoneChoice) -> dict[str, Any]:
    return {
        "rank": phone.rank,
        "system": "phone",
        "kind": PHONE_USE[phone.kind],
        "value": phone.number_e164,
        "display": phone.display,
        "texts_allowed": False,
        "voicemail_allowed": phone.voicemail != "none",
        "voicemail": phone.voicemail,
        "purpose": None,
    }


def email_json(email: EmailChoice) -> dict[str, Any]:
    return {
        "rank": email.rank,
        "system": "email",
        "kind": "email",
        "value": email.address,
        "display": email.address,
        "texts_allowed": False,
        "voicemail_allowed": False,
        "voicemail": None,
        # The warning the client accepted limits email to scheduling and administration.
        "purpose": "administrative",
    }


def do_not_use(choices: ContactChoices) -> list[dict[str, Any]]:
    rules = [{"channel": code, "value": None, "reason": "not_offered"} for code in NOT_OFFERED]
    if not choices.phones:
        rules.append({"channel": "phone_call", "value": None, "reason": "not_given"})
    rules.extend(
        {"channel": "voicemail", "value": phone.number_e164, "reason": "declined"}
        for phone in choices.phones
        if phone.voicemail == "none"
    )
    if choices.email is None:
        rules.append({"channel": "email", "value": None, "reason": "not_given"})
    return rules


def revision_json(row: ContactPreference) -> dict[str, Any]:
    choices = ContactChoices.from_json(row.choices)
    channels = [phone_json(phone) for phone in choices.phones]
    if choices.email is not None:
        channels.append(email_json(choices.email))
    return {
        "id": row.id,
        "revision": row.revision,
        "given_at": iso(row.created_at),
        "source": row.source,
        "channels": sorted(channels, key=lambda channel: channel["rank"]),
        "do_not_use": do_not_use(choices),
        "email_warning_accepted_at": iso(row.email_warning_accepted_at),
    }


# Built once (the ids expand): building a select per call cost as much as running it. Core
# rows of the columns revision_json reads: an API read or a bulk export only reads them.
_REVISIONS = (
    select(
        col(ContactPreference.id),
        col(ContactPreference.enrollment_id),
        col(ContactPreference.revision),
        col(ContactPreference.created_at),
        col(ContactPreference.choices),
        col(ContactPreference.email_warning_accepted_at),
        col(ContactPreference.source),
    )
    .where(col(ContactPreference.enrollment_id).in_(IDS))
    .order_by(col(ContactPreference.revision).desc())
)


def load(db: Session, refs: Sequence[ClientRef], history: bool) -> dict[str, Any]:
    """client id -> the current revision of their latest journey (with earlier ones)."""
    clients = {ref.enrollment_id: ref.client_id for ref in refs if ref.enrollment_id}
    if not clients:
        return {}
    by_enrollment: dict[str, list[ContactPreference]] = {}
    for row in core_rows(db, _REVISIONS, clients):
        by_enrollment.setdefault(row.enrollment_id, []).append(as_model(ContactPreference, row))
    values: dict[str, Any] = {}
    for enrollment_id, revisions in by_enrollment.items():
        value = revision_json(revisions[0])
        if history:
            value["history"] = [revision_json(row) for row in revisions[1:]]
        values[clients[enrollment_id]] = value
    return values


def section(settings: Settings) -> ApiSection:
    return ApiSection(
        key="contact",
        title="How the practice may contact the client, and how not",
        scope="contacts:read",
        schema=CONTACT_SCHEMA,
        load=load,
        fhir=fhir_contact.MAPPING,
    )
