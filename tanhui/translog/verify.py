"""Holding the database against the log and against a checkpoint kept outside it.

``tanhui audit verify --checkpoint FILE`` and ``tanhui wallet verify --checkpoint FILE`` call
:func:`log_faults`: the checkpoint must be signed by a pinned key (never one read from the
database), the stored entries up to its size must hash to its root, every logged audit record
must still be what its entry says, every logged audit head must still be in the chain. The
first fault named is the first differing entry in log order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from tanhui.crypto import key_id_for, unb64
from tanhui.models import AuditRecord
from tanhui.translog import entries, merkle, note
from tanhui.translog.models import LogEntry, LogNode

PAGE = 5_000
_ENTRY = LogEntry.__table__  # type: ignore[attr-defined]
_NODE = LogNode.__table__  # type: ignore[attr-defined]
_RECORD = AuditRecord.__table__  # type: ignore[attr-defined]


def _logged(session: Session) -> Iterator[Any]:
    last = -1
    while True:
        rows = (
            session.connection()
            .execute(
                select(_ENTRY.c.leaf_index, _ENTRY.c.body, _ENTRY.c.kind, _ENTRY.c.audit_seq)
                .where(_ENTRY.c.leaf_index > last)
                .order_by(_ENTRY.c.leaf_index)
                .limit(PAGE)
            )
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].leaf_index


def _stored_leaves(session: Session, start: int, end: int) -> dict[int, str]:
    rows = session.connection().execute(
        select(_NODE.c.node_index, _NODE.c.hash)
        .where(_NODE.c.level == 0)
        .where(_NODE.c.node_index >= start)
        .where(_NODE.c.node_index < end)
    )
    return {int(r.node_index): r.hash for r in rows}


def _record_fault(session: Session, row: Any) -> str | None:
    """What an audit-derived entry no longer agrees with in the audit chain (None: agrees)."""
    from tanhui.audit import content_of

    if row.kind == entries.AUDIT_HEAD_KIND:
        body = json.loads(row.body)
        record = (
            session.connection()
            .execute(select(_RECORD.c.hash).where(_RECORD.c.seq == body["seq"]))
            .first()
        )
        if record is None or record.hash != body["hash"]:
            return (
                f"log entry {row.leaf_index}: the audit chain's hash at record {body['seq']} "
                "is not the one logged (the audit chain was rewritten)"
            )
        return None
    if row.audit_seq is None:
        return None
    found = (
        session.connection().execute(select(_RECORD).where(_RECORD.c.seq == row.audit_seq)).first()
    )
    if found is None:
        return f"log entry {row.leaf_index}: audit record {row.audit_seq} is missing"
    content = content_of(found)
    expected = entries.audited_body(
        seq=found.seq,
        action=found.action,
        subject_type=found.subject_type,
        subject_id=found.subject_id,
        content=content,
        payload_json=found.payload,
    )
    if expected.decode("utf-8") != row.body:
        return (
            f"log entry {row.leaf_index}: audit record {row.audit_seq} ({found.action}) "
            "differs from what was logged"
        )
    return None


def pinned_keys(content: bytes) -> dict[str, bytes]:
    """The platform's keys from a file its operator publishes: the JSON of
    ``GET /api/v1/public/keys`` (only the platform's entries count, never an organisation's) or
    verifier-key lines (``name+hexid+base64``, ``GET /api/v1/public/log/key``)."""
    text = content.decode("utf-8-sig").strip()
    keys: dict[str, bytes] = {}
    if text.startswith("{"):
        data = json.loads(text)
        for item in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(item, dict) or item.get("owner") != "platform":
                continue
            raw = unb64(str(item["public_key"]))
            keys[key_id_for(raw)] = raw
        return keys
    for line in text.splitlines():
        if line.strip():
            raw = note.Verifier.parse(line).public_raw
            keys[key_id_for(raw)] = raw
    return keys


def local_platform_key() -> bytes | None:
    """The platform's public key from the local key file, if this machine has one (never
    created here: a verifier must not mint the key it checks against)."""
    from tanhui.crypto import SigningKey
    from tanhui.settings import get_settings

    try:
        path = get_settings().signing_key_path
        return SigningKey.from_pem(path.read_bytes()).public_raw
    except (OSError, ValueError):
        return None


def open_pinned(checkpoint_note: str, public_keys: list[bytes]) -> note.Checkpoint:
    """The checkpoint, if a pinned key signed it under the note's own origin line."""
    origin = checkpoint_note.split("\n", 1)[0]
    return note.open_checkpoint(checkpoint_note, [note.Verifier(origin, k) for k in public_keys])


def log_faults(
    session: Session, checkpoint: note.Checkpoint | None, *, records: bool = True
) -> list[str]:
    """Every disagreement between the database, its log and ``checkpoint``, first entry first.

    Without a checkpoint only the database against itself (the log's stored hashes and the
    audit records) is checked: that catches a careless rewrite, not a careful one.
    """
    faults: list[str] = []
    frontier: list[tuple[int, bytes]] = []
    size = 0
    stored: dict[int, str] = {}
    for row in _logged(session):
        if row.leaf_index != size:
            faults.append(f"log entry {size} is missing")
            break
        if size % PAGE == 0:
            stored = _stored_leaves(session, size, size + PAGE)
        leaf = merkle.leaf_hash(row.body.encode("utf-8"))
        if stored.get(size) != leaf.hex():
            faults.append(f"log entry {size} no longer hashes to the leaf the tree was built with")
        if records:
            fault = _record_fault(session, row)
            if fault is not None:
                faults.append(fault)
        height, value = 0, leaf
        while frontier and frontier[-1][0] == height:
            value = merkle.node_hash(frontier.pop()[1], value)
            height += 1
        frontier.append((height, value))
        size += 1
        if (
            checkpoint is not None
            and size == checkpoint.size
            and merkle.fold_frontier([v for _, v in frontier]) != checkpoint.root
        ):
            faults.append(
                f"the log's first {checkpoint.size} entries no longer hash to the "
                "checkpoint's root (entries covered by it were rewritten)"
            )
    if checkpoint is not None and size < checkpoint.size:
        faults.append(
            f"the log has {size} entries, the checkpoint covers {checkpoint.size} (truncated)"
        )
    if records:
        faults.extend(_unlogged(session))
    return faults


def _unlogged(session: Session) -> list[str]:
    """Audit records of a public kind that have no log entry (deleted, or never logged)."""
    logged = {
        int(seq)
        for (seq,) in session.connection().execute(
            select(_ENTRY.c.audit_seq).where(_ENTRY.c.audit_seq.is_not(None))
        )
    }
    faults = []
    for seq, action in session.connection().execute(
        select(_RECORD.c.seq, _RECORD.c.action).order_by(_RECORD.c.seq)
    ):
        if entries.is_public(action) and seq not in logged:
            faults.append(f"audit record {seq} ({action}) is a public fact missing from the log")
            break
    return faults


def anchored_heads(session: Session) -> list[tuple[int, list[tuple[int, int, str]]]]:
    """The ledger's chain heads as logged: (leaf index, [(chain, seq, hash)]), in log order."""
    found = []
    for row in _logged(session):
        if row.kind != "wallet.chains_anchored":
            continue
        payload = json.loads(row.body).get("payload", {})
        heads = [(int(c), int(s), str(h)) for c, s, h in payload.get("heads", [])]
        found.append((int(row.leaf_index), heads))
    return found
