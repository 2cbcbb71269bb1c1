"""The server killed (SIGKILL) in the middle of submissions: nothing half-written, and every
client resumes where they were.

`portal serve` runs in a subprocess; clients submit contact preferences, choose who signs and
sign (two signers each), concurrently, until the server is killed with requests in flight. A new
server then starts on the same database. SQL checks that every record is whole (an
acknowledgement with its signer slots, a signature with its acknowledgement and slot, a contact
preference chained to the one it supersedes), that audit events and change-log rows match
committed records one for one, and that every acknowledged submission is there. Then each
client carries on with their session cookie and finishes. SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
from helpers import invite, publish_default
from http_journey import (
    CONTACT,
    SIGN,
    TESTIMONIAL,
    browser,
    finish_journey,
    link_path,
    next_signer,
    open_link,
    open_step,
    post_step,
    submit,
)
from processes import PortalProcess, running, start_server, wait_ready
from sqlmodel import Session, col, select

from portal.audit import AuditEvent
from portal.changes import ClientChange
from portal.db import transaction
from portal.models import Enrollment, EnrollmentStatus
from portal.runtime import Runtime
from portal.settings import Settings
from portal_contact.models import ContactPreference
from portal_signature.models import Acknowledgement, Party, Role, Signature, SignerSlot

CLIENTS = 8
KILL_AFTER = 30  # acknowledged submissions before the kill; more are in flight by then


def names(i: int) -> tuple[str, str]:
    letters = f"{chr(ord('A') + i // 26)}{chr(ord('a') + i % 26)}"
    return f"Client {letters}ton", f"Partner {letters}ton"


@dataclass
class Acked:
    """What the server acknowledged to one client before it died."""

    numbers: list[str] = field(default_factory=list)  # contact numbers saved (303)
    signers: list[str] = field(default_factory=list)  # signatures saved


class Load:
    def __init__(self, tabs: list[httpx.Client]) -> None:
        self.tabs = tabs
        self.acked = [Acked() for _ in tabs]
        self.count = 0
        self.lock = threading.Lock()
        self.acknowledged = threading.Condition()
        self.cut_off = 0  # clients whose request was in flight when the server died
        self.errors: list[Exception] = []

    def _ack(self) -> None:
        with self.acknowledged:
            self.count += 1
            self.acknowledged.notify_all()

    def run(self, i: int) -> None:
        tab, acked = self.tabs[i], self.acked[i]
        partner = names(i)[1]
        try:
            for n in range(1, 100):
                number = f"(206) 555-01{n:02d}"
                saved = submit(tab, "contact", {**CONTACT, "phone_0_number": number})
                assert saved.status_code == 303, saved.text[:300]
                acked.numbers.append(f"55501{n:02d}")
                self._ack()
                form, page = open_step(tab, "sign")
                if form.get("phase") == "who":
                    who = {"party": Party.ADULTS, "adult_1_name": partner}
                    assert post_step(tab, "sign", form, who).status_code == 200
                    self._ack()
                elif form.get("phase") == "sign":
                    signer = next_signer(page)
                    signed = post_step(tab, "sign", form, {**SIGN, "typed_name": signer})
                    assert signed.status_code in (200, 303), signed.text[:300]
                    acked.signers.append(signer)
                    self._ack()
        except httpx.TransportError:  # the server died under this request
            with self.lock:
                self.cut_off += 1
        except Exception as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)


def start_clients(rt: Runtime, base: str) -> list[tuple[Enrollment, httpx.Client]]:
    """Clients who followed their link and are at the contact step, with two signers to come."""

    def start(i: int) -> tuple[Enrollment, httpx.Client]:
        name, _ = names(i)
        enrollment, link = invite(rt, name=name, email=f"client{i}@example.com")
        tab = browser(base)
        assert open_link(tab, link_path(link)).status_code == 303
        assert submit(tab, "policy", {}).status_code == 303
        assert submit(tab, "contact", CONTACT).status_code == 303
        assert submit(tab, "testimonial", TESTIMONIAL).status_code == 303
        return enrollment, tab

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(start, range(CLIENTS)))


def contact_rows(db: Session, enrollment_id: str) -> list[ContactPreference]:
    query = select(ContactPreference).where(ContactPreference.enrollment_id == enrollment_id)
    return list(db.exec(query))


def signed_names(db: Session, enrollment_id: str) -> list[str]:
    query = (
        select(Signature.typed_name)
        .join(Acknowledgement, col(Acknowledgement.id) == Signature.acknowledgement_id)
        .where(Acknowledgement.enrollment_id == enrollment_id)
    )
    return list(db.exec(query))


def audit_subjects(db: Session, action: str) -> Counter[str]:
    query = select(AuditEvent.subject_id).where(AuditEvent.action == action)
    return Counter(db.exec(query))


def changes_naming(db: Session, table: str) -> Counter[str]:
    """Change-log rows per client that name `table`."""
    rows = db.exec(select(ClientChange.client_id, ClientChange.tables))
    return Counter(client for client, tables in rows if table in tables.split(","))


def check_whole(db: Session) -> dict[str, int]:
    """Every record complete and matched by its audit events and change-log rows."""
    acks = db.exec(select(Acknowledgement)).all()
    slots = db.exec(select(SignerSlot)).all()
    signatures = db.exec(select(Signature)).all()
    preferences = db.exec(select(ContactPreference).order_by(col(ContactPreference.revision))).all()
    ack_by_id = {ack.id: ack for ack in acks}
    slot_by_id = {slot.id: slot for slot in slots}

    # An acknowledgement has its whole plan of signers: client side, then the therapist.
    slots_of: defaultdict[str, list[SignerSlot]] = defaultdict(list)
    for slot in slots:
        slots_of[slot.acknowledgement_id].append(slot)
    assert set(slots_of) <= set(ack_by_id)
    for ack in acks:
        own = sorted(slots_of[ack.id], key=lambda s: s.position)
        assert [s.position for s in own] == list(range(1, len(own) + 1)), ack.id
        assert [s.role for s in own] == [Role.CLIENT, Role.ADULT, Role.THERAPIST], ack.id

    # A signature sits on a slot of its own acknowledgement.
    for signature in signatures:
        slot = slot_by_id[signature.slot_id]
        assert slot.acknowledgement_id == signature.acknowledgement_id
        assert signature.typed_name and signature.policy_hash

    # Contact preferences: revisions 1..n per enrollment, each superseding the one before.
    chains: defaultdict[str, list[ContactPreference]] = defaultdict(list)
    for row in preferences:
        chains[row.enrollment_id].append(row)
    for chain in chains.values():
        assert [row.revision for row in chain] == list(range(1, len(chain) + 1))
        assert [row.supersedes_id for row in chain] == [None, *(row.id for row in chain[:-1])]
        assert all(row.choices.get("phones") for row in chain)

    # One audit event per committed record, and none for a record that is not there.
    assert audit_subjects(db, "contact_preferences.recorded") == Counter(
        row.id for row in preferences
    )
    created = audit_subjects(db, "acknowledgement.created")
    assert created == Counter(ack.id for ack in acks)
    assert audit_subjects(db, "acknowledgement.signed") == Counter(
        s.acknowledgement_id for s in signatures
    )
    complete = [e for e in db.exec(select(Enrollment)) if e.status == EnrollmentStatus.COMPLETE]
    assert audit_subjects(db, "onboarding.completed") == Counter(e.id for e in complete)

    # One change-log row per committed transaction that wrote the record.
    assert changes_naming(db, "contact_preference") == Counter(r.client_id for r in preferences)
    assert changes_naming(db, "acknowledgement") == Counter(a.client_id for a in acks)
    assert changes_naming(db, "signature") == Counter(
        ack_by_id[s.acknowledgement_id].client_id for s in signatures
    )
    return {
        "acknowledgements": len(acks),
        "signatures": len(signatures),
        "contact preferences": len(preferences),
        "complete": len(complete),
    }


def test_sigkill_mid_submissions_leaves_nothing_half_written(
    settings: Settings, rt: Runtime, tmp_path: Path
) -> None:
    publish_default(rt)
    # The server that takes over is launched now, so its start-up overlaps the load (it serves
    # nobody until the first one is dead).
    second = start_server(settings, tmp_path, "serve-after", wait=False)
    with running(second):
        first = start_server(settings, tmp_path, "serve-before")
        with running(first):
            assert first.base_url is not None
            clients = start_clients(rt, first.base_url)
            load = Load([tab for _, tab in clients])
            threads = [threading.Thread(target=load.run, args=(i,)) for i in range(CLIENTS)]
            for thread in threads:
                thread.start()
            with load.acknowledged:
                reached = load.acknowledged.wait_for(lambda: load.count >= KILL_AFTER, 30)
            first.kill()
            for thread in threads:
                thread.join(timeout=30)
        assert reached and not load.errors, load.errors
        wait_ready(second)
        resume_after_kill(rt, second, clients, load)


def resume_after_kill(
    rt: Runtime, server: PortalProcess, clients: list[tuple[Enrollment, httpx.Client]], load: Load
) -> None:
    with transaction(rt.engine, read_only=True) as db:
        after_kill = check_whole(db)
        # Everything the dead server acknowledged was committed.
        for (enrollment, _), done in zip(clients, load.acked, strict=True):
            saved = str([row.choices for row in contact_rows(db, enrollment.id)])
            assert all(number in saved for number in done.numbers), done
            assert set(done.signers) <= set(signed_names(db, enrollment.id)), done
    print(
        f"\nSIGKILL after {load.count} acknowledged submissions, {load.cut_off} clients cut off "
        f"mid-request; committed then: {after_kill}"
    )
    assert load.cut_off >= 1  # the kill really hit requests in flight

    # Each client carries on with their session, on the new server, to the end.
    assert server.base_url is not None
    for i, (_, tab) in enumerate(clients):
        with closing(tab), browser(server.base_url, tab.cookies) as resumed:
            finish_journey(resumed, partner=names(i)[1])
    with transaction(rt.engine, read_only=True) as db:
        final = check_whole(db)
    assert final["complete"] == CLIENTS
    assert final["signatures"] == 2 * CLIENTS
