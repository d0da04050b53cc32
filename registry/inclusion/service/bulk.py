"""Set-based statements for the ingestion: one statement per table for a whole batch.

On PostgreSQL rows travel as one array per column through ``unnest`` (the statement text stays
the same whatever the batch size, so it is parsed and planned once, and the arrays are sent in
binary); SQLite gets the portable multi-row forms. See ADR 0053.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    Table,
    Uuid,
    any_,
    bindparam,
    cast,
    text,
    tuple_,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from tanhui.db import UTCDateTime, database_kind


def _array_type(table: Table, column: str) -> str:
    """The PostgreSQL array type for a column's values."""
    kind = table.c[column].type
    if isinstance(kind, UTCDateTime):
        return "timestamptz[]"
    if isinstance(kind, BigInteger):
        return "bigint[]"
    if isinstance(kind, Integer):
        return "integer[]"
    if isinstance(kind, Uuid):
        return "uuid[]"
    if isinstance(kind, Date):
        return "date[]"
    if isinstance(kind, Boolean):
        return "boolean[]"
    return "text[]"


def is_postgresql(session: Session) -> bool:
    return database_kind(session) == "postgresql"


def _quoted(value: Any) -> str:
    if value is None:
        return "NULL"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stamp(value: datetime | date | None) -> str:
    return "NULL" if value is None else '"' + value.isoformat() + '"'


def _plain(value: Any) -> str:
    return "NULL" if value is None else str(value)  # integers need no quoting


def _uuid(value: Any) -> str:
    # 32 hex digits (PostgreSQL reads UUIDs with or without dashes): str() slices and joins.
    return "NULL" if value is None else "%032x" % value.int  # noqa: UP031 - the fastest form


def _flag(value: bool | None) -> str:
    return "NULL" if value is None else ("t" if value else "f")


_ELEMENT = {
    "uuid[]": _uuid,
    "text[]": _quoted,
    "timestamptz[]": _stamp,
    "date[]": _stamp,
    "boolean[]": _flag,
}


def _literal(values: Sequence[Any], array_type: str = "text[]") -> str:
    """An array literal built in one pass with one formatter per column type (psycopg's generic
    list dumper checks every element with a regular expression, which cost more than the rest
    of a batch's statements)."""
    element = _ELEMENT.get(array_type, _plain)
    return "{" + ",".join(map(element, values)) + "}"


def array_literal(values: Sequence[Any], array_type: str = "text[]") -> str:
    """A PostgreSQL array literal of ``values`` (to bind and ``CAST(:x AS <array_type>)``)."""
    return _literal(values, array_type)


