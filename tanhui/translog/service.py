"""The log kept in the database: sequencing, checkpoints and proofs.

Writers only INSERT pending entries (:mod:`tanhui.translog.entries`). :func:`sequence` — the
``tanhui log sequence`` loop on PostgreSQL, or inline on SQLite — locks the single ``log_head``
row with ``FOR UPDATE SKIP LOCKED`` (a second sequencer gives up at once instead of waiting),
gives the pending entries their leaf indices in id order, stores the new perfect subtrees and
the right edge (the *frontier*), and signs a checkpoint. A leaf index and a checkpoint size are
unique in the schema, so even a broken lock could not make two trees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from tanhui.crypto import SigningKey, load_or_create_signing_key
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.settings import get_settings
from tanhui.translog import entries, merkle, note
from tanhui.translog.models import LogCheckpoint, LogEntry, LogHead, LogNode

BATCH = 1_000
MAX_PAGE = 1_000

_ENTRY = LogEntry.__table__  # type: ignore[attr-defined]
_NODE = LogNode.__table__  # type: ignore[attr-defined]
_HEAD = LogHead.__table__  # type: ignore[attr-defined]
_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]
_PLACE = (
    _ENTRY.update()
    .where(_ENTRY.c.id == bindparam("entry_id"))
    .values(leaf_index=bindparam("new_index"))
)


class LogError(DomainError):
    """A request the log cannot answer (a proof beyond the tree, a malformed range)."""

    code = "log-range"
    status = 422
    title = N_("Outside the log")


# --- identity: the origin line and the pinned key ----------------------------------------------


def origin() -> str:
    """The checkpoint's origin line: the platform's host and ``/log`` (schema-less URL)."""
    parts = urlsplit(get_settings().base_url)
    return f"{parts.netloc or 'tanhui.local'}{parts.path.rstrip('/')}/log"


@lru_cache(maxsize=4)
def _key_at(path: Path, mtime: float) -> SigningKey:
    return load_or_create_signing_key(path)


def log_key() -> SigningKey:
    """The platform key (it signs checkpoints and certificates), read once per file version."""
    path = get_settings().signing_key_path
    return _key_at(path, path.stat().st_mtime if path.exists() else 0.0)


def verifier(key: SigningKey | None = None) -> note.Verifier:
    return note.Verifier(origin(), (key or log_key()).public_raw)


# --- sequencing ----------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _lock_head(session: Session, *, wait: bool) -> Any:
    """The head row, locked; None when another sequencer holds it (and ``wait`` is false)."""
    connection = session.connection()
    connection.execute(
        _insert(session)(_HEAD)
        .values(id=1, size=0, root=merkle.EMPTY_ROOT.hex(), frontier="[]", audit_seq=0)
        .on_conflict_do_nothing()
    )
    query = select(_HEAD).where(_HEAD.c.id == 1)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=not wait)
    return connection.execute(query).first()


def integrate(session: Session, *, limit: int = BATCH, wait: bool = True) -> int | None:
    """Place pending entries in the tree (at most ``limit``); the new size, or None when another
    sequencer is integrating."""
    head = _lock_head(session, wait=wait)
    if head is None:
        return None
    connection = session.connection()
    pending = connection.execute(
        select(_ENTRY.c.id, _ENTRY.c.body)
        .where(_ENTRY.c.leaf_index.is_(None))
        .order_by(_ENTRY.c.id)
        .limit(limit)
    ).all()
    if not pending:
        return int(head.size)
    size = int(head.size)
    frontier: list[tuple[int, bytes]] = [
        (h, bytes.fromhex(v)) for h, v in json.loads(head.frontier)
    ]
    nodes: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    for row in pending:
        index = size
        value = merkle.leaf_hash(row.body.encode("utf-8"))
        height = 0
        nodes.append({"level": 0, "node_index": index, "hash": value.hex()})
        while frontier and frontier[-1][0] == height:
            value = merkle.node_hash(frontier.pop()[1], value)
            height += 1
            nodes.append({"level": height, "node_index": index >> height, "hash": value.hex()})
        frontier.append((height, value))
        places.append({"entry_id": row.id, "new_index": index})
        size += 1
    connection.execute(_PLACE, places)
    connection.execute(_NODE.insert(), nodes)
    root = merkle.fold_frontier([value for _, value in frontier])
    connection.execute(
        _HEAD.update()
        .where(_HEAD.c.id == 1)
        .values(
            size=size,
            root=root.hex(),
            frontier=json.dumps([[h, v.hex()] for h, v in frontier]),
        )
    )
    return size


def _log_audit_head(session: Session) -> None:
    """Fold the audit chain into the log: an entry with its head (seq and hash) whenever it
    moved. A later rewrite of any audit record up to that seq changes the chain hash there."""
    from tanhui.audit import read_head

    audit_head = read_head(session)
    logged = session.connection().execute(select(_HEAD.c.audit_seq).where(_HEAD.c.id == 1))
    last = logged.scalar() or 0
    if audit_head is None or audit_head.seq <= last:
        return
    entries.append(
        session,
        kind=entries.AUDIT_HEAD_KIND,
        subject_type="audit_chain",
        subject_id=str(audit_head.seq),
        entry=entries.body(
            entries.AUDIT_HEAD_KIND,
            "audit_chain",
            str(audit_head.seq),
            {"seq": audit_head.seq, "hash": audit_head.hash},
        ),
    )
    session.connection().execute(
        _HEAD.update().where(_HEAD.c.id == 1).values(audit_seq=audit_head.seq)
    )


def sequence(
    session: Session, *, limit: int = BATCH, key: SigningKey | None = None
) -> LogCheckpoint | None:
    """One sequencer step: log the audit head, integrate, sign. None when another sequencer
    holds the head (it will do the work)."""
    if _lock_head(session, wait=False) is None:
        return None
    _log_audit_head(session)
    if integrate(session, limit=limit) is None:
        return None
    return sign_head(session, key=key)


def run_sequencer(
    engine: Any, *, interval_s: float = 0.25, limit: int = BATCH, once: bool = False
) -> Iterator[LogCheckpoint | None]:
    """``tanhui log sequence``: one step every ``interval_s`` (sooner while a batch was full)."""
    from tanhui.db import unit_of_work

    while True:
        with unit_of_work(engine) as session:
            signed = sequence(session, limit=limit)
        yield signed
        if once:
            return
        if signed is None or signed.size % limit:
            time.sleep(interval_s)


def head(session: Session) -> tuple[int, bytes]:
    row = session.connection().execute(select(_HEAD.c.size, _HEAD.c.root)).first()
    if row is None:
        return 0, merkle.EMPTY_ROOT
    return int(row.size), bytes.fromhex(row.root)


def sign_head(session: Session, *, key: SigningKey | None = None) -> LogCheckpoint | None:
    """The checkpoint of the current tree, signed once per size (None for an empty log)."""
    size, root = head(session)
    if size == 0:
        return None
    existing = session.get(LogCheckpoint, size)
    if existing is not None:
        return existing
    key = key or log_key()
    signed = note.sign_checkpoint(note.Checkpoint(origin(), size, root), origin(), key)
    session.connection().execute(
        _insert(session)(_CHECKPOINT)
        .values(size=size, root=root.hex(), note=signed, signed_at=_now())
        .on_conflict_do_nothing()
    )
    return session.get(LogCheckpoint, size)


def _now() -> Any:
    from tanhui.db import utcnow

    return utcnow()


def latest_checkpoint(session: Session) -> LogCheckpoint | None:
    return session.exec(
        select(LogCheckpoint).order_by(col(LogCheckpoint.size).desc()).limit(1)
    ).first()


def current_checkpoint(session: Session) -> LogCheckpoint | None:
    """The newest signed checkpoint, signing the integrated tree first if no checkpoint covers
    it yet (idempotent: one per size, and Ed25519 signatures are deterministic)."""
    latest = latest_checkpoint(session)
    size, _ = head(session)
    if size and (latest is None or latest.size < size):
        return sign_head(session)
    return latest


# --- reading: entries and proofs ------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    index: int
    body: str


def leaves(session: Session, start: int, end: int) -> list[Leaf]:
    size, _ = head(session)
    if not 0 <= start < end or end - start > MAX_PAGE:
        raise LogError(
            N_("Ask for 1 to {maximum} entries, with start below end."), maximum=MAX_PAGE
        )
    end = min(end, size)
    if start >= end:  # past the tree (and never a number too large for the database)
        return []
    rows = session.connection().execute(
        select(_ENTRY.c.leaf_index, _ENTRY.c.body)
        .where(_ENTRY.c.leaf_index >= start)
        .where(_ENTRY.c.leaf_index < end)
        .order_by(_ENTRY.c.leaf_index)
    )
    return [Leaf(int(r.leaf_index), r.body) for r in rows]


def _range_hashes(session: Session, ranges: list[tuple[int, int]]) -> list[bytes]:
    parts = {p for start, end in ranges for p in merkle.perfect_ranges(start, end)}
    found: dict[tuple[int, int], bytes] = {}
    wanted = sorted(parts)
    for chunk in range(0, len(wanted), 500):
        rows = session.connection().execute(
            select(_NODE.c.level, _NODE.c.node_index, _NODE.c.hash).where(
                tuple_(_NODE.c.level, _NODE.c.node_index).in_(wanted[chunk : chunk + 500])
            )
        )
        found.update({(int(r.level), int(r.node_index)): bytes.fromhex(r.hash) for r in rows})
    missing = parts - found.keys()
    if missing:
        raise LogError(N_("The log is missing stored subtrees."), missing=sorted(missing)[:3])
    return [
        merkle.fold_frontier([found[p] for p in merkle.perfect_ranges(start, end)])
        for start, end in ranges
    ]


def _check_size(session: Session, tree_size: int) -> None:
    size, _ = head(session)
    if not 0 < tree_size <= size:
        raise LogError(
            N_("The log has {size} entries: ask for a tree size from 1 to {size}."), size=size
        )


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    _check_size(session, tree_size)
    if not 0 <= index < tree_size:
        raise LogError(
            N_("Entry {index} is not in a tree of {tree_size} entries."),
            index=index,
            tree_size=tree_size,
        )
    return _range_hashes(session, merkle.inclusion_ranges(index, tree_size))


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    _check_size(session, second)
    if not 0 < first <= second:
        raise LogError(
            N_("There is no consistency proof from {first} to {second} (0 < first <= second)."),
            first=first,
            second=second,
        )
    if first == second:
        return []
    return _range_hashes(session, merkle.consistency_ranges(first, second))


def root_at(session: Session, size: int) -> bytes:
    _check_size(session, size)
    return _range_hashes(session, [(0, size)])[0]


def entry_for_audit(session: Session, audit_seq: int) -> LogEntry | None:
    return session.exec(select(LogEntry).where(col(LogEntry.audit_seq) == audit_seq)).first()


def entry_for(session: Session, subject_type: str, subject_id: str, kind: str) -> LogEntry | None:
    return session.exec(
        select(LogEntry)
        .where(col(LogEntry.subject_type) == subject_type)
        .where(col(LogEntry.subject_id) == subject_id)
        .where(col(LogEntry.kind) == kind)
        .order_by(col(LogEntry.id))
    ).first()
