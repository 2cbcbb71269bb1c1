"""GET /api/v1/docs: the OpenAPI document as a page for people, rendered on the server.

The page is built from the same document the machines read, so the two cannot disagree. No
script and no inline style (the CSP forbids them): plain HTML with the site's stylesheet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from portal.api import openapi
from portal.api.keys import SCOPE_LABELS, Scope
from portal.api.schemas import Schema
from portal.runtime import runtime
from portal.templating import render

_MD = MarkdownIt("commonmark", {"html": False})


def markdown(text: str) -> Markup:
    # html is off, so whatever the text holds comes out escaped.
    return Markup(_MD.render(text))  # noqa: S704


@dataclass
class ParameterView:
    name: str
    location: str
    required: bool
    accepts: str
    description: Markup


@dataclass
class ResponseView:
    status: str
    description: str
    media_type: str
    headers: list[str]


@dataclass
class OperationView:
    method: str
    path: str
    anchor: str
    summary: str
    description: Markup
    scope: str | None
    auth: bool
    parameters: list[ParameterView]
    body_example: str | None
    responses: list[ResponseView]
    curl: str
    schema_name: str | None = None


def accepts(schema: Schema) -> str:
    """One line saying what a parameter accepts: "integer, 1 to 500, default 50"."""
    parts = [str(schema.get("format", schema.get("type", "string")))]
    if "minimum" in schema and "maximum" in schema:
        parts.append(f"{schema['minimum']} to {schema['maximum']}")
    if "maxLength" in schema:
        parts.append(f"at most {schema['maxLength']} characters")
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    if "default" in schema:
        parts.append(f"default {json.dumps(schema['default'])}")
    return ", ".join(parts)


def _resolve(doc: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def curl(base_url: str, method: str, path: str, op: Schema) -> str:
    url = base_url + path.replace("{client_id}", "$CLIENT_ID")
    examples = [
        f"{p['name']}={p['example']}"
        for p in op.get("parameters", [])
        if p["in"] == "query" and "example" in p
    ]
    if examples:
        url += "?" + "&".join(examples)
    words = ["curl"]
    if method != "get":
        words += ["-X", method.upper()]
    if op.get("security"):
        words.append('-H "Authorization: Bearer $KEY"')
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "example" in body:
        words += ['-H "Content-Type: application/json"', f"-d '{json.dumps(body['example'])}'"]
    return " ".join([*words, f'"{url}"'])


def operation_view(doc: Schema, base_url: str, path: str, method: str) -> OperationView:
    op = doc["paths"][path][method]
    parameters = [
        ParameterView(
            name=p["name"],
            location=p["in"],
            required=p.get("required", False),
            accepts=accepts(_resolve(doc, p["schema"])),
            description=markdown(p.get("description", "")),
        )
        for p in op.get("parameters", [])
    ]
    responses = []
    for status, reference in op["responses"].items():
        response = _resolve(doc, reference)
        responses.append(
            ResponseView(
                status=status,
                description=response["description"],
                media_type=", ".join(response.get("content", {})),
                headers=list(response.get("headers", {})),
            )
        )
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    ok_content = op["responses"]["200"].get("content", {}).get("application/json", {})
    ok_ref = ok_content.get("schema", {}).get("$ref", "")
    return OperationView(
        method=method.upper(),
        path=path,
        anchor=op["operationId"],
        summary=op["summary"],
        description=markdown(op["description"]),
        scope=op.get("x-required-scope"),
        auth=bool(op.get("security")),
        parameters=parameters,
        body_example=json.dumps(body["example"], indent=2) if "example" in body else None,
        responses=responses,
        curl=curl(base_url, method, path, op),
        schema_name=ok_ref.rpartition("/")[2] or None,
    )


async def docs(request: Request) -> Response:
    doc = openapi.document(request)
    base_url = runtime(request).settings.base_url.rstrip("/")
    operations = [
        operation_view(doc, base_url, path, method)
        for path, item in doc["paths"].items()
        for method in item
    ]
    context = {
        "info": doc["info"],
        "intro": markdown(doc["info"]["description"]),
        "operations": operations,
        "scopes": [(scope.value, SCOPE_LABELS[scope]) for scope in Scope],
        "schemas": {
            name: json.dumps(schema, indent=2)
            for name, schema in doc["components"]["schemas"].items()
        },
        "base_url": base_url,
    }
    return render(request, "api/docs.html", context)
