"""schemathesis against ``/api/openapi.json``: every operation, with generated input, sent by
every kind of caller (API tokens of an owner of every organisation kind and of a viewer, a
platform admin, a resident's browser session, and anonymous): no answer is a 5xx, every status
is one the operation documents, and every documented body matches its schema.

Bounded for CI (``TANHUI_FUZZ_EXAMPLES`` examples per operation, 2 by default: about two
minutes on two cores); run it with more examples by hand before a release.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tanhui.app import create_app
from tanhui.models import OrgKind
from tanhui.settings import Settings, use_settings
from tests.security.world import World, load_world

EXAMPLES = int(os.environ.get("TANHUI_FUZZ_EXAMPLES", "2"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLERS = [
    "anonymous",
    "resident",
    "admin",
    *(f"{kind.value}:owner" for kind in OrgKind),
    "enterprise:viewer",
    "cooperative:viewer",
]
# Machine endpoints authenticated by a signature over the raw body; their unsigned answers are
# checked like any other's, their signed ones by the crash-safety and inclusion tests.
SIGNED = {"/api/v1/points/events", "/api/v1/market/webhooks/stripe"}


@pytest.fixture(scope="module")
def fuzz_world(
    world_template: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> World:
    template, data = world_template
    return load_world(template, data, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def fuzz_app(base_settings: Settings, fuzz_world: World) -> Iterator[FastAPI]:
    configured = base_settings.model_copy(
        update={"database_url": f"sqlite:///{fuzz_world.database_path}"}
    )
    use_settings(configured)
    app = create_app(configured)
    yield app
    app.state.engine.dispose()
    shutil.rmtree(fuzz_world.database_path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_app)


CHUNKS = 4


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_operation_as_every_caller(api_schema: Any, fuzz_world: World, chunk: int) -> None:
    """Each operation's generated cases, each sent as every caller; failures are collected per
    operation (no shrinking: the failing case is reported as generated)."""
    operations = sorted(
        (result.ok() for result in api_schema.get_all_operations()),
        key=lambda operation: operation.label,
    )
    documented = sum(
        method in {"get", "put", "post", "delete", "patch"}
        for item in api_schema.raw_schema["paths"].values()
        for method in item
    )
    assert len(operations) == documented > 140
    failures: list[str] = []
    for operation in operations[chunk::CHUNKS]:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            for name in CALLERS:
                headers = dict(case.headers or {})
                headers.update(fuzz_world.caller(name).headers(browser=False))
                response = case.call(headers=headers)
                try:
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except (AssertionError, BaseExceptionGroup) as error:
                    raise AssertionError(f"as {name}: {_summary(error)}") from None

        try:
            run()
        except (Exception, BaseExceptionGroup) as error:  # every failure, by operation
            failures.append(f"{operation.label}: {_summary(error)}")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def _summary(error: BaseException) -> str:
    """The failure's first lines (schemathesis prints the received status and body)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return " | ".join(lines[:8])[:600]
