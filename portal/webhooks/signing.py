"""Webhook signatures: HMAC-SHA256 over "{timestamp}.{raw body}" with the endpoint's secret.

Sent as ``Portal-Signature: t=<unix seconds>,v1=<hex>``. Right after a secret rotation the
header carries one ``v1`` per live secret (new first), so a receiver that still holds the old
secret keeps verifying until it is updated. The timestamp is signed too: a receiver rejects a
signature older than `TOLERANCE`, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

HEADER = "Portal-Signature"
EVENT_ID_HEADER = "Portal-Event-Id"
SCHEME = "v1"
TOLERANCE = 300  # seconds


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_value(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets]
    return ",".join(parts)


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE) -> bool:
    """The receiver's check (documented in the README; the tests use it): a `v1` made with
    `secret` over this exact body, with a timestamp no more than `tolerance` seconds away."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
