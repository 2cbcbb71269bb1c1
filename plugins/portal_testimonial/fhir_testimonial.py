"""Testimonial decisions in FHIR R4: one Consent per decision or withdrawal row.

A "yes" permits disclosing the client's words (how they are attributed and where they may appear
are the provision's codes); a "no" or a withdrawal denies it. Only the row in force is active;
each earlier one is inactive, its period ending when the next row was recorded, so a withdrawal
ends the "yes" and starts a "deny" of its own.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from portal.api.fhir_consent import POLICY_RULE_SYSTEM, concept, consent, period
from portal.api.sections import FhirMapping
from portal_testimonial.choices import NO, PLACEMENTS
from portal_testimonial.models import TestimonialDecision

PREFIX = "testimonial"
ATTRIBUTION_SYSTEM = "urn:intake-portal:testimonial-attribution"
PLACEMENT_SYSTEM = "urn:intake-portal:testimonial-placement"
ATTRIBUTION_WORDS = {
    "anonymous": "Anonymously, without anything that identifies the client",
    "initials": "With the client's initials",
    "first_name": "With the client's first name",
}
# Built once and shared: the same in every Consent.
ATTRIBUTION_CODES = {
    key: concept(ATTRIBUTION_SYSTEM, key, words) for key, words in ATTRIBUTION_WORDS.items()
}
PLACEMENT_CODES = {key: concept(PLACEMENT_SYSTEM, key, words) for key, words in PLACEMENTS.items()}
DISCLOSE = concept("http://terminology.hl7.org/CodeSystem/consentaction", "disclose", "Disclose")
POLICY_RULE = concept(
    POLICY_RULE_SYSTEM,
    "testimonial-use",
    "Use of the client's testimonial",
    "Permission for the practice to share what the client says about it",
)
_ROW_ID = re.compile(r"[0-9a-f]{32}")


def _provision(row: dict[str, Any], ended_at: str | None) -> dict[str, Any]:
    if row["choice"] == NO:
        return {
            "type": "deny",
            "period": period(row["recorded_at"], ended_at),
            "action": [DISCLOSE],
        }
    codes = [ATTRIBUTION_CODES[row["choice"]], *(PLACEMENT_CODES[key] for key in row["placements"])]
    return {
        "type": "permit",
        "period": period(row["recorded_at"], ended_at),
        "action": [DISCLOSE],
        "code": codes,
    }


def consents(client_id: str, value: dict[str, Any]) -> list[dict[str, Any]]:
    rows = value["history"]  # every row, newest first: the mapping needs the value with history
    resources = []
    for index, row in enumerate(rows):
        ended_at = rows[index - 1]["recorded_at"] if index else None
        resources.append(
            consent(
                resource_id=f"{PREFIX}-{row['id']}",
                client_id=client_id,
                status="inactive" if ended_at else "active",
                category="testimonial",
                category_display="Testimonial",
                date_time=row["recorded_at"],
                last_updated=ended_at or row["recorded_at"],
                policy_rule=POLICY_RULE,
                provision=_provision(row, ended_at),
            )
        )
    return resources


def consent_owner(db: Session, row_id: str) -> str | None:
    if not _ROW_ID.fullmatch(row_id):
        return None
    query = select(TestimonialDecision.client_id).where(TestimonialDecision.id == row_id)
    return db.exec(query).first()


MAPPING = FhirMapping(consents=consents, consent_prefix=PREFIX, consent_owner=consent_owner)
