"""The audit chain: every state transition, signed, timestamped and hash-chained.

Domain services call :func:`record` inside the transaction of the change it records, so the
record exists exactly when the change does. Appends lock the single ``audit_head`` row, which
puts concurrent transactions in one order; call :func:`record` late in a use case to keep that
lock short. Every ``audit_checkpoint_every`` records the platform key signs the chain hash, so a
rewrite of the whole chain (hashes recomputed) is still caught by :func:`verify_chain`.

A record of a public kind also becomes a pending entry of the transparency log
(:mod:`tanhui.translog`), whose signed checkpoints anyone can hold against later rewrites.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from tanhui.crypto import (
    SigningKey,
    b64,
    canonical_json,
    load_or_create_signing_key,
    unb64,
    verify_signature,
)
from tanhui.db import utcnow
from tanhui.models import AuditCheckpoint, AuditHead, AuditRecord, SigningKeyRecord
from tanhui.settings import get_settings
from tanhui.translog import entries as log_entries

GENESIS_HASH = "0" * 64
VERIFY_PAGE_SIZE = 5_000


def _content(
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    payload_json: str,
) -> bytes:
    return canonical_json(
        {
            "seq": seq,
            "occurred_at": occurred_at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": [subject_type, subject_id],
            "payload": payload_json,
        }
    )


def content_of(row: Any) -> bytes:
    """The bytes a stored record's chain hash covers."""
    return _content(
        row.seq,
        row.occurred_at,
        row.actor,
        row.action,
        row.subject_type,
        row.subject_id,
        row.payload,
    )


