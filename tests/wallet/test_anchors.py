"""Chain heads anchored in the signed audit chain: a consistent rewrite of a chain (every hash
recomputed, head updated) passes the hash walk alone, and is caught once the heads are anchored."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from tanhui import audit
from tanhui.settings import Settings
from tests.factories import run_cli
from wallet import service
from wallet.models import ChainHead, JournalEntry, Posting
from wallet.service import Transfer, chain


def _post_some(session: Session, count: int) -> None:
    issuance = service.system_account(session, "issuance", "CNY")
    for _ in range(count):
        owner = service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
        service.post_entry(
            session, code="issuance", transfers=[Transfer(issuance.id, owner.id, 100)]
        )
    session.commit()


def _rewrite_a_head(session: Session, note: str) -> tuple[int, int]:
    """Change the metadata of the last entry of a chain and recompute its hash and the head, as
    someone with write access to the database (and the code) could."""
    head = session.exec(
        select(ChainHead).where(col(ChainHead.seq) > 0).order_by(col(ChainHead.chain))
    ).first()
    assert head is not None
    entry = session.exec(
        select(JournalEntry)
        .where(col(JournalEntry.chain) == head.chain)
        .where(col(JournalEntry.chain_seq) == head.seq)
    ).one()
    postings = session.exec(
        select(Posting).where(col(Posting.entry_id) == entry.id).order_by(col(Posting.ordinal))
    ).all()
    entry.metadata_json = f'{{"note":"{note}"}}'
    content = chain.stored_entry_content(entry, list(postings))
    entry.hash = chain.link_hash(entry.prev_hash, content)
    head.hash = entry.hash
    session.add(entry)
    session.add(head)
    session.commit()
    return head.chain, head.seq


def test_an_anchor_catches_a_consistent_rewrite(settings: Settings, session: Session) -> None:
    _post_some(session, 5)
    _rewrite_a_head(session, "rewritten before any anchor")
    assert service.verify_ledger(session).ok  # the hash walk alone cannot tell (ADR 0012)
    session.rollback()

    made = run_cli(settings, "wallet", "anchor")
    assert made.returncode == 0, made.stderr
    assert "anchored" in made.stdout and "chain heads in audit record" in made.stdout
    assert run_cli(settings, "wallet", "verify").returncode == 0

    chain_id, seq = _rewrite_a_head(session, "rewritten after the anchor")
    report = service.verify_ledger(session)
    session.rollback()
    assert not report.ok
    assert f"chain {chain_id} seq {seq}" in str(report.first_fault)
    assert "rewritten" in str(report.first_fault)
    result = run_cli(settings, "wallet", "verify")
    assert result.returncode == 1 and f"chain {chain_id} seq {seq}" in result.stderr
    # the anchor itself is an ordinary, verifiable audit record
    assert audit.verify_chain(session).ok
    session.rollback()


def test_anchoring_records_only_movement(session: Session) -> None:
    assert service.anchor_chains(session) is None  # an empty journal has nothing to anchor
    _post_some(session, 3)
    first = service.anchor_chains(session)
    assert first is not None
    heads = session.exec(
        select(ChainHead.chain, ChainHead.seq, ChainHead.hash).where(col(ChainHead.seq) > 0)
    ).all()
    assert sorted(first.heads) == sorted(tuple(head) for head in heads)
    assert service.anchor_chains(session) is None  # nothing moved since
    session.commit()
    _post_some(session, 1)
    second = service.anchor_chains(session)
    assert second is not None and second.audit_seq > first.audit_seq
    latest = service.latest_anchor(session)
    assert latest == second
    session.commit()
    assert service.verify_ledger(session).ok