def _unnest(
    table: Table,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    constants: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``SELECT`` of the rows' ``columns`` (one array each), then of ``constants`` (one value
    each, the same for every row: sent once, not once per row)."""
    types = [_array_type(table, name) for name in columns]
    selects = ", ".join(f"CAST(:c{i} AS {kind})" for i, kind in enumerate(types))
    params = {
        f"c{i}": _literal([row[name] for row in rows], types[i]) for i, name in enumerate(columns)
    }
    extra = ""
    for i, (name, value) in enumerate((constants or {}).items()):
        extra += f", CAST(:k{i} AS {_array_type(table, name)[:-2]})"
        params[f"k{i}"] = value
    return f"SELECT *{extra} FROM unnest({selects})", params  # noqa: S608 - our identifiers


def insert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str] | None = None,
    returning: str | None = None,
    constants: dict[str, Any] | None = None,
) -> list[Any]:
    """Insert ``rows``; with ``conflict``, rows whose key exists are skipped; with
    ``returning``, the values of that column for the rows inserted; ``constants`` are columns
    whose value is the same in every row."""
    if not rows:
        return []
    columns = list(rows[0])
    if is_postgresql(session):
        source, params = _unnest(table, columns, rows, constants)
        names = ", ".join([*columns, *(constants or {})])
        sql = f"INSERT INTO {table.name} ({names}) {source}"
        if conflict is not None:
            target = f"({', '.join(conflict)})" if conflict else ""
            sql += f" ON CONFLICT {target} DO NOTHING"
        if returning:
            sql += f" RETURNING {returning}"
            return list(session.execute(text(sql), params).scalars())
        session.execute(text(sql), params)
        return []
    if constants:
        rows = [{**row, **constants} for row in rows]
    if conflict is None and not returning:
        session.execute(table.insert(), list(rows))
        return []
    found: list[Any] = []
    for start in range(0, len(rows), 500):  # SQLite limits the number of bound values
        chunk = list(rows[start : start + 500])
        statement = sqlite_insert(table).values(chunk)
        if conflict is not None:
            statement = statement.on_conflict_do_nothing()
        if returning:
            found += list(session.execute(statement.returning(table.c[returning])).scalars())
        else:
            session.execute(statement)
    return found


def _order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """One lock order for every transaction: any total order does, as long as all use it (UUIDs
    by their integer, cheaper than by their text; other parts as they are)."""
    return tuple(part.int if type(part) is uuid.UUID else part for part in key)


def claim_counters(
    session: Session,
    table: Table,
    keys: Sequence[tuple[Any, ...]],
    key_columns: Sequence[str],
    value: str,
) -> dict[tuple[Any, ...], int]:
    """Create missing counter rows (value 0), lock every one of ``keys`` in sorted order and
    return their values."""
    if not keys:
        return {}
    ordered = sorted(keys, key=_order)
    if is_postgresql(session):
        rows = [dict(zip(key_columns, key, strict=True)) for key in ordered]
        source, params = _unnest(table, key_columns, rows)
        names = ", ".join(key_columns)
        found = session.execute(
            text(  # identifiers from our own table metadata; every value is bound
                f"INSERT INTO {table.name} ({names}, {value}) SELECT *, 0 FROM ({source}) AS s "  # noqa: S608
                f"ON CONFLICT ({names}) DO UPDATE SET {value} = {table.name}.{value} "
                f"RETURNING {names}, {value}"
            ),
            params,
        ).all()
        return {tuple(row[:-1]): int(row[-1]) for row in found}
    insert(
        session,
        table,
        [{**dict(zip(key_columns, key, strict=True)), value: 0} for key in ordered],
        conflict=(),
    )
    values: dict[tuple[Any, ...], int] = {}
    columns = [table.c[name] for name in key_columns]
    for start in range(0, len(ordered), 200):
        chunk = ordered[start : start + 200]
        for row in session.execute(
            sa_select(*columns, table.c[value]).where(tuple_(*columns).in_(chunk))
        ).all():
            values[tuple(row[:-1])] = int(row[-1])
    return values


def add_to_counters(
    session: Session,
    table: Table,
    amounts: dict[tuple[Any, ...], int],
    key_columns: Sequence[str],
    value: str,
) -> dict[tuple[Any, ...], int]:
    """Add ``amounts`` to their counters (created at 0 if missing), locking every row in sorted
    order, and return the values after adding: one statement on PostgreSQL. Callers may correct
    some rows afterwards with :func:`set_counters` (they hold the locks)."""
    if not amounts:
        return {}
    ordered = sorted(amounts, key=_order)
    if not is_postgresql(session):
        current = claim_counters(session, table, ordered, key_columns, value)
        added = {key: current.get(key, 0) + amounts[key] for key in ordered}
        set_counters(session, table, added, key_columns, value)
        return added
    rows = [{**dict(zip(key_columns, key, strict=True)), value: amounts[key]} for key in ordered]
    source, params = _unnest(table, [*key_columns, value], rows)
    names = ", ".join(key_columns)
    found = session.execute(
        text(  # identifiers from our own table metadata; every value is bound
            f"INSERT INTO {table.name} ({names}, {value}) {source} "
            f"ON CONFLICT ({names}) DO UPDATE SET {value} = {table.name}.{value} + "
            f"excluded.{value} RETURNING {names}, {value}"
        ),
        params,
    ).all()
    return {tuple(row[:-1]): int(row[-1]) for row in found}


def set_counters(
    session: Session,
    table: Table,
    values: dict[tuple[Any, ...], int],
    key_columns: Sequence[str],
    value: str,
) -> None:
    """Write new counter values (rows already locked by :func:`claim_counters`)."""
    if not values:
        return
    ordered = sorted(values, key=_order)
    if is_postgresql(session):
        rows = [{**dict(zip(key_columns, key, strict=True)), value: values[key]} for key in ordered]
        source, params = _unnest(table, [*key_columns, value], rows)
        names = ", ".join([*key_columns, value])
        match = " AND ".join(f"{table.name}.{name} = v.{name}" for name in key_columns)
        session.execute(
            text(  # identifiers from our own table metadata; every value is bound
                f"UPDATE {table.name} SET {value} = v.{value} "  # noqa: S608
                f"FROM ({source}) AS v({names}) WHERE {match}"
            ),
            params,
        )
        return
    session.execute(
        update(table)
        .where(*[table.c[name] == bindparam(f"k_{name}") for name in key_columns])
        .values({value: bindparam("k_value")}),
        [
            {
                **{f"k_{name}": part for name, part in zip(key_columns, key, strict=True)},
                "k_value": values[key],
            }
            for key in ordered
        ],
    )


def member_of(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` as one array parameter on PostgreSQL (``= ANY(:values)``)."""
    if is_postgresql(session):
        kind = "uuid[]" if isinstance(column.type, Uuid) else "text[]"
        literal = _literal(list(values), kind)
        return column == any_(cast(bindparam(None, literal), ARRAY(column.type)))
    return column.in_(list(values))
