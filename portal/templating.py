"""Jinja environment shared by the host and the plugins' templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

from portal.resources import static_dir, templates_dir


def make_templates(plugin_dirs: list[Path]) -> Jinja2Blocks:
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(templates_dir()))]
        + [jinja2.FileSystemLoader(str(folder)) for folder in plugin_dirs]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["htmx_available"] = (static_dir() / "htmx.min.js").is_file()
    return Jinja2Blocks(env=env, context_processors=[_request_context])


def _request_context(request: Request) -> dict[str, Any]:
    state = request.scope.get("state", {})
    return {"csrf_token": state.get("csrf_token", "")}


def is_htmx(request: Request) -> bool:
    """The one place that decides whether to answer with a fragment."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in (
        request.headers
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page, or only `block` of it for an htmx request."""
    templates: Jinja2Blocks = request.app.state.templates
    block_name = block if block and is_htmx(request) else None
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers, block_name=block_name
    )
    response.headers["Vary"] = "HX-Request, Cookie"
    return response
