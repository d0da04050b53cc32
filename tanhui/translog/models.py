"""The transparency log's tables: entries (pending until sequenced), stored perfect subtrees,
the tree head and the signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, SmallInteger, String, Text
from sqlmodel import Field, SQLModel

from tanhui.db import BigIntPK, UTCDateTime, utcnow


class LogEntry(SQLModel, table=True):
    """One public fact. Written by the use case in its own transaction with ``leaf_index``
    unset; the sequencer gives it its place in the tree. ``body`` is the leaf's exact bytes
    (canonical JSON: ids and hashes, never personal data)."""

    __tablename__ = "log_entry"
    __table_args__ = (Index("ix_log_entry_subject", "subject_type", "subject_id"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(sa_type=String(100))
    subject_type: str = Field(sa_type=String(50))
    subject_id: str = Field(sa_type=String(100))
    audit_seq: int | None = Field(default=None, sa_type=BigInteger, index=True)
    body: str = Field(sa_type=Text)
    leaf_index: int | None = Field(default=None, sa_type=BigInteger, unique=True)


class LogNode(SQLModel, table=True):
    """The hash of a perfect subtree: leaves ``[index * 2**level, (index + 1) * 2**level)``."""

    __tablename__ = "log_node"

    level: int = Field(
        sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    node_index: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: str = Field(sa_type=String(64))


class LogHead(SQLModel, table=True):
    """The integrated tree. The sequencer locks this single row: one integrator at a time."""

    __tablename__ = "log_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(default=0, sa_type=BigInteger)
    root: str = Field(sa_type=String(64))
    frontier: str = Field(default="[]", sa_type=Text, description="JSON [[level, hash], ...]")
    audit_seq: int = Field(default=0, sa_type=BigInteger, description="audit head last logged")


class LogCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP signed note) of the tree at ``size``: one per size, ever."""

    __tablename__ = "log_checkpoint"

    size: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    root: str = Field(sa_type=String(64))
    note: str = Field(sa_type=Text)
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
