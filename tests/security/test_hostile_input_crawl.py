"""Every route, sent hostile numbers and strings in every field it reads: no answer is a 5xx.

The crawl reuses the authorisation matrix's machinery: its route table, a request that passes
validation (``prepare``) and, for each route, a caller the matrix's rule lets through, so that
the values reach the handler's own parsing (forms, query strings, JSON bodies). Hypothesis draws
the values: numbers no column holds (``1e30``, 2^63, ``NaN``, 40 digits), full-width digits,
signs, exponents and hex, empty strings, NULs, formulas and long text (issue 16: 500s on
numbers). Examples per route: ``TANHUI_FUZZ_EXAMPLES`` (2 by default) after the explicit ones.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.params import File
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tanhui.settings import Settings
from tests.security.probes import RouteKey, Schemas, operation, route_table
from tests.security.test_authorization_matrix import (
    ALLOWED,
    LAST,
    RULES,
    Signed,
    _label,
    _prepare_world,
    callers_for,
    prepare,
    rule_for,
    send,
)
from tests.security.world import Caller, World

EXAMPLES = int(os.environ.get("TANHUI_FUZZ_EXAMPLES", "2"))
HOSTILE_TEXT = [
    "1e30",
    "1E+30",
    "-1e30",
    "9" * 19,
    "9" * 40,
    "-" + "9" * 19,
    "9223372036854775808",
    "NaN",
    "Infinity",
    "-inf",
    "0x10",
    "１２３",
    "１e５",
    "1,000.005",
    "-1",
    "0",
    "",
    " ",
    "\x00",
    '=HYPERLINK("http://x")',
    "'; DROP TABLE x; --",
    "x" * 300,
]
HOSTILE_JSON = [2**63, -(2**63) - 1, 10**30, 1e30, -1e30, 1e308, -1, 0, 0.5, True, None, ""]
TEXT = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=30)
JSON_VALUE = st.sampled_from(HOSTILE_JSON) | TEXT | st.integers() | st.floats()


def _allowed_caller(world: World, label: str) -> Caller | None:
    rule = rule_for(label)
    if isinstance(rule, Signed):
        return None
    allowed = [c for c in callers_for(rule, world) if rule.expected(c) == ALLOWED]
    return allowed[-1] if allowed else None


def _fields(
    route: Any, openapi: dict[str, Any], schemas: Schemas, key: RouteKey
) -> dict[str, list[str]]:
    """What the route reads: query parameters, form fields (not files) and JSON properties."""
    query = [param.name for param in route.dependant.query_params]
    form = [
        param.name
        for param in route.dependant.body_params
        if not isinstance(param.field_info, File)
    ]
    json_fields: list[str] = []
    spec = operation(openapi, key)
    content = (spec or {}).get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = schemas.resolve(content["application/json"].get("schema", {}))
        json_fields = list(schema.get("properties", {}))
        form = []
    return {"query": query, "form": form, "json": json_fields}


def _crawl(
    world: World,
    client: TestClient,
    openapi: dict[str, Any],
    schemas: Schemas,
    key: RouteKey,
    caller: Caller,
    fields: dict[str, list[str]],
) -> str | None:
    """Hostile values in every field of one route; the first 5xx, described, or None."""

    def everywhere(value: Any, text: str) -> dict[str, Any]:
        return {
            **{f"query:{n}": text for n in fields["query"]},
            **{f"form:{n}": text for n in fields["form"]},
            **{f"json:{n}": value for n in fields["json"]},
        }

    strategy = st.fixed_dictionaries(
        {
            **{f"query:{name}": TEXT for name in fields["query"]},
            **{f"form:{name}": TEXT for name in fields["form"]},
            **{f"json:{name}": JSON_VALUE for name in fields["json"]},
        }
    )

    @given(values=strategy)
    @example(values=everywhere(10**30, "1e30"))
    @example(values=everywhere(2**63, "9" * 19))
    @example(values=everywhere(1e30, "NaN"))
    @example(values=everywhere("１２", "１２"))
    @settings(
        max_examples=max(EXAMPLES, 1),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate] if EXAMPLES else [Phase.explicit],
        suppress_health_check=list(HealthCheck),
    )
    def run(values: dict[str, Any]) -> None:
        prepared = prepare(world, openapi, schemas, key, caller)
        for slot, value in values.items():
            where, name = slot.split(":", 1)
            if where == "query":
                prepared.params[name] = value
            elif where == "form":
                prepared.data = {**(prepared.data or {}), name: value}
            elif isinstance(prepared.json, dict):
                prepared.json = {**prepared.json, name: value}
        try:
            response = send(client, key, prepared, caller)
        except ValueError:  # a value httpx cannot put on the wire (NaN in JSON, say)
            return
        assert response.status_code < 500, (
            f"{key} as {caller.name} with {values!r}: "
            f"{response.status_code} {response.text[:200]!r}"
        )

    try:
        run()
    except AssertionError as error:
        return str(error).splitlines()[0][:400]
    return None


@pytest.mark.slow
def test_no_route_answers_5xx_to_hostile_input(
    world: World, world_settings: Settings, world_client: TestClient
) -> None:
    world.extra["settings"] = world_settings
    _prepare_world(world)
    app = world_client.app
    openapi = app.openapi()  # type: ignore[attr-defined]
    schemas = Schemas(openapi)
    table = route_table(app)  # type: ignore[arg-type]
    keys = sorted(
        (key for key in table if _label(key) in RULES),
        key=lambda k: (_label(k) in LAST, k.path, k.method),
    )
    failures: list[str] = []
    crawled = 0
    for key in keys:
        caller = _allowed_caller(world, _label(key))
        fields = _fields(table[key], openapi, schemas, key)
        if caller is None or not any(fields.values()):
            continue
        crawled += 1
        failure = _crawl(world, world_client, openapi, schemas, key, caller, fields)
        if failure:
            failures.append(failure)
    assert crawled > 100
    assert not failures, f"{len(failures)} routes answered 5xx:\n" + "\n".join(failures)
