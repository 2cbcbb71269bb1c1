"""Staff pages: actions on a client's record (invitations, paper records, export)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
