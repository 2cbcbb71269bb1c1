"""Reading and adding acknowledgements and signatures. Only ever INSERTs.

Other plugins (the staff board, the API) may call `state_for_version`, `latest_signed` and
`load_state`; the wizard step calls `create_acknowledgement` and `sign`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal.rows import IDS, core_rows
from portal_policy.models import PolicyVersion
from portal_signature import esign
from portal_signature.models import Acknowledgement, Role, Signature, SignerSlot
from portal_signature.parties import SignerPlan, relationship_words

_Ack = TypeVar("_Ack", bound=Any)  # an Acknowledgement, or a row of some of its columns


class ConcurrentChange(Exception):
    """Another request superseded the same acknowledgement first."""


class AlreadySigned(Exception):
    """The slot was signed by a concurrent request."""


@dataclass(frozen=True)
class AckState:
    """An acknowledgement with its slots (in signing order) and the signatures so far."""

    ack: Acknowledgement
    slots: tuple[SignerSlot, ...]
    signed: dict[str, Signature]  # slot id -> signature

    @property
    def client_slots(self) -> tuple[SignerSlot, ...]:
        return tuple(slot for slot in self.slots if slot.role != Role.THERAPIST)

    @property
    def therapist_slot(self) -> SignerSlot | None:
        return next((slot for slot in self.slots if slot.role == Role.THERAPIST), None)

    @property
    def next_slot(self) -> SignerSlot | None:
        return next((slot for slot in self.client_slots if slot.id not in self.signed), None)

    @property
    def complete(self) -> bool:
        """Every client-side signer signed; the therapist's countersignature is not needed."""
        return bool(self.client_slots) and self.next_slot is None

    @property
    def any_signed(self) -> bool:
        return bool(self.signed)

    @property
    def countersignature_pending(self) -> bool:
        slot = self.therapist_slot
        return slot is not None and slot.id not in self.signed

    def signatures(self) -> list[tuple[SignerSlot, Signature]]:
        return [(slot, self.signed[slot.id]) for slot in self.slots if slot.id in self.signed]


def load_state(db: Session, ack: Acknowledgement) -> AckState:
    slots = db.exec(
        select(SignerSlot)
        .where(SignerSlot.acknowledgement_id == ack.id)
        .order_by(col(SignerSlot.position))
    ).all()
    rows = db.exec(select(Signature).where(Signature.acknowledgement_id == ack.id)).all()
    return AckState(ack, tuple(slots), {row.slot_id: row for row in rows})


def _heads(acks: list[_Ack]) -> list[_Ack]:
    """Acknowledgements (objects or rows) nobody superseded, newest first."""
    superseded = {ack.supersedes_id for ack in acks if ack.supersedes_id}
    heads = [ack for ack in acks if ack.id not in superseded]
    return sorted(heads, key=lambda ack: (ack.created_at, ack.id), reverse=True)


def _for_enrollment(db: Session, enrollment_id: str) -> list[Acknowledgement]:
    return list(
        db.exec(select(Acknowledgement).where(Acknowledgement.enrollment_id == enrollment_id))
    )


def state_for_version(db: Session, enrollment_id: str, policy_version_id: str) -> AckState | None:
    """The acknowledgement in force for this enrollment and policy version, if any."""
    acks = [
        a for a in _for_enrollment(db, enrollment_id) if a.policy_version_id == policy_version_id
    ]
    heads = _heads(acks)
    return load_state(db, heads[0]) if heads else None


def latest(db: Session, enrollment_id: str) -> AckState | None:
    """The newest acknowledgement in force, whatever its policy version."""
    heads = _heads(_for_enrollment(db, enrollment_id))
    return load_state(db, heads[0]) if heads else None


def latest_signed(db: Session, enrollment_id: str) -> AckState | None:
    """The newest acknowledgement every client-side signer signed (what a receipt shows)."""
    for ack in _heads(_for_enrollment(db, enrollment_id)):
        state = load_state(db, ack)
        if state.complete:
            return state
    return None


@dataclass(frozen=True)
class SignedSummary:
    """What the board and the campaigns need of an enrollment's latest signed acknowledgement."""

    ack_id: str
    policy_version: int
    countersignature_pending: bool


_SUMMARY_ACKS = select(
    col(Acknowledgement.id),
    col(Acknowledgement.enrollment_id),
    col(Acknowledgement.created_at),
    col(Acknowledgement.policy_version),
    col(Acknowledgement.supersedes_id),
).where(col(Acknowledgement.enrollment_id).in_(IDS))
_SUMMARY_SLOTS = select(
    col(SignerSlot.id), col(SignerSlot.acknowledgement_id), col(SignerSlot.role)
).where(col(SignerSlot.acknowledgement_id).in_(IDS))
_SUMMARY_SIGNED = select(col(Signature.slot_id)).where(col(Signature.acknowledgement_id).in_(IDS))


