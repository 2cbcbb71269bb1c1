"""Access log without anything identifying: tokens in paths are masked, no query strings."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("portal.access")

# Path prefixes whose next segment is a credential.
TOKEN_PREFIXES = ("/i/", "/r/", "/testimonial/withdraw/")


def redact_path(path: str) -> str:
    for prefix in TOKEN_PREFIXES:
        if path.startswith(prefix):
            return prefix + "***"
    return path


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Nothing to time or capture when the access log is off (isEnabledFor is cached).
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            log.info(
                "%s %s %s %.1fms",
                scope["method"],
                redact_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
