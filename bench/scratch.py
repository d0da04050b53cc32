"""Scratch PostgreSQL databases for the benchmarks (``TANHUI_BENCH_DATABASE_URL``)."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, make_url, text

BASE_URL = os.environ.get(
    "TANHUI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _execute(statement: str) -> None:
    admin = create_engine(make_url(BASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


def drop_database(name: str) -> None:
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(name: str) -> str:
    """An empty database ``name`` (dropped first if it exists); returns its URL."""
    drop_database(name)
    _execute(f'CREATE DATABASE "{name}"')
    return make_url(BASE_URL).set(database=name).render_as_string(hide_password=False)
