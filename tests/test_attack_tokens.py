"""Signed links and staff sign-in tokens under attack: the wrong purpose, expired, tampered,
replayed; and rotating the secret keys. Each refusal is a friendly page, never a trace."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from conftest import SECRET, _settings
from helpers import (
    csrf_token,
    hidden,
    invite,
    make_staff,
    open_link,
    post_form,
    publish_default,
    staff_sign_in,
)
from httpx2 import Response
from itsdangerous.timed import TimestampSigner
from sqlalchemy import update
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portal import invitations
from portal.app import create_app
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import ClientSession, Enrollment, Practice
from portal.runtime import Runtime
from portal.staff.models import StaffAccount
from portal.tokens import Purpose

CANT_OPEN = "We couldn't open this link"
EXPIRED = "This link has expired"
USED = "This link has already been used"
STAFF_AGAIN = "That took too long, or too many codes were wrong. Please sign in again."


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[-1]


def assert_friendly(response: Response, status: int, wording: str, where: str = "") -> None:
    assert response.status_code == status, f"{where}: {response.status_code}"
    assert response.headers["content-type"].startswith("text/html"), where
    assert wording in response.text, where
    for leak in ("Traceback", "itsdangerous", "BadSignature", "SignatureExpired"):
        assert leak not in response.text, where
    assert "portal_client=" not in response.headers.get("set-cookie", ""), where


@contextlib.contextmanager
def signed_ago(seconds: int) -> Iterator[None]:
    """Sign as if it were `seconds` ago (a link that has sat in an inbox that long)."""
    with pytest.MonkeyPatch.context() as patch:
        then = int(time.time()) - seconds
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: then)
        yield


def sessions(rt: Runtime) -> int:
    with transaction(rt.engine, read_only=True) as db:
        return len(db.exec(select(ClientSession)).all())


def staff_with_totp(rt: Runtime) -> tuple[str, str]:
    email = make_staff(rt, "therapist")
    secret = pyotp.random_base32()
    with transaction(rt.engine) as db:
        db.execute(update(StaffAccount).values(totp_secret=secret))
    return email, secret


def totp_token(browser: TestClient, email: str) -> str:
    page = staff_sign_in(browser, email)
    assert page.status_code == 200 and "6-digit code" in page.text
    return hidden(page.text, "token")


def test_a_token_for_one_purpose_opens_nothing_else(
    client: TestClient, rt: Runtime, app: Starlette
) -> None:
    publish_default(rt)
    enrollment, invitation = invite(rt)
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        resume = invitations.resume_link(rt.services, row)
    email, _ = staff_with_totp(rt)
    staff_browser = TestClient(app, follow_redirects=False)
    code_token = totp_token(staff_browser, email)
    device = rt.tokens.sign(Purpose.STAFF_DEVICE, {"a": ["x"]})
    before = sessions(rt)
    for token, where in [
        (token_of(resume), "/i/"),
        (code_token, "/i/"),
        (device, "/i/"),
        (token_of(invitation), "/r/"),
        (code_token, "/r/"),
        (device, "/r/"),
    ]:
        assert_friendly(client.get(where + token), 404, CANT_OPEN, where)
        assert_friendly(post_form(client, where + token, {}), 404, CANT_OPEN, where)
    for token in [token_of(invitation), token_of(resume), device]:
        refused = post_form(staff_browser, "/staff/login/code", {"token": token, "code": "1"})
        assert_friendly(refused, 401, STAFF_AGAIN, "login code")
        assert "portal_staff=" not in refused.headers.get("set-cookie", "")
    assert sessions(rt) == before
    # The links themselves still work for what they are.
    assert open_link(client, invitation).status_code == 303


def test_expired_links_and_codes_are_refused(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    fifteen_days = 15 * 86400
    with transaction(rt.engine) as db, signed_ago(fifteen_days):
        practice = db.get(Practice, 1)
        assert practice is not None
        enrollment, invitation = invitations.invite(
            db,
            rt.services,
            practice,
            full_name="Jordan Rivers",
            email="jordan@example.com",
            actor=Actor("staff", "test"),
            meta=RequestMeta.none(),
            now=utcnow() - timedelta(seconds=fifteen_days),
        )
    with transaction(rt.engine, read_only=True) as db, signed_ago(31 * 86400):
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        resume = invitations.resume_link(rt.services, row)
    for link in [invitation, resume]:
        assert_friendly(client.get(path_of(link)), 410, EXPIRED, link)
        assert_friendly(post_form(client, path_of(link), {}), 410, EXPIRED, link)
        assert '<a class="button" href="/link">' in client.get(path_of(link)).text
    assert sessions(rt) == 0

    email, secret = staff_with_totp(rt)
    with transaction(rt.engine, read_only=True) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.email == email)).one()
    with signed_ago(6 * 60):  # the code step waits 5 minutes
        stale = rt.tokens.sign(Purpose.STAFF_TOTP, {"a": account.id, "s": None})
    code = pyotp.TOTP(secret).now()
    refused = post_form(client, "/staff/login/code", {"token": stale, "code": code})
    assert_friendly(refused, 401, STAFF_AGAIN, "stale code token")


def flips(token: str) -> Iterator[str]:
    """The token with one character changed, at every position that carries whole bits (a
    segment's last base64 character may carry padding bits that decode the same)."""
    for i, char in enumerate(token):
        if char == "." or i + 1 == len(token) or token[i + 1] == ".":
            continue
        yield token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]


