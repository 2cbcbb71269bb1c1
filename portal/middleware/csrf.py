"""CSRF protection for every state-changing request, as pure ASGI middleware.

Double-submit: a random token lives in an HttpOnly cookie and must come back in the form field
`csrf_token` (or the `X-CSRF-Token` header that htmx sends). The body is read here, checked and
replayed to the app, with a size cap so a huge body is refused before anything parses it.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Where no form is ever shown or accepted, so neither a token nor its cookie is needed: the API
# (bearer keys, not cookies), static files, and the probes a load balancer calls many times a
# second.
EXEMPT_PREFIXES = ("/api/", "/fhir/", "/static/")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"
MAX_FIELDS = 500


class BodyTooLarge(Exception):
    pass


class UnreadableForm(Exception):
    pass


class CSRFMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        secure: bool,
        max_body: int,
        max_upload: int,
        exempt_prefixes: tuple[str, ...] = EXEMPT_PREFIXES,
        exempt_paths: frozenset[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.secure = secure
        self.max_body = max_body
        self.max_upload = max_upload
        self.exempt_prefixes = exempt_prefixes
        self.exempt_paths = exempt_paths
        # The __Host- prefix pins the cookie to this host over https (no subdomain injection).
        self.cookie_name = "__Host-portal_csrf" if secure else "portal_csrf"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self.exempt_paths
            or scope["path"].startswith(self.exempt_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        cookie_token = conn.cookies.get(self.cookie_name, "")
        token = cookie_token if _well_formed(cookie_token) else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        set_cookie = token != cookie_token

        if scope["method"] not in SAFE_METHODS:
            try:
                multipart = conn.headers.get("content-type", "").startswith("multipart/form-data")
                body = await _read_body(receive, self.max_upload if multipart else self.max_body)
            except BodyTooLarge:
                await _refuse(scope, receive, send, 413, "That form was too large to accept.")
                return
            try:
                submitted = conn.headers.get(HEADER) or (
                    await _multipart_token(scope, body) if multipart else _form_token(conn, body)
                )
            except UnreadableForm:
                await _refuse(
                    scope,
                    receive,
                    send,
                    400,
                    "We couldn't read that form: it had too many fields. Nothing was changed.",
                )
                return
            if not (cookie_token and submitted and hmac.compare_digest(submitted, cookie_token)):
                await _refuse(
                    scope,
                    receive,
                    send,
                    403,
                    "This form has expired or was sent from somewhere else. Go back, reload the "
                    "page, and send it again.",
                )
                return
            receive = _replay(body)

        async def send_with_cookie(message: Message) -> None:
            if set_cookie and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                attributes = "Path=/; HttpOnly; SameSite=Lax"
                if self.secure:
                    attributes += "; Secure"
                headers.append("Set-Cookie", f"{self.cookie_name}={token}; {attributes}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _well_formed(token: str) -> bool:
    return 40 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()


def _form_token(conn: HTTPConnection, body: bytes) -> str:
    content_type = conn.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return ""
    try:
        values = parse_qs(body.decode("latin-1"), max_num_fields=MAX_FIELDS).get(FIELD, [])
    except ValueError as exc:  # more fields than any of our forms has
        raise UnreadableForm from exc
    return values[0] if values else ""


async def _multipart_token(scope: Scope, body: bytes) -> str:
    """The token field of a multipart form (file uploads), parsed by Starlette's own parser."""
    request = Request(scope, _replay(body))
    try:
        form = await request.form(max_fields=MAX_FIELDS)
    except Exception as exc:  # malformed multipart: unreadable, not a server error
        raise UnreadableForm from exc
    try:
        value = form.get(FIELD)
        return value if isinstance(value, str) else ""
    finally:
        await form.close()


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    response: Response
    headers = HTTPConnection(scope).headers
    if headers.get("hx-request") == "true":
        # htmx does not show error pages; have it load the page afresh (with a new token).
        response = PlainTextResponse(text, status_code=status, headers={"HX-Refresh": "true"})
    elif "text/html" in headers.get("accept", ""):
        response = HTMLResponse(_page(text), status_code=status)
    else:
        response = PlainTextResponse(text, status_code=status)
    await response(scope, receive, send)


def _page(text: str) -> str:
    # Deliberately template-free: this runs before the app and its templates.
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>Please try again</title><link rel=stylesheet href='/static/portal.css'></head>"
        f"<body><main class=page><h1>Please try again</h1><p>{text}</p></main></body></html>"
    )
