"""The receipt: a PDF of the signed acknowledgement, built only from stored records.

Nothing here reads the clock, so the same records always give the same bytes: the download at
the end, the one months later from the resume link and the emailed copy are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlmodel import Session

from portal.models import Client, Enrollment, Practice
from portal.steps import SummaryItem
from portal_policy.models import PolicyVersion
from portal_signature import esign, service
from portal_signature.models import Party, Role
from portal_signature.parties import relationship_words, role_label
from portal_signature.receipt_pdf import (
    ReceiptData,
    ReceiptSection,
    ReceiptSignature,
)
from portal_signature.service import AckState
from portal_signature.step import SUMMARY_HEADING

# Left out of the "choices" sections: the signatures get their own block, and the header
# already prints the signed policy version (the policy step's line names the *current* one,
# which is newer once the practice publishes again).
NOT_SECTIONS = frozenset({SUMMARY_HEADING, "Policy you read"})


class NoSignedAcknowledgement(LookupError):
    """The enrollment has no acknowledgement that every signer signed."""


def filename(data: ReceiptData) -> str:
    # No client name: the file name ends up in download folders and mail logs.
    return f"acknowledgement-{data.reference[:8]}.pdf"


def _who_signs(state: AckState) -> ReceiptSection:
    ack = state.ack
    if ack.party == Party.MINOR:
        guardian = state.client_slots[0] if state.client_slots else None
        relation = relationship_words(guardian.relationship if guardian else None)
        line = f"A parent or guardian ({relation}) signs for {ack.minor_name}, a child under 18."
    elif ack.party == Party.ADULTS:
        others = len(state.client_slots) - 1
        line = f"The client and {others} other adult{'s' if others != 1 else ''} seen together."
    else:
        line = "The client alone."
    return ReceiptSection("Who signs", (line,))


def _footer(practice: Practice, state: AckState) -> tuple[str, ...]:
    contact = esign.practice_contact(practice)
    versions = sorted(
        {(sig.esign_disclosure_version, sig.esign_disclosure_hash) for _, sig in state.signatures()}
    )
    lines = [
        f"Paper copy: you may ask {practice.name}{contact} for a paper copy of this "
        "acknowledgement at no charge, and sign on paper instead.",
        "Withdrawing consent to electronic records and signatures: tell "
        f"{practice.name} in writing{esign.in_writing(practice)}. Withdrawal does not undo "
        "what was already signed.",
    ]
    lines += [
        f"Electronic signature disclosure shown: version {version}, SHA-256 {digest}"
        for version, digest in versions
    ]
    lines.append(f"Reference: {state.ack.id}")
    return tuple(lines)


def _as_published(policy: PolicyVersion, today: Practice) -> Practice:
    fields = set(Practice.model_fields) - {"id", "updated_at", "require_staff_totp"}
    snapshot = {k: v for k, v in policy.practice_snapshot.items() if k in fields}
    return Practice(**{**{f: getattr(today, f) for f in fields}, **snapshot})


def _contact_line(practice: Practice) -> str:
    return " · ".join(part for part in (practice.phone, practice.email, practice.website) if part)


SummaryAt = Callable[[datetime | None], Sequence[SummaryItem]]


def build_receipt_data(
    db: Session, enrollment: Enrollment, practice: Practice, summary_at: SummaryAt
) -> ReceiptData:
    """Everything the PDF prints, from stored records. Raises NoSignedAcknowledgement.

    The choices are taken as they stood at the last signature (`summary_at(signed_at)`), so a
    copy made later shows what was signed, byte for byte, whatever changed since.
    """
    state = service.latest_signed(db, enrollment.id)
    if state is None:
        raise NoSignedAcknowledgement(enrollment.id)
    ack = state.ack
    client = db.get(Client, enrollment.client_id)
    policy = db.get(PolicyVersion, ack.policy_version_id)
    assert policy is not None  # a foreign key: a signed policy version is never deleted
    # The practice as the signed policy version named it, not as it is today: a copy made
    # after the practice moves or renames is still the same document.
    practice = _as_published(policy, practice)
    signatures = tuple(
        ReceiptSignature(
            full_name=signature.typed_name,
            role=role_label(slot.role, slot.relationship),
            meaning=signature.meaning,
            signed_at=signature.signed_at,
            esign_consent=signature.esign_consent,
        )
        for slot, signature in state.signatures()
    )
    signed_times = [signature.signed_at for _, signature in state.signatures()]
    generated_from = max(signed_times, default=ack.created_at)
    # The choices as the client signed them; a later countersignature does not change them.
    client_signed = [
        sig.signed_at for slot, sig in state.signatures() if slot.role != Role.THERAPIST
    ]
    summary = summary_at(max(client_signed, default=generated_from))
    sections = (
        _who_signs(state),
        *(
            ReceiptSection(item.heading, tuple(item.lines))
            for item in summary
            if item.heading not in NOT_SECTIONS
        ),
    )
    return ReceiptData(
        practice_name=practice.name,
        practice_contact=_contact_line(practice),
        client_name=client.full_name if client else "",
        reference=ack.id,
        policy_title=policy.title,
        policy_version=ack.policy_version,
        policy_hash=ack.policy_hash,
        policy_published_at=policy.published_at,
        sections=sections,
        signatures=signatures,
        countersignature_pending=state.countersignature_pending,
        generated_from=generated_from,
        footer_lines=_footer(practice, state),
    )
