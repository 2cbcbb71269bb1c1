"""Time-based one-time codes (RFC 6238) with pyotp; each code is accepted once."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

ISSUER = "Intake portal"
STEP_SECONDS = 30


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, practice_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=practice_name or ISSUER)


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (now, or one step either side for clock drift), if it
    is valid and newer than `last_step`; else None."""
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
