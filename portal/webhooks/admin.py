"""Creating, listing, disabling webhook endpoints and rotating their secrets, each audited."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portal import audit, changes
from portal.audit import Actor, RequestMeta
from portal.webhooks.models import NAME_MAX, URL_MAX, WebhookEndpoint

# How long the old secret keeps signing after a rotation, so the receiver can switch over.
ROTATION_GRACE = timedelta(hours=24)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class WebhookError(Exception):
    """An endpoint can't be created or changed as asked; the message says why, for a person."""


def clean_url(raw: str, *, allow_any_http: bool = False) -> str:
    """The endpoint's URL, or WebhookError naming the problem.

    https only (the body names clients and the signature alone does not hide it), except plain
    http to this machine for a local receiver; the demo allows any http URL."""
    url = (raw or "").strip()
    if not url:
        raise WebhookError("Give the URL the portal should POST to, e.g. https://ehr.example/hook.")
    if len(url) > URL_MAX:
        raise WebhookError(f"The URL is too long: at most {URL_MAX} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookError("The URL may not contain spaces or control characters.")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise WebhookError("The URL's port is not a valid port number.") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise WebhookError("The URL must start with https:// and name a host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookError(
            "Put no user name or password in the URL: requests are signed with the secret."
        )
    if parts.fragment:
        raise WebhookError("The URL may not have a #fragment.")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS and not allow_any_http:
        raise WebhookError(
            "The URL must use https:// (plain http:// is allowed only for localhost and 127.0.0.1)."
        )
    return url


def clean_name(raw: str | None, url: str) -> str:
    """The endpoint's name (it appears in the audit trail); by default the URL's host."""
    name = " ".join((raw or "").split()) or (urlsplit(url).hostname or "")
    if not name:
        raise WebhookError("Give the endpoint a name.")
    if len(name) > NAME_MAX:
        raise WebhookError(f"The name is too long: at most {NAME_MAX} characters.")
    if not _NAME_RE.match(name):
        raise WebhookError(
            "The name may use letters, digits, spaces, dots, dashes and underscores only."
        )
    return name


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def by_name(db: Session, name: str) -> WebhookEndpoint | None:
    clean = " ".join(name.split())
    return db.exec(select(WebhookEndpoint).where(WebhookEndpoint.name == clean)).first()


def all_endpoints(db: Session) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(
        col(WebhookEndpoint.created_at).desc(), WebhookEndpoint.id
    )
    return list(db.exec(query))


def create(
    db: Session,
    *,
    url: str,
    name: str | None,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
    allow_any_http: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned so it can be shown once).

    Delivery starts at the head of the change log (a change still committing comes in the first
    delivery, never lost): the receiver pulls what came before through the API, then the
    webhook tells it about every change that follows."""
    clean_link = clean_url(url, allow_any_http=allow_any_http)
    clean = clean_name(name, clean_link)
    if by_name(db, clean) is not None:
        raise WebhookError(
            f"A webhook named {clean!r} exists already (disabled ones too): choose another name."
        )
    start = changes.head(db)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        name=clean,
        url=clean_link,
        secret=secret,
        created_at=now,
        created_by=actor.label[:100],
        cursor_txid=start.txid,
        cursor_seq=start.seq,
        next_attempt_at=now,
    )
    db.add(endpoint)
    db.flush()
    audit.record(
        db, actor, "webhook.created", "webhook_endpoint", endpoint.id, meta,
        name=clean, host=urlsplit(clean_link).hostname,
    )  # fmt: skip
    return endpoint, secret


def disable(
    db: Session, endpoint: WebhookEndpoint, *, actor: Actor, meta: RequestMeta, now: datetime
) -> bool:
    """Stop deliveries to the endpoint (kept, never deleted); False when disabled already."""
    if endpoint.disabled_at is not None:
        return False
    endpoint.disabled_at = now
    db.add(endpoint)
    audit.record(
        db, actor, "webhook.disabled", "webhook_endpoint", endpoint.id, meta, name=endpoint.name
    )
    return True


def rotate_secret(
    db: Session, endpoint: WebhookEndpoint, *, actor: Actor, meta: RequestMeta, now: datetime
) -> str:
    """A new secret (returned to be shown once); the old one also signs for ROTATION_GRACE."""
    if endpoint.disabled_at is not None:
        raise WebhookError("That webhook is disabled: add a new one instead.")
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_GRACE
    endpoint.secret = secret
    db.add(endpoint)
    audit.record(
        db, actor, "webhook.secret_rotated", "webhook_endpoint", endpoint.id, meta,
        name=endpoint.name, old_secret_valid_until=endpoint.previous_secret_until.isoformat(),
    )  # fmt: skip
    return secret


def retry_now(
    db: Session, endpoint: WebhookEndpoint, *, actor: Actor, meta: RequestMeta, now: datetime
) -> bool:
    """Make a failing endpoint due now (its receiver was fixed); False when it is not failing.
    The attempt count is kept, so a receiver still down keeps its backoff."""
    if endpoint.disabled_at is not None or endpoint.failing_since is None:
        return False
    endpoint.next_attempt_at = now
    db.add(endpoint)
    audit.record(
        db, actor, "webhook.retry_requested", "webhook_endpoint", endpoint.id, meta,
        name=endpoint.name,
    )  # fmt: skip
    return True


def status(endpoint: WebhookEndpoint) -> str:
    """One line for an admin: disabled, failing (since when, why, next try) or up to date."""
    if endpoint.disabled_at is not None:
        return f"disabled {endpoint.disabled_at:%Y-%m-%d %H:%M}"
    if endpoint.failing_since is not None:
        return (
            f"FAILING since {endpoint.failing_since:%Y-%m-%d %H:%M} "
            f"({endpoint.attempts} attempts, last: {endpoint.last_error or 'unknown'}; "
            f"next try {endpoint.next_attempt_at:%Y-%m-%d %H:%M:%S})"
        )
    if endpoint.last_success_at is not None:
        return f"ok, last delivery {endpoint.last_success_at:%Y-%m-%d %H:%M}"
    return "ok, nothing delivered yet"
