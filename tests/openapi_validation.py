"""Hold a real response against what the OpenAPI document says about it.

For the operation a request hit: the status must be documented, the content type must be the
documented one, the body must validate (formats included) against the documented schema, and
every required header must be there with a value its schema allows.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
from httpx2 import Response

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A validator for `schema`, a part of `doc` whose references point into `doc`."""
    rooted = {"$schema": DIALECT, **schema, "components": doc["components"]}
    return jsonschema_rs.validator_for(rooted, validate_formats=True)


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The operation a concrete path and method hit."""
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            found: dict[str, Any] = item[method.lower()]
            return found
    raise AssertionError(f"{method} {path} is not in the document")


def check(doc: dict[str, Any], response: Response) -> tuple[str, int]:
    """Assert `response` is what the document promises; (operationId, status) for coverage."""
    request = response.request
    op = operation(doc, request.method, request.url.path)
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    documented = op["responses"].get(str(response.status_code))
    assert documented is not None, f"{where}: status not documented ({response.text[:200]})"
    documented = resolve(doc, documented)
    (media_type, content), *others = documented["content"].items()
    assert not others
    actual = response.headers.get("content-type", "").split(";")[0].strip()
    assert actual == media_type, f"{where}: content type {actual!r}, documented {media_type!r}"
    if media_type.endswith("json"):
        errors = [str(e) for e in validator(doc, content["schema"]).iter_errors(response.json())]
        assert not errors, f"{where}: {errors[:3]}"
    for name, header in documented.get("headers", {}).items():
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{where}: no {name} header"
        if value is not None:
            instance: Any = int(value) if header["schema"].get("type") == "integer" else value
            assert validator(doc, header["schema"]).is_valid(instance), f"{where}: {name}={value}"
    return op["operationId"], response.status_code


def documented_statuses(doc: dict[str, Any]) -> set[tuple[str, int]]:
    return {
        (op["operationId"], int(status))
        for item in doc["paths"].values()
        for op in item.values()
        for status in op["responses"]
    }


def schema_objects(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every Schema Object in the document, with where it is (for messages)."""
    found = [(f"components/schemas/{n}", s) for n, s in doc["components"]["schemas"].items()]
    for name, response in doc["components"]["responses"].items():
        found += _in_response(f"components/responses/{name}", response)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method} {path}"
            found += [(f"{where} {p['name']}", p["schema"]) for p in op.get("parameters", [])]
            for media_type, content in op.get("requestBody", {}).get("content", {}).items():
                found.append((f"{where} body {media_type}", content["schema"]))
            for status, response in op["responses"].items():
                found += _in_response(f"{where} {status}", response)
    return found


def _in_response(where: str, response: dict[str, Any]) -> list[tuple[str, Any]]:
    found = [(f"{where} {t}", c["schema"]) for t, c in response.get("content", {}).items()]
    found += [(f"{where} {h}", v["schema"]) for h, v in response.get("headers", {}).items()]
    return found


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []
