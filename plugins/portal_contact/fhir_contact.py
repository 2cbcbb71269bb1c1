"""The contact rules in FHIR R4: Patient.telecom for the current revision, and one Consent per
revision saying which channels are permitted and which are denied.

Channels that must not be used are left out of ``telecom`` on purpose. R4 has no standard way to
mark a ContactPoint "do not use" (``use: old`` or an ended ``period`` would say the number is no
longer valid, which is false, and systems that ignore either would dial it), and the rules not to
text, not to leave voicemail or not to email are not contact points at all. They are stated as
``deny`` provisions of the contact-preferences Consent, next to the ``permit`` ones, where a
system reading consent expects them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from portal.api.fhir_consent import (
    CONTACT_CHANNEL_SYSTEM,
    POLICY_RULE_SYSTEM,
    coding,
    concept,
    consent,
    period,
)
from portal.api.sections import FhirMapping
from portal_contact.models import ContactPreference

PREFIX = "contact"
# HL7 FHIR Extensions Pack (hl7.fhir.uv.extensions, also packaged for R4 as
# hl7.fhir.uv.extensions.r4), Trial Use: a CodeableConcept saying what a ContactPoint may be used
# for. Used here for email, which the client allowed for scheduling and administration only.
PURPOSE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/contactpoint-purpose"
PURPOSE_SYSTEM = "urn:intake-portal:contact-purpose"
ADMINISTRATIVE = concept(
    PURPOSE_SYSTEM,
    "administrative",
    "Scheduling and administrative matters",
    "Scheduling and administrative matters only",
)
POLICY_RULE = concept(
    POLICY_RULE_SYSTEM,
    "confidential-communications",
    "Request for confidential communications",
    "The client's request for confidential communications (HIPAA, 45 CFR 164.522(b))",
)
CHANNEL_WORDS = {
    "phone_call": "Phone call",
    "voicemail": "Voicemail",
    "sms": "Text message (SMS)",
    "email": "Email",
    "social_media_message": "Social network message",
    "public_reply": "Public reply or comment",
}
VOICEMAIL_WORDS = {
    "callback_only": "first name and a callback number only, no practice name",
    "practice_name": "may name the practice",
    "details": "may include appointment details",
}
REASON_WORDS = {
    "not_offered": "not offered by the practice",
    "not_given": "none given",
    "declined": "declined by the client",
}
_ROW_ID = re.compile(r"[0-9a-f]{32}")


def telecom(value: dict[str, Any]) -> list[dict[str, Any]]:
    """ContactPoints for the channels of the current revision, in rank order."""
    points = []
    for channel in value["channels"]:
        point: dict[str, Any] = {}
        if channel["purpose"] == "administrative":
            point["extension"] = [
                {"url": PURPOSE_EXTENSION, "valueCodeableConcept": ADMINISTRATIVE}
            ]
        point.update({"system": channel["system"], "value": channel["value"]})
        if channel["kind"] != "email":
            point["use"] = channel["kind"]
        point["rank"] = channel["rank"]
        point["period"] = period(value["given_at"])
        points.append(point)
    return points


# The channel codings, built once and shared (they are the same in every Consent).
CHANNEL_CODINGS = {
    code: coding(CONTACT_CHANNEL_SYSTEM, code, words) for code, words in CHANNEL_WORDS.items()
}


def _rule(kind: str, code: str, text: str) -> dict[str, Any]:
    # concept(CONTACT_CHANNEL_SYSTEM, code, CHANNEL_WORDS[code], text), with the shared coding
    return {"type": kind, "action": [{"coding": [CHANNEL_CODINGS[code]], "text": text}]}


def provisions(revision: dict[str, Any]) -> list[dict[str, Any]]:
    """One nested provision per thing the practice may do (permit) or must not do (deny)."""
    rules = []
    for channel in revision["channels"]:
        where = f"{channel['display']} (rank {channel['rank']})"
        if channel["system"] == "email":
            rules.append(_rule("permit", "email", f"Email to {where}: scheduling and admin only"))
            continue
        rules.append(_rule("permit", "phone_call", f"Phone calls to {where}"))
        if channel["voicemail_allowed"]:
            words = VOICEMAIL_WORDS[channel["voicemail"]]
            rules.append(_rule("permit", "voicemail", f"Voicemail on {where}: {words}"))
    shown = {channel["value"]: channel["display"] for channel in revision["channels"]}
    for rule in revision["do_not_use"]:
        words = REASON_WORDS[rule["reason"]]
        subject = CHANNEL_WORDS[rule["channel"]]
        if rule["value"]:
            subject += f" on {shown.get(rule['value'], rule['value'])}"
        text = f"{subject}: {words}"
        rules.append(_rule("deny", rule["channel"], text))
    return rules


def consents(client_id: str, value: dict[str, Any]) -> list[dict[str, Any]]:
    """One Consent per revision: the current one active, earlier ones inactive, each ending
    when the next one was given."""
    revisions = [value, *value["history"]]  # newest first: needs the value with history
    resources = []
    for index, revision in enumerate(revisions):
        replaced_at = revisions[index - 1]["given_at"] if index else None
        resources.append(
            consent(
                resource_id=f"{PREFIX}-{revision['id']}",
                client_id=client_id,
                status="inactive" if replaced_at else "active",
                category="contact-preferences",
                category_display="Contact preferences",
                date_time=revision["given_at"],
                last_updated=replaced_at or revision["given_at"],
                policy_rule=POLICY_RULE,
                provision={
                    "type": "permit",
                    "period": period(revision["given_at"], replaced_at),
                    "provision": provisions(revision),
                },
            )
        )
    return resources


def consent_owner(db: Session, row_id: str) -> str | None:
    if not _ROW_ID.fullmatch(row_id):
        return None
    query = select(ContactPreference.client_id).where(ContactPreference.id == row_id)
    return db.exec(query).first()


MAPPING = FhirMapping(
    consents=consents,
    telecom=telecom,
    consent_prefix=PREFIX,
    consent_owner=consent_owner,
)
