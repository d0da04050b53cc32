"""Build a request that reaches a route's permission checks: path values from the world, and the
smallest body and query the route's own schema accepts (so that services, which check roles
after FastAPI validated the input, get to say 403)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

PATH_PARAMETER = re.compile(r"{([a-zA-Z_]+)(?::[a-z]+)?}")


@dataclass(frozen=True)
class RouteKey:
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Prepared:
    """What to send: JSON, form fields or files, query and extra headers."""

    url: str
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def route_table(app: FastAPI) -> dict[RouteKey, APIRoute]:
    """Every (method, path template) the app answers, API and pages (HEAD and the docs aside)."""
    table: dict[RouteKey, APIRoute] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        for method in sorted(context.methods or ()):
            if method == "HEAD":
                continue
            table[RouteKey(method, context.path)] = route
    return table


def path_parameters(path: str) -> list[str]:
    return PATH_PARAMETER.findall(path)


def fill_path(path: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for path parameter {name!r} in {path}")
        return str(values[name])

    return PATH_PARAMETER.sub(replace, path)


# --- minimal instances of JSON Schema ------------------------------------------------------


class Schemas:
    """Resolves ``$ref`` against the OpenAPI document's components."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        self.components = openapi.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def minimal(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                usable = [o for o in options if o.get("type") != "null"] or options
                return self.minimal(usable[0], name)
        if "allOf" in schema:
            return self.minimal(schema["allOf"][0], name)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            return {
                key: self.minimal(properties.get(key, {}), key)
                for key in schema.get("required", [])
            }
        if kind == "array":
            count = schema.get("minItems", 0)
            return [self.minimal(schema.get("items", {}), name) for _ in range(count)]
        if kind == "integer":
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
            return max(int(low), 1) if "maximum" not in schema else int(low)
        if kind == "number":
            return float(schema.get("minimum", 1))
        if kind == "boolean":
            return False
        if kind == "string":
            return _minimal_string(schema, name)
        return "x"


def _minimal_string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date":
        return date.today().isoformat()  # noqa: DTZ011 - any day will do
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    if fmt == "email" or "email" in name:
        return "nobody@example.cn"
    if fmt == "binary":
        return "x"
    if "phone" in name:
        return "13800000000"
    length = max(int(schema.get("minLength", 1)), 1)
    return "x" * length


def operation(openapi: dict[str, Any], key: RouteKey) -> dict[str, Any] | None:
    return openapi.get("paths", {}).get(key.path, {}).get(key.method.lower())


def minimal_request(openapi: dict[str, Any], schemas: Schemas, key: RouteKey, url: str) -> Prepared:
    """The smallest request the documented operation accepts (pages: no body)."""
    prepared = Prepared(url=url)
    spec = operation(openapi, key)
    if spec is None:
        return prepared
    for parameter in spec.get("parameters", []):
        if not parameter.get("required") or parameter["in"] == "path":
            continue
        value = schemas.minimal(parameter.get("schema", {}), parameter["name"])
        if parameter["in"] == "query":
            prepared.params[parameter["name"]] = value
        elif parameter["in"] == "header":
            prepared.headers[parameter["name"]] = str(value)
    content = spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        prepared.json = schemas.minimal(content["application/json"].get("schema", {}))
    elif "multipart/form-data" in content or "application/x-www-form-urlencoded" in content:
        media = content.get("multipart/form-data") or content["application/x-www-form-urlencoded"]
        schema = schemas.resolve(media.get("schema", {}))
        data: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for name in schema.get("required", []):
            prop = schemas.resolve(schema.get("properties", {}).get(name, {}))
            if prop.get("format") == "binary" or prop.get("contentMediaType"):
                files[name] = ("upload.bin", b"x", "application/octet-stream")
            else:
                data[name] = str(schemas.minimal(prop, name))
        prepared.data = data or None
        prepared.files = files or None
    return prepared
