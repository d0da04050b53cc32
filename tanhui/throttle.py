"""Rate limits that hold under concurrency: a counter row per (scope, identifier), locked by the
check that reads it and counted in the same transaction.

The check is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement: it creates the row,
restarts a lapsed window and, on PostgreSQL, takes the row lock that it keeps until the
transaction ends (SQLite's ``BEGIN IMMEDIATE`` already serialises writers). Forty parallel
attempts at one account therefore check and count one after the other, and exactly ``maximum``
of them get through. Reading the past (counting rows of attempts) without that lock let every
one of them see the same count.

Identifiers are stored as keyed hashes (:func:`tanhui.pii.blind_index`), never in plain text,
and must already be normalised: the caller's normaliser decides what counts as the same phone,
account or address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from tanhui import pii
from tanhui.db import utcnow
from tanhui.models import Throttle


@dataclass(frozen=True)
class Limit:
    """At most ``maximum`` counted events of ``scope`` per identifier within ``window``."""

    scope: str
    maximum: int
    window: timedelta


@dataclass
class Counter:
    """A locked counter: what ``limit`` allows and how much of it is used."""

    limit: Limit
    key: str
    count: int

    @property
    def exhausted(self) -> bool:
        return self.count >= self.limit.maximum

    @property
    def retry_after_s(self) -> int:
        return int(self.limit.window.total_seconds())


def hold(session: Session, *wanted: tuple[Limit, str]) -> list[Counter]:
    """Lock the counter of each (limit, normalised identifier) for this transaction and read it.

    Rows are locked in one fixed order (scope, key), whatever order the caller names them in,
    so two requests that need the same counters cannot deadlock. Returned in the caller's order.
    """
    keyed = [
        (limit, pii.blind_index(identifier, context="throttle:" + limit.scope))
        for limit, identifier in wanted
    ]
    counts: dict[tuple[str, str], int] = {}
    for limit, key in sorted(keyed, key=lambda item: (item[0].scope, item[1])):
        if (limit.scope, key) not in counts:
            counts[(limit.scope, key)] = _lock(session, limit, key)
    return [Counter(limit, key, counts[(limit.scope, key)]) for limit, key in keyed]


def exhausted(counters: Sequence[Counter]) -> Counter | None:
    """The first counter whose limit is reached, if any."""
    return next((counter for counter in counters if counter.exhausted), None)


def count(session: Session, *counters: Counter) -> None:
    """Count one more event on each (already held) counter; the first one starts its window."""
    now = utcnow()
    for counter in counters:
        values: dict[str, object] = {"count": col(Throttle.count) + 1}
        if counter.count == 0:
            values["window_started_at"] = now
        session.execute(
            update(Throttle)
            .where(col(Throttle.scope) == counter.limit.scope)
            .where(col(Throttle.key) == counter.key)
            .values(values)
        )
        counter.count += 1


LONGEST_WINDOW = timedelta(days=1)


def prune(session: Session) -> int:
    """Delete the counters whose window began before the longest window: they can refuse
    nothing any more (their next check would restart them at 0). Returns how many."""
    result = session.execute(
        delete(Throttle).where(col(Throttle.window_started_at) < utcnow() - LONGEST_WINDOW)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _lock(session: Session, limit: Limit, key: str) -> int:
    now = utcnow()
    lapsed = col(Throttle.window_started_at) <= now - limit.window
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(Throttle).values(scope=limit.scope, key=key, window_started_at=now, count=0)
    upsert = statement.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={
            "count": case((lapsed, 0), else_=col(Throttle.count)),
            "window_started_at": case(
                (lapsed, statement.excluded.window_started_at),
                else_=col(Throttle.window_started_at),
            ),
        },
    ).returning(col(Throttle.count))
    return int(session.execute(upsert).scalar_one())


def client_address(host: str | None) -> str:
    """The identifier counted per client address: an IPv4 address (IPv4-mapped IPv6 included)
    or the /64 network of an IPv6 address, which one subscriber usually holds whole."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return host.strip().lower()[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
