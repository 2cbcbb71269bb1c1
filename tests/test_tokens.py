from __future__ import annotations

import time

import pytest

from portal.tokens import Purpose, TokenError, Tokens

OLD, NEW = "o" * 40, "n" * 40


def test_round_trip() -> None:
    tokens = Tokens([NEW])
    token = tokens.sign(Purpose.INVITATION, {"i": "abc"})
    assert tokens.verify(Purpose.INVITATION, token, 60) == {"i": "abc"}


def test_purposes_do_not_mix() -> None:
    tokens = Tokens([NEW])
    token = tokens.sign(Purpose.RESUME, {"e": "abc"})
    with pytest.raises(TokenError) as caught:
        tokens.verify(Purpose.INVITATION, token, 60)
    assert caught.value.reason == "invalid"


def test_tampered_token_is_invalid() -> None:
    tokens = Tokens([NEW])
    token = tokens.sign(Purpose.INVITATION, {"i": "abc"})
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(TokenError, match="invalid"):
        tokens.verify(Purpose.INVITATION, tampered, 60)


def test_expired_token_says_so() -> None:
    tokens = Tokens([NEW])
    token = tokens.sign(Purpose.INVITATION, {"i": "abc"})
    time.sleep(1.1)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(Purpose.INVITATION, token, 0)


def test_rotation_keeps_outstanding_links_valid() -> None:
    token = Tokens([OLD]).sign(Purpose.INVITATION, {"i": "abc"})
    rotated = Tokens([NEW, OLD])  # the new key first: it signs; the old still verifies
    assert rotated.verify(Purpose.INVITATION, token, 60) == {"i": "abc"}
    fresh = rotated.sign(Purpose.INVITATION, {"i": "x"})
    with pytest.raises(TokenError):
        Tokens([OLD]).verify(Purpose.INVITATION, fresh, 60)


def test_oversized_token_is_refused_without_work() -> None:
    with pytest.raises(TokenError):
        Tokens([NEW]).verify(Purpose.INVITATION, "x" * 10_000, 60)
