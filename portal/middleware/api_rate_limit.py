"""Per-key request budget for /api/ and /fhir/: a token bucket per caller, in this process.

A caller is its API key's public id (`pk_<id>_...`), or its address when it sent no key, so a
misbehaving integration slows down alone. Over budget: 429 with Retry-After, before any work.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = ("/api/", "/fhir/")
# Enough callers for any practice; the oldest idle buckets are dropped past it.
MAX_CALLERS = 10_000


class TokenBuckets:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self.clock()
        tokens, last = self._buckets.pop(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > MAX_CALLERS:
            self._buckets.popitem(last=False)
        return wait


def caller_of(scope: Scope) -> str:
    authorization = Headers(scope=scope).get("authorization", "")
    token = authorization.partition(" ")[2].strip()
    parts = token.split("_")
    if len(parts) >= 3 and parts[0] == "pk" and len(parts[1]) == 8:
        return f"key:{parts[1]}"
    client = scope.get("client")
    return f"ip:{client[0] if client else ''}"


def _body(path: str, wait: int) -> tuple[bytes, bytes]:
    detail = f"Too many requests from this API key; try again in {wait} s."
    if path.startswith("/fhir/"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "throttled", "diagnostics": detail}],
        }
        return json.dumps(outcome).encode(), b"application/fhir+json"
    problem = {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": detail}
    return json.dumps(problem).encode(), b"application/problem+json"


class ApiRateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, per_minute: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIXES) or path == "/fhir/r4/metadata":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(caller_of(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        body, content_type = _body(path, seconds)
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", content_type),
                    (b"retry-after", str(seconds).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
