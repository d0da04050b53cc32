"""Migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from migrations.models import all_metadata
from tanhui.db import create_engine
from tanhui.migrate import alembic_config, is_at_head, upgrade
from tanhui.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database


def _diff(settings: Settings) -> list[object]:
    engine = create_engine(settings)
    try:
        assert not is_at_head(engine)
        upgrade(engine)
        assert is_at_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, all_metadata()))
    finally:
        engine.dispose()


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "migrations have diverged: merge the heads"


def test_sqlite_upgrade_matches_models(base_settings: Settings, tmp_path: Path) -> None:
    settings = base_settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/m.db"})
    assert _diff(settings) == []


@pytest.mark.postgres
def test_postgresql_upgrade_matches_models(base_settings: Settings, pg_server_url: str) -> None:
    name = f"tanhui_migrate_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(pg_server_url, name)
    try:
        settings = base_settings.model_copy(update={"database_url": url})
        assert _diff(settings) == []
    finally:
        drop_pg_database(pg_server_url, name)
