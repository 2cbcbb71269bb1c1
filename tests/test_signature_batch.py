"""The board's batch lookup of signed acknowledgements agrees with the one-by-one lookup."""

from __future__ import annotations

from helpers import onboard, publish_default

from portal.db import transaction
from portal.runtime import Runtime
from portal_signature import service


def test_latest_signed_by_enrollment_matches_latest_signed(rt: Runtime) -> None:
    publish_default(rt)
    enrollments = [
        onboard(rt, "Avery Chen", "avery@example.com"),  # signed
        onboard(rt, "Sam Okafor", "sam@example.com", steps=2),  # no acknowledgement yet
        onboard(rt, "Riley Moreno", "riley@example.com", steps=0),  # invited only
        onboard(rt, "Quinn Ellis", "quinn@example.com"),  # signed
    ]
    ids = [e.id for e in enrollments]
    with transaction(rt.engine, read_only=True) as db:
        batch = service.latest_signed_by_enrollment(db, ids)
        one_by_one = {i: service.latest_signed(db, i) for i in ids}
    assert set(batch) == {ids[0], ids[3]}
    for enrollment_id, state in one_by_one.items():
        found = batch.get(enrollment_id)
        if state is None:
            assert found is None
        else:
            assert found is not None
            assert found.ack.id == state.ack.id
            assert [s.id for s in found.slots] == [s.id for s in state.slots]
            assert set(found.signed) == set(state.signed)
