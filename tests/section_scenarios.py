"""Clients with the records the API sections and FHIR mappings must cover, built through the
plugins' own services (as the wizard and the staff side write them).

- individual: the whole journey online, countersigned by the therapist.
- adults: who signs changed before anyone signed (the first acknowledgement superseded), then
  both adults signed; the countersignature is pending.
- minor: a guardian ("other: grandmother") has not signed yet; a paper acknowledgement and a
  policy discussion were recorded by staff.
- withdrawn: said yes to testimonials, then withdrew; changed their contact rules (revision 2:
  a work phone with no voicemail, and email).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from helpers import make_staff, onboard, publish_default
from sqlmodel import Session, select

from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Enrollment, Practice
from portal.runtime import Runtime
from portal.staff.models import StaffAccount
from portal_contact import service as contact_service
from portal_contact.choices import ContactChoices, EmailChoice, PhoneChoice
from portal_contact.wording import EMAIL_WARNING_TEXT
from portal_policy import service as policy_service
from portal_policy.models import PolicyVersion
from portal_signature import discussion, esign, paper
from portal_signature import service as ack_service
from portal_signature.models import Party, Role
from portal_signature.parties import PlannedSigner, SignerPlan
from portal_testimonial import service as testimonial_service

META = RequestMeta.none()
ACTOR = Actor("staff", "test")
PDF = b"%PDF-1.4\n% a scanned acknowledgement\n%%EOF\n"


@dataclass(frozen=True)
class Population:
    individual: str  # client ids
    adults: str
    minor: str
    withdrawn: str
    therapist_name: str
    started: datetime  # every record was written after this

    def all(self) -> list[str]:
        return [self.individual, self.adults, self.minor, self.withdrawn]


def _context(db: Session, enrollment_id: str) -> tuple[Enrollment, PolicyVersion, Practice]:
    enrollment = db.get(Enrollment, enrollment_id)
    policy = policy_service.current(db)
    practice = db.get(Practice, 1)
    assert enrollment is not None and policy is not None and practice is not None
    return enrollment, policy, practice


def sign_all(
    db: Session, state: ack_service.AckState, names: dict[str, str], now: datetime
) -> ack_service.AckState:
    """Sign every slot whose role is in `names` (role -> typed name), a minute apart."""
    policy = policy_service.current(db)
    practice = db.get(Practice, 1)
    assert policy is not None and practice is not None
    for offset, slot in enumerate(state.slots):
        if slot.role in names:
            ack_service.sign(
                db,
                state,
                slot,
                policy,
                typed_name=slot.expected_name or names[slot.role],
                disclosure=esign.disclosure(practice),
                actor=ACTOR,
                meta=META,
                now=now + timedelta(minutes=offset),
            )
    return ack_service.load_state(db, state.ack)


def countersign(rt: Runtime, enrollment_id: str, therapist: str, now: datetime) -> None:
    with transaction(rt.engine) as db:
        state = ack_service.latest_signed(db, enrollment_id)
        assert state is not None
        sign_all(db, state, {Role.THERAPIST: therapist}, now)


def build(rt: Runtime) -> Population:
    started = utcnow()
    publish_default(rt)
    therapist_email = make_staff(rt, role="therapist", name="Dana Whitfield")
    with transaction(rt.engine) as db:
        therapist = db.exec(select(StaffAccount).where(StaffAccount.email == therapist_email)).one()

    individual = onboard(rt, "Jordan Avery", "jordan@example.com")
    countersign(rt, individual.id, therapist.name, utcnow() + timedelta(minutes=5))

    adults = onboard(rt, "Sam Lee", "sam@example.com", steps=3)
    minor = onboard(rt, "Casey Moss", "casey@example.com", steps=3)
    withdrawn = onboard(rt, "Riley Stone", "riley@example.com")
    now = utcnow()
    with transaction(rt.engine) as db:
        enrollment, policy, _ = _context(db, adults.id)
        me = PlannedSigner(Role.CLIENT, "Sam Lee")
        first = ack_service.create_acknowledgement(
            db,
            enrollment,
            policy,
            SignerPlan(Party.INDIVIDUAL, (me,)),
            supersedes=None,
            actor=ACTOR,
            meta=META,
            now=now,
        )
        both = SignerPlan(Party.ADULTS, (me, PlannedSigner(Role.ADULT, "Robin Lee")))
        state = ack_service.create_acknowledgement(
            db,
            enrollment,
            policy,
            both,
            supersedes=first.ack,
            actor=ACTOR,
            meta=META,
            now=now + timedelta(minutes=1),
        )
        sign_all(db, state, {Role.CLIENT: "", Role.ADULT: ""}, now + timedelta(minutes=2))

    with transaction(rt.engine) as db:
        enrollment, policy, _ = _context(db, minor.id)
        guardian = PlannedSigner(Role.GUARDIAN, "Morgan Moss", "other: grandmother")
        ack_service.create_acknowledgement(
            db,
            enrollment,
            policy,
            SignerPlan(Party.MINOR, (guardian,), minor_name="Casey Moss"),
            supersedes=None,
            actor=ACTOR,
            meta=META,
            now=now,
        )
        paper.record(
            db,
            enrollment,
            policy,
            signer_names=["Morgan Moss"],
            signed_on=date.today(),
            file_name="ack.pdf",
            content=PDF,
            content_type="application/pdf",
            staff_id=therapist.id,
            actor=ACTOR,
            meta=META,
            now=now + timedelta(minutes=3),
        )
        discussion.record(
            db,
            enrollment,
            policy,
            staff_id=therapist.id,
            discussed_on=date.today(),
            actor=ACTOR,
            meta=META,
            now=now + timedelta(minutes=4),
        )

    with transaction(rt.engine) as db:
        enrollment, _, _ = _context(db, withdrawn.id)
        testimonial_service.decide(
            db,
            enrollment,
            "initials",
            ["website", "print"],
            actor=ACTOR,
            meta=META,
            now=now + timedelta(minutes=1),
        )
    with transaction(rt.engine) as db:
        testimonial_service.record_withdrawal(
            db,
            withdrawn.id,
            source="staff",
            actor=ACTOR,
            via="in_person",
            meta=META,
            now=now + timedelta(minutes=2),
        )
        enrollment, _, _ = _context(db, withdrawn.id)
        choices = ContactChoices(
            phones=(PhoneChoice("+12065550177", "(206) 555-0177", "work", "none", 2),),
            email=EmailChoice("riley@example.com", 1),
            email_warning_accepted=True,
        )
        contact_service.record(
            db,
            enrollment,
            choices,
            EMAIL_WARNING_TEXT,
            actor=ACTOR,
            meta=META,
            now=now + timedelta(minutes=3),
        )
    return Population(
        individual=individual.client_id,
        adults=adults.client_id,
        minor=minor.client_id,
        withdrawn=withdrawn.client_id,
        therapist_name=therapist.name,
        started=started,
    )