def chain_hash(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()


# Where tanhui.cache keeps the audit head it read in a transaction: a record appended in the
# same transaction moves the head, so the transaction's next read must see it.
DATA_VERSION_KEY = "tanhui.data_version"


_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_RECORD = AuditRecord.__table__  # type: ignore[attr-defined]
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_MOVE_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def read_head(session: Session) -> Any:
    """The chain's tip as a row (``seq``, ``hash``), unlocked; None before the first record."""
    return session.connection().execute(_READ_HEAD).first()


def _ensure_head(session: Session) -> None:
    """Create the head row if missing; concurrent first appends must not both insert it."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(AuditHead).values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing()
    )


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    payload: dict[str, Any] | None = None,
    signing_key: SigningKey | None = None,
) -> AuditRecord:
    """Append one record to the chain in the caller's transaction.

    ``actor`` names who acted (``user:<id>``, ``resident:<id>``, ``system:<job>``); ``action`` is
    a dotted verb (``project.certified``); ``payload`` is what changed, as JSON-safe values.
    """
    session.flush()  # the caller's pending changes first, so that the head is locked last
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).first()
    if head is None:  # the very first record
        _ensure_head(session)
        head = connection.execute(_LOCK_HEAD).one()
    seq = head.seq + 1
    occurred_at = utcnow()
    payload_json = canonical_json(payload or {}).decode("utf-8")
    subject = str(subject_id)
    content = _content(seq, occurred_at, actor, action, subject_type, subject, payload_json)
    digest = chain_hash(head.hash, content)
    values = {
        "seq": seq,
        "occurred_at": occurred_at,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject,
        "payload": payload_json,
        "prev_hash": head.hash,
        "hash": digest,
    }
    # Core statements, not the unit of work: every audited change pays for this, inside the
    # platform-wide head lock.
    connection.execute(_RECORD.insert(), values)
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    session.info.pop(DATA_VERSION_KEY, None)  # the version a cache read in this transaction
    if log_entries.is_public(action):
        log_entries.append(
            session,
            kind=action,
            subject_type=subject_type,
            subject_id=subject,
            audit_seq=seq,
            entry=log_entries.audited_body(
                seq=seq,
                action=action,
                subject_type=subject_type,
                subject_id=subject,
                content=content,
                payload_json=payload_json,
            ),
        )
    entry = AuditRecord(**values)
    if seq % get_settings().audit_checkpoint_every == 0:
        checkpoint(session, signing_key=signing_key, seq=seq, digest=digest)
    return entry


def platform_signing_key() -> SigningKey:
    """The platform's Ed25519 key from ``TANHUI_SIGNING_KEY_FILE`` (created on first use)."""
    return load_or_create_signing_key(get_settings().signing_key_path)


def register_public_key(session: Session, key: SigningKey, owner: str) -> None:
    """Remember a public key so that signatures made with it stay verifiable after rotation."""
    if session.get(SigningKeyRecord, key.key_id) is None:
        session.add(
            SigningKeyRecord(key_id=key.key_id, owner=owner, public_key=b64(key.public_raw))
        )
        session.flush()


def checkpoint(
    session: Session,
    *,
    signing_key: SigningKey | None = None,
    seq: int | None = None,
    digest: str | None = None,
) -> AuditCheckpoint | None:
    """Sign the chain hash at ``seq`` (default: the current head). None for an empty chain."""
    if seq is None or digest is None:
        head = read_head(session)
        if head is None or head.seq == 0:
            return None
        seq, digest = head.seq, head.hash
    existing = session.get(AuditCheckpoint, seq)
    if existing is not None:
        return existing
    key = signing_key or platform_signing_key()
    register_public_key(session, key, "platform")
    signed = AuditCheckpoint(
        seq=seq,
        hash=digest,
        key_id=key.key_id,
        signature=key.sign(_checkpoint_message(seq, digest)),
    )
    session.add(signed)
    session.flush()
    return signed


def _checkpoint_message(seq: int, digest: str) -> bytes:
    return canonical_json({"audit_checkpoint": {"seq": seq, "hash": digest}})


@dataclass(frozen=True)
class ChainReport:
    records: int
    checkpoints: int
    first_broken_seq: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def _iter_records(session: Session) -> Iterator[AuditRecord]:
    last = 0
    while True:
        rows = session.exec(
            select(AuditRecord)
            .where(col(AuditRecord.seq) > last)
            .order_by(col(AuditRecord.seq))
            .limit(VERIFY_PAGE_SIZE)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def list_records(
    session: Session, *, before_seq: int | None = None, limit: int = 50
) -> list[AuditRecord]:
    """The newest records first, a page at a time (``before_seq`` is the cursor)."""
    query = select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(min(limit, 500))
    if before_seq is not None:
        query = query.where(col(AuditRecord.seq) < before_seq)
    return list(session.exec(query).all())


def verify_chain(session: Session, trusted: dict[str, bytes] | None = None) -> ChainReport:
    """Recompute the chain; name the first record whose link or content does not hold.

    ``trusted`` pins the keys a checkpoint signature may verify with (key id → raw key); without
    it the keys come from the database itself, which anyone who can rewrite the chain can
    also extend.
    """
    checkpoints = {cp.seq: cp for cp in session.exec(select(AuditCheckpoint)).all()}
    keys = (
        {key_id: b64(raw) for key_id, raw in trusted.items()}
        if trusted is not None
        else {key.key_id: key.public_key for key in session.exec(select(SigningKeyRecord)).all()}
    )
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for row in _iter_records(session):
        count += 1
        if row.seq != expected_seq:
            return ChainReport(count, len(checkpoints), expected_seq, "record missing")
        if row.prev_hash != prev_hash:
            return ChainReport(count, len(checkpoints), row.seq, "prev_hash does not link")
        content = _content(
            row.seq,
            row.occurred_at,
            row.actor,
            row.action,
            row.subject_type,
            row.subject_id,
            row.payload,
        )
        if chain_hash(prev_hash, content) != row.hash:
            return ChainReport(count, len(checkpoints), row.seq, "content does not match hash")
        signed = checkpoints.get(row.seq)
        if signed is not None:
            public = keys.get(signed.key_id)
            if (
                public is None
                or signed.hash != row.hash
                or not verify_signature(
                    unb64(public), _checkpoint_message(row.seq, row.hash), signed.signature
                )
            ):
                return ChainReport(count, len(checkpoints), row.seq, "checkpoint signature fails")
        prev_hash = row.hash
        expected_seq += 1
    head = read_head(session)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev_hash):
        return ChainReport(
            count, len(checkpoints), expected_seq, "records after the last are missing"
        )
    return ChainReport(count, len(checkpoints), None, None)
