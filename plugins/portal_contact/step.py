"""Step: how the practice may contact the client between sessions (HIPAA's request for
confidential communications)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from sqlmodel import Session, col, select

from portal.rows import IDS, core_rows
from portal.steps import StepContext, StepOutcome, SummaryItem
from portal_contact import service
from portal_contact.choices import MAX_PHONES, PHONE_KINDS, ContactChoices, parse_contact_form
from portal_contact.models import ContactPreference
from portal_contact.prefill import form_values
from portal_contact.wording import (
    EMAIL_ACCEPTANCE,
    EMAIL_WARNING_PARAGRAPHS,
    EMAIL_WARNING_TEXT,
    NOT_OFFERED,
    NOT_OFFERED_SUMMARY,
    VOICEMAIL_OPTIONS,
)

# Journeys, among some, with a contact preference (built once; the ids expand).
_ANSWERED = select(ContactPreference.enrollment_id).where(
    col(ContactPreference.enrollment_id).in_(IDS)
)
CONCURRENT_CHANGE_MESSAGE = (
    "Your contact choices were just saved from another window. Please check them and save again."
)
DEMO_FORM = {
    "phone_0_number": "(206) 555-0148",
    "phone_0_kind": "cell",
    "phone_0_voicemail": "practice_name",
}


class ContactStep:
    def is_complete(self, ctx: StepContext) -> bool:
        return service.latest(ctx.db, ctx.enrollment.id) is not None

    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        """`is_complete` for many journeys: who has said how they may be contacted."""
        return set(core_rows(db, _ANSWERED, enrollment_ids).scalars())

    def context(self, ctx: StepContext) -> dict[str, Any]:
        return {
            # Coming back to edit shows what they chose; a first visit shows nothing chosen.
            "values": form_values(service.current_choices(ctx.db, ctx.enrollment.id)),
            "phone_rows": range(MAX_PHONES),
            "phone_kinds": PHONE_KINDS,
            "voicemail_options": VOICEMAIL_OPTIONS,
            "email_warning_paragraphs": EMAIL_WARNING_PARAGRAPHS,
            "email_acceptance": EMAIL_ACCEPTANCE,
            "not_offered": NOT_OFFERED,
        }

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        result = parse_contact_form(form, ctx.settings.phone_region)
        if result.choices is None or action == "validate":
            return StepOutcome(errors=result.errors, values=result.values)
        choices = result.choices
        if choices.email is None:
            # A ticked box without an address accepts nothing; don't store it as if it did.
            choices = dataclasses.replace(choices, email_warning_accepted=False)
        if service.is_unchanged(ctx.db, ctx.enrollment.id, choices):
            # Re-saving the same answers adds nothing to the history.
            return StepOutcome(done=True)
        try:
            service.record(
                ctx.db,
                ctx.enrollment,
                choices,
                EMAIL_WARNING_TEXT,
                actor=ctx.actor,
                meta=ctx.meta,
                now=ctx.now,
            )
        except service.ConcurrentChange:
            return StepOutcome(errors={"__all__": CONCURRENT_CHANGE_MESSAGE}, values=result.values)
        return StepOutcome(done=True, stored=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        choices = service.current_choices(ctx.db, ctx.enrollment.id, ctx.as_of)
        if choices is None:
            return []
        return [summary_item(choices)]

    def demo_fill(self, ctx: StepContext) -> None:
        outcome = self.submit(ctx, DEMO_FORM, "save")
        assert outcome.ok, outcome.errors


def summary_item(choices: ContactChoices) -> SummaryItem:
    return SummaryItem("How we may contact you", (*choices.plain_words(), NOT_OFFERED_SUMMARY))
