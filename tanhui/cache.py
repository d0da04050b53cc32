"""Public, read-mostly views cached until the data under them changes.

Every change the public pages show (a project filed, a batch issued, tonnes retired) writes an
audit record in its own transaction, so the audit chain's head hash names a version of the
database: a value computed after reading that hash stays right until the head moves. Entries
also age out after ``max_age`` seconds, which bounds how long a rare unaudited change (an
organisation renamed) can go unseen. The cache lives in each process and holds a few entries.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlmodel import Session

from tanhui.audit import DATA_VERSION_KEY, read_head

T = TypeVar("T")


def data_version(session: Session) -> tuple[str, str] | None:
    """The database and its audit head hash; None before the first audit record.

    Read once per transaction (and again after the transaction appends an audit record): a
    page that asks several caches (the explorer's projects and its map) reads the head once,
    and all its parts show the same version."""
    transaction = session.get_transaction()
    known = session.info.get(DATA_VERSION_KEY)
    if transaction is not None and known is not None and known[0] is transaction:
        return known[1]  # type: ignore[no-any-return]
    head = read_head(session)
    version = None
    if head is not None:
        version = (session.get_bind().engine.url.render_as_string(hide_password=True), head.hash)
    session.info[DATA_VERSION_KEY] = (session.get_transaction(), version)
    return version


class VersionedCache(Generic[T]):
    """A small LRU of values keyed by (data version, caller's key)."""

    def __init__(self, *, max_entries: int = 64, max_age: float = 30.0) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_age = max_age

    def get(self, session: Session, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key`` at the current data version, computed when missing."""
        version = data_version(session)
        if version is None:
            return compute()
        full_key = (version, key)
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(full_key)
            if found is not None and now - found[0] < self.max_age:
                self._entries.move_to_end(full_key)
                return found[1]
        value = compute()
        with self._lock:
            self._entries[full_key] = (now, value)
            self._entries.move_to_end(full_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
