"""The application as an import string, for `portal serve --workers N` (and any ASGI server):
each worker process builds its own app, engine and loops from the same PORTAL_* settings."""

from __future__ import annotations

from starlette.applications import Starlette

from portal.app import create_app
from portal.cli_support import load_settings


def app() -> Starlette:
    """The factory (`uvicorn --factory portal.asgi:app`)."""
    return create_app(load_settings(), freeze_heap=True)