def test_tampered_tokens_are_refused(client: TestClient, rt: Runtime, app: Starlette) -> None:
    publish_default(rt)
    enrollment, invitation = invite(rt)
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        resume = invitations.resume_link(rt.services, row)
    tried = 0
    for link in [invitation, resume]:
        prefix, token = path_of(link).rsplit("/", 1)
        for tampered in flips(token):
            assert_friendly(client.get(f"{prefix}/{tampered}"), 404, CANT_OPEN, tampered)
            tried += 1
        assert_friendly(post_form(client, f"{prefix}/{tampered}", {}), 404, CANT_OPEN, "post")
    assert tried > 100
    email, secret = staff_with_totp(rt)
    staff_browser = TestClient(app, follow_redirects=False)
    token = totp_token(staff_browser, email)
    code = pyotp.TOTP(secret).now()
    for tampered in list(flips(token))[::7]:
        refused = post_form(staff_browser, "/staff/login/code", {"token": tampered, "code": code})
        assert_friendly(refused, 401, STAFF_AGAIN, "tampered code token")
    assert sessions(rt) == 0
    # Untampered, both still work.
    assert open_link(client, invitation).status_code == 303
    ok = post_form(staff_browser, "/staff/login/code", {"token": token, "code": code})
    assert ok.status_code == 303


def test_replayed_links_and_codes_are_refused(
    client: TestClient, rt: Runtime, app: Starlette
) -> None:
    publish_default(rt)
    enrollment, invitation = invite(rt)
    assert open_link(client, invitation).status_code == 303
    # Someone who read the link later (a forwarded email, a shared inbox) gets nowhere.
    stranger = TestClient(app, follow_redirects=False)
    assert_friendly(stranger.get(path_of(invitation)), 410, USED, "replayed GET")
    assert_friendly(post_form(stranger, path_of(invitation), {}), 410, USED, "replayed POST")
    assert sessions(rt) == 1
    # A resume link is reusable until a newer one is sent, which retires it.
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, enrollment.id)
        assert row is not None
        older = invitations.resume_link(rt.services, row)
    assert post_form(client, "/onboarding/later", {}).status_code == 200  # emails a new one
    assert_friendly(post_form(stranger, path_of(older), {}), 404, CANT_OPEN, "retired resume")
    assert sessions(rt) == 1

    # A second-factor token, used once, is spent even with a fresh code.
    email, secret = staff_with_totp(rt)
    staff_browser = TestClient(app, follow_redirects=False)
    token = totp_token(staff_browser, email)
    now = utcnow().timestamp()
    first = post_form(
        staff_browser, "/staff/login/code", {"token": token, "code": pyotp.TOTP(secret).at(now)}
    )
    assert first.status_code == 303
    attacker = TestClient(app, follow_redirects=False)
    later_code = pyotp.TOTP(secret).at(now + 30)
    replay = post_form(attacker, "/staff/login/code", {"token": token, "code": later_code})
    assert_friendly(replay, 401, STAFF_AGAIN, "replayed code token")
    assert "portal_staff=" not in replay.headers.get("set-cookie", "")


