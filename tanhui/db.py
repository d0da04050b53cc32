"""Database plumbing shared by every package: engine, sessions, column types, retries.

One request or job is one transaction: services ``flush()``; the request dependency or
:func:`unit_of_work` commits once at the end, or rolls everything back.

SQLite runs with WAL and foreign keys on, and every transaction starts with ``BEGIN IMMEDIATE``
so that there is exactly one writer and a reader never has to upgrade its lock mid-way (which
SQLite answers with SQLITE_BUSY instead of waiting). PostgreSQL runs READ COMMITTED with explicit
row locks; :func:`retrying` re-runs a unit of work on serialization failures and deadlocks.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Engine, Integer, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

from tanhui.settings import Settings

# Stable constraint names, so that Alembic revisions are the same on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
MAX_TRANSACTION_ATTEMPTS = 8
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected

T = TypeVar("T")

# A 64-bit auto-incrementing key: SQLite only auto-increments a column declared INTEGER.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so new rows land at the right edge of the primary-key index."""
    return _uuid7(time.time_ns() // 1_000_000, int.from_bytes(secrets.token_bytes(10), "big"))


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` UUIDv7s of this millisecond from one read of the system's random source (a
    batch of a thousand rows would otherwise read it a thousand times)."""
    unix_ms = time.time_ns() // 1_000_000
    pool = secrets.token_bytes(10 * count)
    return [
        _uuid7(unix_ms, int.from_bytes(pool[start : start + 10], "big"))
        for start in range(0, 10 * count, 10)
    ]


def _uuid7(unix_ms: int, rand: int) -> uuid.UUID:
    """RFC 9562 layout: 48-bit milliseconds, version 7, 12 random bits, variant, 62 random bits."""
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Tanhui stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def create_engine(settings: Settings) -> Engine:
    """The engine for ``settings.database_url`` with the per-dialect set-up described above."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = sa_create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    return sa_create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        connect_args={"application_name": "tanhui"},
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that BEGIN IMMEDIATE is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction for a CLI command or a job: commit at the end or roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException as error:
            finish_failed(session, error)
            raise


def finish_failed(session: Session, error: BaseException) -> None:
    """Roll back after ``error``, unless the error is evidence that must be kept."""
    if getattr(error, "keeps_changes", False):
        session.commit()
    else:
        session.rollback()


def is_retryable(error: BaseException) -> bool:
    """Serialization failures, deadlocks and SQLite's busy database are worth one more try."""
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return True
        if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
            return True
    return False


# Connection exceptions (class 08) and the server shutting the session down (57P01-57P03).
DISCONNECT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")


def is_disconnect(error: BaseException) -> bool:
    """The connection to the database was lost mid-request (the server restarted, an
    administrator ended the session, the network failed): whether a commit in flight was
    applied is unknown, so only an idempotent retry can tell."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return sqlstate.startswith(DISCONNECT_SQLSTATE_PREFIXES)


def retrying(
    engine: Engine,
    work: Callable[[Session], T],
    *,
    attempts: int = MAX_TRANSACTION_ATTEMPTS,
) -> T:
    """Run ``work`` in a fresh unit of work, again on retryable conflicts (bounded, with jitter)."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(engine) as session:
                return work(session)
        except DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            time.sleep(min(0.2, 0.005 * 2**attempt) * (0.5 + secrets.randbelow(1000) / 1000))
    raise AssertionError("unreachable")


def database_kind(session_or_engine: Session | Engine) -> str:
    """``"sqlite"`` or ``"postgresql"``: for the few queries that must differ by dialect."""
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name
