"""Anchoring the journal's chain heads in the audit chain.

The journal's hash chains catch any change to an entry, but someone with write access to the
database could rewrite the end of a chain *and* its head consistently, recomputing every hash
(ADR 0012). The kernel's audit chain does not have that weakness: its hashes are signed with the
platform key at checkpoints. Recording the wallet's chain heads there from time to time (an
*anchor*: ``tanhui wallet anchor``, from cron) therefore fixes every link up to the anchored
one: ``wallet verify`` checks that the journal still holds each anchored (chain, seq, hash).
Only the latest anchor needs checking: a link's hash covers every link before it.

Anchors are written in their own short transaction, never inside a posting one, so the audit
chain's lock is not taken while balance rows are held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from tanhui import audit
from tanhui.models import AuditRecord
from wallet.models import ChainHead, JournalEntry

ANCHOR_ACTION = "wallet.chains_anchored"


@dataclass(frozen=True)
class Anchor:
    audit_seq: int  # the audit record holding it
    heads: list[tuple[int, int, str]]  # (chain, seq, hash) of every chain with entries


def anchor_chains(session: Session, *, actor: str = "system:wallet") -> Anchor | None:
    """Record the current chain heads in the audit chain; None when no chain has moved since
    the last anchor (or the journal is empty)."""
    # Plain columns, not ORM objects: heads loaded earlier in the session would be stale.
    heads = [
        (int(chain), int(seq), str(digest))
        for chain, seq, digest in session.exec(
            select(ChainHead.chain, ChainHead.seq, ChainHead.hash)
            .where(col(ChainHead.seq) > 0)
            .order_by(col(ChainHead.chain))
        ).all()
    ]
    if not heads:
        return None
    previous = latest_anchor(session)
    if previous is not None and previous.heads == heads:
        return None
    record = audit.record(
        session,
        actor=actor,
        action=ANCHOR_ACTION,
        subject_type="wallet_journal",
        subject_id="chains",
        payload={"heads": [list(head) for head in heads]},
    )
    return Anchor(audit_seq=record.seq, heads=heads)


def latest_anchor(session: Session) -> Anchor | None:
    record = session.exec(
        select(AuditRecord)
        .where(col(AuditRecord.action) == ANCHOR_ACTION)
        .order_by(col(AuditRecord.seq).desc())
        .limit(1)
    ).first()
    if record is None:
        return None
    payload: dict[str, Any] = json.loads(record.payload)
    heads = [(int(chain), int(seq), str(digest)) for chain, seq, digest in payload["heads"]]
    return Anchor(audit_seq=record.seq, heads=heads)


def anchor_faults(session: Session) -> list[str]:
    """What the journal no longer agrees with in the latest anchor (empty when it agrees)."""
    anchor = latest_anchor(session)
    if anchor is None:
        return []
    faults = []
    for chain, seq, digest in anchor.heads:
        found = session.exec(
            select(JournalEntry.hash)
            .where(col(JournalEntry.chain) == chain)
            .where(col(JournalEntry.chain_seq) == seq)
        ).first()
        where = f"chain {chain} seq {seq} (anchored in audit record {anchor.audit_seq})"
        if found is None:
            faults.append(f"{where}: the anchored entry is no longer in the journal")
        elif found != digest:
            faults.append(
                f"{where}: anchored hash {digest[:12]}, the journal now has {found[:12]} "
                "(the chain was rewritten)"
            )
    return faults


def logged_anchor_faults(session: Session) -> list[str]:
    """What the journal no longer agrees with among the anchors *as the transparency log holds
    them*: the audit record of an anchor can be rewritten with the chain, the log entry under a
    checkpoint someone kept cannot (``wallet verify --checkpoint``)."""
    from tanhui.translog.verify import anchored_heads

    faults = []
    for index, heads in anchored_heads(session):
        for chain_id, seq, digest in heads:
            found = session.exec(
                select(JournalEntry.hash)
                .where(col(JournalEntry.chain) == chain_id)
                .where(col(JournalEntry.chain_seq) == seq)
            ).first()
            if found != digest:
                faults.append(
                    f"chain {chain_id} seq {seq} (anchored in log entry {index}): the journal "
                    "no longer holds the logged hash (the chain was rewritten)"
                )
    return faults
