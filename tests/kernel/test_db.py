"""The engine's per-dialect set-up: SQLite runs with WAL and foreign keys on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tanhui.db import create_engine, database_kind, unit_of_work
from tanhui.settings import Settings


def test_sqlite_runs_with_wal_and_foreign_keys(base_settings: Settings, tmp_path: Path) -> None:
    # A new file: WAL is remembered by a database file, so a copied template would not tell.
    path = tmp_path / "pragmas.db"
    settings = base_settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    engine = create_engine(settings)
    try:
        assert database_kind(engine) == "sqlite"
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with unit_of_work(engine) as session:
            session.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            session.execute(
                text(
                    "CREATE TABLE child"
                    " (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent)"
                )
            )
        # A row pointing at a parent that does not exist is refused, not stored.
        with pytest.raises(IntegrityError), unit_of_work(engine) as session:
            session.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 42)"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM child")).scalar() == 0
    finally:
        engine.dispose()
