"""The board's and the campaigns' batch lookup of signed acknowledgements agrees with the
one-by-one lookup the client's receipt uses."""

from __future__ import annotations

from helpers import onboard, publish_default
from section_scenarios import countersign

from portal.db import transaction, utcnow
from portal.runtime import Runtime
from portal_signature import service


def test_latest_signed_summaries_match_latest_signed(rt: Runtime) -> None:
    publish_default(rt)
    enrollments = [
        onboard(rt, "Avery Chen", "avery@example.com"),  # signed, countersignature pending
        onboard(rt, "Sam Okafor", "sam@example.com", steps=2),  # no acknowledgement yet
        onboard(rt, "Riley Moreno", "riley@example.com", steps=0),  # invited only
        onboard(rt, "Quinn Ellis", "quinn@example.com"),  # signed, then countersigned
    ]
    ids = [e.id for e in enrollments]
    countersign(rt, ids[3], "Dr. Maya Patel", utcnow())
    with transaction(rt.engine, read_only=True) as db:
        batch = service.latest_signed_summaries(db, ids)
        one_by_one = {i: service.latest_signed(db, i) for i in ids}
    assert set(batch) == {ids[0], ids[3]}
    assert batch[ids[0]].countersignature_pending
    assert not batch[ids[3]].countersignature_pending
    for enrollment_id, state in one_by_one.items():
        found = batch.get(enrollment_id)
        if state is None:
            assert found is None
        else:
            assert found is not None
            assert found.ack_id == state.ack.id
            assert found.policy_version == state.ack.policy_version
            assert found.countersignature_pending == state.countersignature_pending
