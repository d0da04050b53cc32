"""Fixtures for the hostile-input tests: the seeded world (once per test process) and its app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tanhui.app import create_app
from tanhui.settings import Settings, use_settings
from tests.frontend.conftest import faces  # noqa: F401 (the registry faces, for upload tests)
from tests.security.world import World, load_world, seed_template


@pytest.fixture(scope="session")
def world_template(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, base_settings: Settings
) -> tuple[Path, dict[str, Any]]:
    """The migrated SQLite template with the demo and the callers seeded (built once)."""
    path = tmp_path_factory.mktemp("world") / "seeded.db"
    shutil.copyfile(sqlite_template, path)
    data = seed_template(base_settings, path)
    return path, data


@pytest.fixture
def world(world_template: tuple[Path, dict[str, Any]], tmp_path: Path) -> World:
    template, data = world_template
    return load_world(template, data, tmp_path)


@pytest.fixture
def world_settings(base_settings: Settings, world: World) -> Settings:
    configured = base_settings.model_copy(
        update={"database_url": f"sqlite:///{world.database_path}"}
    )
    use_settings(configured)
    return configured


@pytest.fixture
def world_app(world_settings: Settings) -> Iterator[FastAPI]:
    application = create_app(world_settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def world_client(world_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(
        world_app,
        base_url="http://testserver",
        follow_redirects=False,
        raise_server_exceptions=False,
    ) as client:
        yield client