def latest_signed_summaries(db: Session, enrollment_ids: Sequence[str]) -> dict[str, SignedSummary]:
    """`latest_signed` for many enrollments (a board page asks for 50, a campaign batch for
    hundreds), in three prepared queries of plain columns: the same choice of acknowledgement,
    without loading names, statements and request context into objects nobody reads."""
    acks = list(core_rows(db, _SUMMARY_ACKS, enrollment_ids))
    if not acks:
        return {}
    ack_ids = [ack.id for ack in acks]
    slots: dict[str, list[tuple[str, str]]] = {}
    for slot_id, ack_id, role in core_rows(db, _SUMMARY_SLOTS, ack_ids):
        slots.setdefault(ack_id, []).append((slot_id, role))
    signed = set(core_rows(db, _SUMMARY_SIGNED, ack_ids).scalars())
    by_enrollment: dict[str, list[Any]] = {}
    for ack in acks:
        by_enrollment.setdefault(ack.enrollment_id, []).append(ack)
    found: dict[str, SignedSummary] = {}
    for enrollment_id, theirs in by_enrollment.items():
        for ack in _heads(theirs):
            theirs_slots = slots.get(ack.id, [])
            client = [slot for slot, role in theirs_slots if role != Role.THERAPIST]
            therapist = [slot for slot, role in theirs_slots if role == Role.THERAPIST]
            if client and all(slot in signed for slot in client):  # AckState.complete
                pending = bool(therapist) and therapist[0] not in signed
                found[enrollment_id] = SignedSummary(ack.id, ack.policy_version, pending)
                break
    return found


def same_plan(state: AckState, plan: SignerPlan) -> bool:
    have = [(s.role, s.expected_name, s.relationship) for s in state.client_slots]
    want = [(s.role, s.expected_name, s.relationship) for s in plan.signers]
    return (state.ack.party, state.ack.minor_name, have) == (plan.party, plan.minor_name, want)


def create_acknowledgement(
    db: Session,
    enrollment: Enrollment,
    policy: PolicyVersion,
    plan: SignerPlan,
    *,
    supersedes: Acknowledgement | None,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> AckState:
    ack = Acknowledgement(
        enrollment_id=enrollment.id,
        client_id=enrollment.client_id,
        created_at=now,
        party=plan.party,
        minor_name=plan.minor_name,
        policy_version_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.content_hash,
        supersedes_id=supersedes.id if supersedes else None,
    )
    slots = [
        SignerSlot(
            acknowledgement_id=ack.id,
            position=position,
            role=signer.role,
            expected_name=signer.expected_name,
            relationship=signer.relationship,
        )
        for position, signer in enumerate(plan.signers, start=1)
    ]
    # Created now and left open: the staff side countersigns later.
    slots.append(
        SignerSlot(acknowledgement_id=ack.id, position=len(slots) + 1, role=Role.THERAPIST)
    )
    try:
        with db.begin_nested():
            db.add(ack)
            db.add_all(slots)
            db.flush()
    except IntegrityError:
        raise ConcurrentChange from None
    action = "acknowledgement.changed" if supersedes else "acknowledgement.created"
    audit.record(
        db,
        actor,
        action,
        "acknowledgement",
        ack.id,
        meta,
        enrollment_id=ack.enrollment_id,
        party=plan.party,
        policy_version=policy.version,
        signers=len(plan.signers),
        supersedes=supersedes.id if supersedes else None,
    )
    return AckState(ack, tuple(slots), {})


def meaning(title: str, version: int, slot: SignerSlot, minor_name: str | None) -> str:
    if slot.role == Role.THERAPIST:
        return f"Countersigns the client's acknowledgement of the {title}, version {version}"
    text = f"Acknowledges the {title}, version {version}"
    if slot.role == Role.GUARDIAN and minor_name:
        text += f", as {relationship_words(slot.relationship)} of {minor_name}, a minor"
    return text


def sign(
    db: Session,
    state: AckState,
    slot: SignerSlot,
    policy: PolicyVersion,
    *,
    typed_name: str,
    disclosure: esign.Disclosure,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> Signature:
    """Add the signature; raises AlreadySigned when the slot's UNIQUE constraint says so."""
    signature = Signature(
        slot_id=slot.id,
        acknowledgement_id=state.ack.id,
        typed_name=typed_name,
        meaning=meaning(policy.title, policy.version, slot, state.ack.minor_name),
        statement=esign.STATEMENT,
        signed_at=now,
        policy_version_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.content_hash,
        esign_consent=True,
        esign_disclosure_version=disclosure.version,
        esign_disclosure_hash=disclosure.sha256,
        ip=meta.ip[:64],
        user_agent=meta.user_agent[:300],
        session_ref=meta.session_ref,
    )
    try:
        with db.begin_nested():
            db.add(signature)
            db.flush()
    except IntegrityError:
        raise AlreadySigned from None
    audit.record(
        db,
        actor,
        "acknowledgement.signed",
        "acknowledgement",
        state.ack.id,
        meta,
        enrollment_id=state.ack.enrollment_id,
        role=slot.role,
        position=slot.position,
        policy_version=policy.version,
    )
    return signature
