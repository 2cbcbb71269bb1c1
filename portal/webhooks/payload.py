"""What a webhook POST carries: a thin list of changed clients, never names or contact details.

The body depends only on the batch (no send time in it), so a retried delivery is byte-for-byte
the same request with the same event id; the time is in the signature header. Each change has
the same shape as an entry of /api/v1/changes, so a receiver can handle push and pull alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from portal import changes
from portal.api import feed
from portal.changes import ClientChange, Position

EVENT_TYPE = "clients.changed"


@dataclass(frozen=True)
class Batch:
    event_id: str
    end: Position  # the cursor once the receiver has it
    body: bytes
    count: int


def event_id(endpoint_id: str, end: Position) -> str:
    return f"{endpoint_id}:{end.encode()}"


def build(endpoint_id: str, rows: list[ClientChange]) -> Batch:
    """The batch for `rows` (in log order, at least one)."""
    end = changes.position_of(rows[-1])
    identifier = event_id(endpoint_id, end)
    document = {
        "id": identifier,
        "type": EVENT_TYPE,
        "next_cursor": end.encode(),
        "changes": [feed.entry(row) for row in rows],
    }
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return Batch(event_id=identifier, end=end, body=body, count=len(rows))
