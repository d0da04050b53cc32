"""Migration 0404 spreads existing issuance accounts over 16 balance rows without changing any
balance, and its downgrade folds them back (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine
from sqlmodel import Session

from tanhui.db import create_engine
from tanhui.migrate import alembic_config, upgrade
from tanhui.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database
from wallet import service
from wallet.service import Distribution, Transfer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bare_engine(
    request: pytest.FixtureRequest, base_settings: Settings, tmp_path: Path
) -> Iterator[Engine]:
    name = server = ""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/m.db"
    else:
        server = request.getfixturevalue("pg_server_url")
        name = f"tanhui_migrate_{uuid.uuid4().hex[:8]}"
        url = create_pg_database(server, name)
    engine = create_engine(base_settings.model_copy(update={"database_url": url}))
    try:
        yield engine
    finally:
        engine.dispose()
        if name:
            drop_pg_database(server, name)


def test_issuance_accounts_become_hot_and_back(bare_engine: Engine) -> None:
    upgrade(bare_engine, "0403")
    with Session(bare_engine) as session:
        issuance = service.open_account(
            session, asset="POINTS", owner="system:points_issuance", floor=None, shards=1
        ).id
        person = service.open_account(session, asset="POINTS", owner=f"org:{uuid.uuid4()}").id
        service.post_entry(session, code="issuance", transfers=[Transfer(issuance, person, 70)])
        session.commit()
    upgrade(bare_engine)
    with Session(bare_engine) as session:
        account = service.get_account(session, issuance)
        assert account.shards == service.HOT_SHARDS
        assert service.get_balance(session, issuance).balance == -70
        service.post_distribution(
            session, code="points_accrual", distributions=[Distribution(issuance, [(person, 5)])]
        )
        session.commit()
        report = service.verify_ledger(session)
        assert report.ok, report.first_fault
    config = alembic_config(bare_engine.url.render_as_string(hide_password=False))
    with bare_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0403")
    with Session(bare_engine) as session:
        assert service.get_account(session, issuance).shards == 1
        assert service.get_balance(session, issuance).balance == -75
        report = service.verify_ledger(session)
        assert report.ok, report.first_fault
