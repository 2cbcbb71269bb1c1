"""A router that finds a request's route by its first path segment before trying patterns.

Starlette's router tries every route's pattern in order; with ~80 routes, a request to one of
the last (health checks, the API, the wizard) spent more time being routed than handled:
about half of a trivial route's cost in the portal (docs/benchmarks.md). Here each request
tries only the routes that could match its first path segment, in the same order, so the
first full match is the route Starlette would pick. Anything else (no full match: 405s,
slash redirects, 404s) goes to Starlette's own scan unchanged.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send


def _first_segment(route: BaseRoute) -> str | None:
    """The fixed first segment every path the route matches starts with; None if it varies."""
    if not isinstance(route, Route | Mount):
        return None
    segment = route.path.lstrip("/").split("/", 1)[0]
    if "{" in segment or (isinstance(route, Mount) and not route.path):
        return None
    return segment


class IndexedRouter(Router):
    _indexed = -1  # how many routes the index covers
    _index: dict[str, list[BaseRoute]]
    _anywhere: list[BaseRoute]

    def _candidates(self, path: str) -> list[BaseRoute]:
        if self._indexed != len(self.routes):  # routes added after start-up are indexed too
            self._indexed = len(self.routes)
            segments = {s for s in map(_first_segment, self.routes) if s is not None}
            self._index = {
                s: [r for r in self.routes if _first_segment(r) in (s, None)] for s in segments
            }
            self._anywhere = [r for r in self.routes if _first_segment(r) is None]
        return self._index.get(path.lstrip("/").split("/", 1)[0], self._anywhere)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self._candidates(get_route_path(scope)):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)
