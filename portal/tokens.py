"""Signed links. One salt per purpose and a max age; single use is enforced in the database."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Purpose(StrEnum):
    INVITATION = "portal.invitation.v1"
    RESUME = "portal.resume.v1"
    STAFF_TOTP = "portal.staff-totp.v1"  # password checked, second factor pending
    STAFF_DEVICE = "portal.staff-device.v1"  # this browser has signed in to these accounts


class TokenError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid"


class Tokens:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is required")
        # itsdangerous signs with the last key and accepts all; our setting lists the newest first.
        self._keys = list(reversed(keys))

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys, salt=purpose.value)

    def sign(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        token = self._serializer(purpose).dumps(payload)
        return token if isinstance(token, str) else token.decode()

    def verify(self, purpose: Purpose, token: str, max_age_seconds: int) -> dict[str, Any]:
        if len(token) > 512:
            raise TokenError("invalid")
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age_seconds)
        except SignatureExpired as exc:
            raise TokenError("expired") from exc
        except BadSignature as exc:
            raise TokenError("invalid") from exc
        if not isinstance(data, dict):
            raise TokenError("invalid")
        return data
