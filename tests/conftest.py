"""Fixtures: an isolated, migrated database per test on SQLite and on PostgreSQL (the server
given by ``TANHUI_TEST_DATABASE_URL``, else found or started by ``tests.pg_server``), settings
with throw-away secrets, the app.

SQLite: the migrated template file is copied for each test. PostgreSQL: one database per test
session (per xdist worker), built by ``alembic upgrade head``; every table is truncated after each
test, so tests may commit, use several connections and run in any order.

With ``TANHUI_REQUIRE_POSTGRES=1`` (CI) a PostgreSQL test that skips fails the run.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import Session

from migrations.models import all_metadata
from tanhui.app import create_app
from tanhui.db import create_engine as tanhui_engine
from tanhui.migrate import upgrade
from tanhui.settings import Environment, Settings, load_settings, use_settings
from tests import pg_server

REQUIRE_PG = os.environ.get("TANHUI_REQUIRE_POSTGRES") == "1"
PG_SKIP_REASON = "PostgreSQL: skipped on purpose (TANHUI_TEST_SKIP_POSTGRES=1)"
SHARED_DATA = Path(__file__).resolve().parent / "data"  # real rasters, see data/make_fixtures.py


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# --- settings ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def base_settings(state_dir: Path) -> Settings:
    return load_settings(
        env=Environment.test,
        secret_key=secrets.token_urlsafe(48),
        data_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        state_dir=state_dir,
        signing_key_file=state_dir / "signing_key.pem",
        database_url="sqlite://",
    )


# --- databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    settings = base_settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    engine = tanhui_engine(settings)
    upgrade(engine)
    engine.dispose()
    return path


def _admin_engine(url: str) -> Engine:
    admin_url = make_url(url).set(database="postgres")
    return create_engine(admin_url, isolation_level="AUTOCOMMIT")


def create_pg_database(url: str, name: str) -> str:
    admin = _admin_engine(url)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str, name: str) -> None:
    admin = _admin_engine(url)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server's URL; a run that cannot find or start one fails and says why."""
    found = pg_server.server()
    if found.url is None:
        if os.environ.get("TANHUI_TEST_SKIP_POSTGRES") == "1":
            pytest.skip(PG_SKIP_REASON)
        pytest.fail(f"PostgreSQL: {found.how}. {pg_server.HOW_TO}", pytrace=False)
    return found.url


@pytest.fixture(scope="session")
def pg_session_url(base_settings: Settings, pg_server_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database for this test session."""
    name = f"tanhui_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(pg_server_url, name)
    settings = base_settings.model_copy(update={"database_url": url})
    engine = tanhui_engine(settings)
    upgrade(engine)
    engine.dispose()
    yield settings.database_url
    drop_pg_database(pg_server_url, name)


def truncate_all(url: str) -> None:
    """Empty every table the migrations created (all but Alembic's own)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        existing = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
        names = [t.name for t in all_metadata().sorted_tables if t.name in existing]
        if names:
            tables = ", ".join(f'"{name}"' for name in names)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
) -> Iterator[str]:
    """A migrated, empty database for one test: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    pg_session_url: str = request.getfixturevalue("pg_session_url")
    yield pg_session_url
    truncate_all(pg_session_url)


@pytest.fixture
def pg_url(pg_session_url: str) -> Iterator[str]:
    """The PostgreSQL test database alone, for tests about concurrency on PostgreSQL."""
    yield pg_session_url
    truncate_all(pg_session_url)


@pytest.fixture
def settings(base_settings: Settings, database_url: str) -> Settings:
    configured = base_settings.model_copy(update={"database_url": database_url})
    use_settings(configured)
    return configured


@pytest.fixture
def pg_settings(base_settings: Settings, pg_url: str) -> Settings:
    configured = base_settings.model_copy(update={"database_url": pg_url})
    use_settings(configured)
    return configured


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = tanhui_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Iterator[Engine]:
    engine = tanhui_engine(pg_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database; tests commit when they want a change to be visible.

    On SQLite every transaction starts with BEGIN IMMEDIATE and so holds the single write lock
    until it ends: commit or roll back before another connection (the app, a CLI) must write.
    """
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.rollback()


@pytest.fixture
def app(settings: Settings) -> Iterator[object]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:  # type: ignore[arg-type]
        yield test_client


@pytest.fixture
def shared_data() -> Path:
    """The real rasters of the maintainers' shared data, in the repository (tests/data)."""
    return SHARED_DATA


# --- CI guard: PostgreSQL tests must run ---------------------------------------------------

_pg_skips: list[str] = []
_pg_passes: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    is_pg = "postgresql" in report.nodeid or "postgres" in report.keywords
    if report.skipped and is_pg and "PostgreSQL" in str(report.longrepr):
        _pg_skips.append(report.nodeid)
    if report.when == "call" and report.passed and is_pg:
        _pg_passes.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not REQUIRE_PG or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if _pg_skips or not _pg_passes:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nTANHUI_REQUIRE_POSTGRES=1 but {len(_pg_skips)} PostgreSQL tests skipped"
            f" and {len(_pg_passes)} passed"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if pg_server.server.cache_info().currsize:
        terminalreporter.write_line(f"PostgreSQL: {pg_server.server().how}")
    if REQUIRE_PG:
        terminalreporter.write_line(
            f"PostgreSQL tests passed: {len(_pg_passes)}, skipped: {len(_pg_skips)}"
        )