NEW = "rotated-secret-key-" + "n" * 40


def app_with_keys(rt: Runtime, keys: str) -> Starlette:
    """The same practice and database, restarted with PORTAL_SECRET_KEYS set to `keys`."""
    settings = _settings(
        rt.settings.database_url, smtp_port=rt.settings.smtp_port, secret_keys=keys
    )
    assert settings.key_list == keys.split(",")
    return create_app(settings)


def test_rotating_keys_keeps_outstanding_links_until_they_expire(rt: Runtime) -> None:
    publish_default(rt)
    # Links sent under the old key: one fresh, one about to expire, and a client mid-way.
    _, invitation = invite(rt, name="Jordan Rivers", email="jordan@example.com")
    with transaction(rt.engine) as db:
        ageing = invitations.invite(
            db,
            rt.services,
            db.get(Practice, 1),  # type: ignore[arg-type]
            full_name="Sam Okafor",
            email="sam@example.com",
            actor=Actor("staff", "test"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )[0]
        with signed_ago(13 * 86400):
            ageing_link = invitations.invite(
                db,
                rt.services,
                db.get(Practice, 1),  # type: ignore[arg-type]
                full_name="Riley Demo",
                email="riley@example.com",
                actor=Actor("staff", "test"),
                meta=RequestMeta.none(),
                now=utcnow(),
            )[1]
    with transaction(rt.engine, read_only=True) as db:
        row = db.get(Enrollment, ageing.id)
        assert row is not None
        resume = invitations.resume_link(rt.services, row)

    rotated = app_with_keys(rt, f"{NEW},{SECRET}")  # the new key prepended
    with TestClient(rotated, follow_redirects=False) as browser:
        assert browser.get(path_of(ageing_link)).status_code == 200
        assert open_link(browser, invitation).status_code == 303
        assert open_link(browser, resume).status_code == 303
        fresh = _new_invitation(rotated)
        assert browser.get(path_of(fresh)).status_code == 200
    # The old key still verifies, and links signed now use the new one: the old-only app
    # can't read them.
    with TestClient(app_with_keys(rt, SECRET), follow_redirects=False) as old_only:
        assert_friendly(old_only.get(path_of(fresh)), 404, CANT_OPEN, "new key, old app")

    # Two days on, the ageing link has expired even though its key is still listed.
    with pytest.MonkeyPatch.context() as patch:
        later = time.time() + 2 * 86400
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(later))
        with TestClient(rotated, follow_redirects=False) as browser:
            assert_friendly(browser.get(path_of(ageing_link)), 410, EXPIRED, "ageing link")

    # The old key dropped: what it signed stops working; what the new key signed still works.
    dropped = app_with_keys(rt, NEW)
    with TestClient(dropped, follow_redirects=False) as browser:
        assert_friendly(browser.get(path_of(resume)), 404, CANT_OPEN, "resume, key dropped")
        assert_friendly(browser.get(path_of(ageing_link)), 404, CANT_OPEN, "old key dropped")
        assert open_link(browser, fresh).status_code == 303
        assert csrf_token(browser)
    for application in (rotated, dropped):
        application.state.runtime.engine.dispose()


def _new_invitation(app: Starlette) -> str:
    other: Runtime = app.state.runtime
    return invite(other, name="Casey Brooks", email="casey@example.com")[1]
