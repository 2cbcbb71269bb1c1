"""Staff pages: the admin's pages (staff accounts, mail, staff policy)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
