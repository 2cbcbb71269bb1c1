"""Step: say who signs, then each signer consents to e-signing and signs, one after another.

One page, two phases: "who" (no acknowledgement yet for the current policy version, or the
client asked to change it before anyone signed) and "sign" (the next unsigned slot).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, select

from portal.rows import IDS, core_rows
from portal.steps import StepContext, StepOutcome, SummaryItem
from portal_policy import service as policy_service
from portal_policy.models import PolicyVersion
from portal_signature import esign, service
from portal_signature.models import Acknowledgement, Party, Role, Signature, SignerSlot
from portal_signature.parties import (
    MAX_OTHER_ADULTS,
    PARTY_OPTIONS,
    RELATIONSHIPS,
    SignerPlan,
    adult_field,
    adult_rows,
    check_typed_name,
    form_values,
    parse_plan,
    role_label,
)
from portal_signature.service import AckState

SUMMARY_HEADING = "Signatures"
NO_POLICY = "The practice has not published its policy yet, so there is nothing to sign."
NEW_POLICY = "The practice published a new version of the policy. Please read it before signing."
LOCKED = (
    "Someone has already signed, so who signs can't be changed any more. If it needs to "
    "change, please contact the practice."
)
CONSENT_MISSING = (
    "Tick the box to agree to sign electronically, or ask the practice for a paper copy to sign."
)
ACK_MISSING = "Tick the box to confirm you have read, understand and accept the policy."


def _state(ctx: StepContext) -> tuple[PolicyVersion | None, AckState | None]:
    policy = policy_service.current(ctx.db)
    if policy is None:
        return None, None
    return policy, service.state_for_version(ctx.db, ctx.enrollment.id, policy.id)


# `SignatureStep.complete_among`'s two queries, built once (the ids expand): the
# acknowledgements of the current (highest) policy version, and their client-side slots, each
# with its signature if any.
_CURRENT_ACKS = (
    select(
        Acknowledgement.id,
        Acknowledgement.enrollment_id,
        Acknowledgement.created_at,
        Acknowledgement.supersedes_id,
    )
    .where(col(Acknowledgement.enrollment_id).in_(IDS))
    .where(Acknowledgement.policy_version_id == policy_service.CURRENT_ID)
)
_CLIENT_SLOTS = (
    select(SignerSlot.acknowledgement_id, Signature.id)
    .outerjoin(
        Signature,
        and_(
            col(Signature.slot_id) == SignerSlot.id,
            col(Signature.acknowledgement_id) == SignerSlot.acknowledgement_id,
        ),
    )
    .where(col(SignerSlot.acknowledgement_id).in_(IDS))
    .where(SignerSlot.role != Role.THERAPIST)
)


def _acks_in_force(db: Session, enrollment_ids: Collection[str]) -> dict[str, str]:
    """Enrollment id -> the acknowledgement `state_for_version` finds for the current policy
    version: the newest that no acknowledgement of that version supersedes."""
    rows = core_rows(db, _CURRENT_ACKS, enrollment_ids).all()
    superseded = {row.supersedes_id for row in rows if row.supersedes_id}
    newest: dict[str, Any] = {}
    for row in rows:
        best = newest.get(row.enrollment_id)
        if row.id not in superseded and (
            best is None or (row.created_at, row.id) > (best.created_at, best.id)
        ):
            newest[row.enrollment_id] = row
    return {enrollment_id: row.id for enrollment_id, row in newest.items()}


def plan_values(state: AckState) -> dict[str, str]:
    """The "who signs" form filled in as this acknowledgement has it (to change or carry over)."""
    ack = state.ack
    values = {"party": ack.party, "phase": "who"}
    adults = [slot for slot in state.client_slots if slot.role == Role.ADULT]
    for number, slot in enumerate(adults[:MAX_OTHER_ADULTS], start=1):
        values[adult_field(number)] = slot.expected_name or ""
    values["adult_rows"] = str(max(1, len(adults)))
    guardian = next((slot for slot in state.client_slots if slot.role == Role.GUARDIAN), None)
    if ack.party == Party.MINOR and guardian is not None:
        values["minor_name"] = ack.minor_name or ""
        values["guardian_name"] = guardian.expected_name or ""
        relationship = guardian.relationship or ""
        if relationship.startswith("other: "):
            values["relationship"] = "other"
            values["relationship_other"] = relationship.removeprefix("other: ")
        else:
            values["relationship"] = relationship
    return values


def _signers(state: AckState) -> list[dict[str, Any]]:
    nxt = state.next_slot
    return [
        {
            "name": slot.expected_name,
            "label": role_label(slot.role, slot.relationship),
            "signature": state.signed.get(slot.id),
            "is_next": nxt is not None and slot.id == nxt.id,
        }
        for slot in state.client_slots
    ]


class SignatureStep:
    def is_complete(self, ctx: StepContext) -> bool:
        _policy, state = _state(ctx)
        return state is not None and state.complete

    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        """`is_complete` for many journeys in two queries: whose acknowledgement of the current
        version has client-side signer slots, each signed (`AckState.complete`)."""
        heads = _acks_in_force(db, enrollment_ids)
        if not heads:
            return set()
        slots = core_rows(db, _CLIENT_SLOTS, heads.values()).all()
        with_slots = {ack_id for ack_id, _signature in slots}
        unsigned = {ack_id for ack_id, signature in slots if signature is None}
        return {e for e, ack_id in heads.items() if ack_id in with_slots - unsigned}

    def context(self, ctx: StepContext) -> dict[str, Any]:
        policy, state = _state(ctx)
        prefill: dict[str, str] = {}
        carried_over = False
        if policy is not None and state is None:
            previous = service.latest(ctx.db, ctx.enrollment.id)
            if previous is not None:
                prefill, carried_over = plan_values(previous), True
        phase = "who" if state is None else ("done" if state.complete else "sign")
        slot = state.next_slot if state else None
        return {
            "policy": policy,
            "phase": phase,
            "prefill": prefill,
            "carried_over": carried_over,
            "signers": _signers(state) if state else [],
            "next_slot": slot,
            "can_change": state is not None and not state.any_signed,
            "meaning": service.meaning(policy.title, policy.version, slot, state.ack.minor_name)
            if policy and state and slot
            else "",
            "statement": esign.STATEMENT,
            "disclosure": esign.disclosure(ctx.practice),
            "party_options": PARTY_OPTIONS,
            "relationships": RELATIONSHIPS,
            "max_adults": MAX_OTHER_ADULTS,
            "client_name": ctx.client.full_name,
        }

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        policy, state = _state(ctx)
        if policy is None:
            return StepOutcome(errors={"policy": NO_POLICY})
        if action == "add_signer":
            return self._add_row(form)
        if action == "change_signers":
            return self._change(state)
        phase = form.get("phase")
        if phase not in ("who", "sign"):
            phase = "who" if state is None else "sign"
        if phase == "who":
            return self._save_plan(ctx, form, action, policy, state)
        return self._sign(ctx, form, action, policy, state)

    # -- phase 1: who signs -------------------------------------------------------------

    def _add_row(self, form: Mapping[str, str]) -> StepOutcome:
        # Re-renders with one more empty row; stores nothing, so it works without JavaScript.
        values = form_values(form)
        values["party"] = Party.ADULTS
        rows = adult_rows(form)
        if rows >= MAX_OTHER_ADULTS:
            notice = (
                f"You can list up to {MAX_OTHER_ADULTS} other adults here. If more people "
                "need to sign, please contact the practice."
            )
            return StepOutcome(values=values, notice=notice)
        values["adult_rows"] = str(rows + 1)
        return StepOutcome(values=values, notice="Added a row for another adult.")

    def _change(self, state: AckState | None) -> StepOutcome:
        if state is None:
            return StepOutcome(values={"phase": "who"})
        if state.any_signed:
            return StepOutcome(errors={"slot": LOCKED}, values={"phase": "sign"})
        return StepOutcome(values=plan_values(state), notice="Change who signs, then save.")

    def _save_plan(
        self,
        ctx: StepContext,
        form: Mapping[str, str],
        action: str,
        policy: PolicyVersion,
        state: AckState | None,
    ) -> StepOutcome:
        if state is not None and state.any_signed:
            return StepOutcome(errors={"slot": LOCKED}, values={"phase": "sign"})
        result = parse_plan(form, ctx.client.full_name)
        if result.plan is None:
            return StepOutcome(errors=result.errors, values=result.values)
        if action == "validate":
            return StepOutcome(values=result.values)
        plan: SignerPlan = result.plan
        if state is not None and service.same_plan(state, plan):
            return StepOutcome(notice=_next_notice(state, None))
        try:
            new_state = service.create_acknowledgement(
                ctx.db,
                ctx.enrollment,
                policy,
                plan,
                supersedes=state.ack if state else None,
                actor=ctx.actor,
                meta=ctx.meta,
                now=ctx.now,
            )
        except service.ConcurrentChange:
            message = "Who signs was changed in another window at the same moment. Please check."
            return StepOutcome(errors={"party": message}, values=result.values)
        return StepOutcome(stored=True, notice=_next_notice(new_state, None))

    # -- phase 2: sign ------------------------------------------------------------------

    def _sign(
        self,
        ctx: StepContext,
        form: Mapping[str, str],
        action: str,
        policy: PolicyVersion,
        state: AckState | None,
    ) -> StepOutcome:
        if state is None:
            return StepOutcome(
                errors={"party": "Please choose who is signing first."}, values={"phase": "who"}
            )
        if state.complete:
            return StepOutcome(done=True)
        slot = state.next_slot
        assert slot is not None  # not complete, so someone is still to sign
        values: dict[str, str] = {"phase": "sign"}
        if form.get("policy_version", str(policy.version)) != str(policy.version):
            return StepOutcome(errors={"policy": NEW_POLICY}, values=values)
        if form.get("slot_id", slot.id) != slot.id:
            # Signed meanwhile (another tab, a double click): show whoever is next now.
            return StepOutcome(
                errors={"slot": f"That signature was already given. {_next_notice(state, None)}"},
                values=values,
            )
        errors: dict[str, str] = {}
        consent = form.get("esign_consent") == "yes"
        acknowledged = form.get("acknowledge") == "yes"
        if not consent:
            errors["esign_consent"] = CONSENT_MISSING
        if not acknowledged:
            errors["acknowledge"] = ACK_MISSING
        typed, problem = check_typed_name(form.get("typed_name"), slot.expected_name or "")
        if problem:
            errors["typed_name"] = problem
        values.update(
            typed_name=typed,
            esign_consent="yes" if consent else "",
            acknowledge="yes" if acknowledged else "",
        )
        if errors or action == "validate":
            return StepOutcome(errors=errors, values=values)
        try:
            service.sign(
                ctx.db,
                state,
                slot,
                policy,
                typed_name=typed,
                disclosure=esign.disclosure(ctx.practice),
                actor=ctx.actor,
                meta=ctx.meta,
                now=ctx.now,
            )
        except service.AlreadySigned:
            return StepOutcome(
                errors={"slot": "That signature was already given. Please check the page."},
                values={"phase": "sign"},
            )
        after = service.load_state(ctx.db, state.ack)
        if after.complete:
            return StepOutcome(done=True, stored=True)
        return StepOutcome(stored=True, notice=_next_notice(after, slot.expected_name))

    # -- summary and demo ---------------------------------------------------------------

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        _policy, state = _state(ctx)
        if state is None or not state.any_signed:
            return []
        lines = [
            f"{signature.typed_name} ({role_label(slot.role, slot.relationship)}): "
            f"{signature.meaning}, signed {signature.signed_at:%Y-%m-%d %H:%M} UTC"
            for slot, signature in state.signatures()
        ]
        if state.countersignature_pending:
            lines.append("Therapist countersignature: pending")
        return [SummaryItem(SUMMARY_HEADING, tuple(lines))]

    def demo_fill(self, ctx: StepContext) -> None:
        policy = policy_service.current(ctx.db)
        assert policy is not None, "publish a policy before filling demo data"
        chosen = self.submit(ctx, {"phase": "who", "party": Party.INDIVIDUAL}, "save")
        assert chosen.ok, chosen.errors
        form = {
            "phase": "sign",
            "esign_consent": "yes",
            "acknowledge": "yes",
            "typed_name": ctx.client.full_name,
        }
        signed = self.submit(ctx, form, "save")
        assert signed.ok, signed.errors


def _next_notice(state: AckState, signed_name: str | None) -> str:
    nxt = state.next_slot
    thanks = f"Thank you, {signed_name}. " if signed_name else ""
    if nxt is None:
        return thanks + "Everyone has signed."
    if signed_name:
        return f"{thanks}Next: {nxt.expected_name}, please sign."
    return f"Saved. {nxt.expected_name}, please sign first."
