"""Issue 17's tampering attacks on a copy of the database, each caught by `audit verify` /
`wallet verify` given a checkpoint saved before the tampering (and missed without it, which is
what a careful attacker who rebuilds the log achieves)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, col, select

from tanhui import audit
from tanhui.crypto import SigningKey, b64
from tanhui.settings import Settings
from tanhui.translog import entries
from tanhui.translog import service as log
from tests.factories import run_cli
from wallet import service as wallet
from wallet.models import BalanceShard, ChainHead, JournalEntry, Posting
from wallet.service import Transfer, chain
from wallet.service.anchors import ANCHOR_ACTION

YUAN_100K = 100_000 * 100  # fen


def _facts(session: Session) -> None:
    for index in range(6):
        audit.record(
            session,
            actor="user:test",
            action="credits.retired",
            subject_type="retirement",
            subject_id=f"r-{index}",
            payload={"quantity_t": 120 + index},
        )
        audit.record(
            session,
            actor="user:test",
            action="user.created",
            subject_type="user",
            subject_id=f"u-{index}",
            payload={},
        )
    issuance = wallet.system_account(session, "issuance", "CNY")
    for _ in range(3):
        owner = wallet.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
        wallet.post_entry(
            session, code="payment", transfers=[Transfer(issuance.id, owner.id, 5_000)]
        )
    session.commit()
    assert wallet.anchor_chains(session) is not None
    session.commit()
    log.sequence(session)
    session.commit()


def _keep_checkpoint(session: Session, tmp_path: Path) -> Path:
    signed = log.current_checkpoint(session)
    session.commit()
    assert signed is not None
    path = tmp_path / "checkpoint.txt"
    path.write_text(signed.note, "utf-8")
    return path


def _rechain_audit(session: Session, *, key: SigningKey | None = None) -> None:
    """Recompute every audit hash, move the head, replace the checkpoints (signed with ``key``,
    registered in the database as a platform key) or delete them."""
    prev = audit.GENESIS_HASH
    rows = session.exec(select(audit.AuditRecord).order_by(col(audit.AuditRecord.seq))).all()
    for row in rows:
        row.prev_hash = prev
        row.hash = audit.chain_hash(prev, audit.content_of(row))
        prev = row.hash
        session.add(row)
    session.flush()
    session.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    session.execute(text("DELETE FROM audit_checkpoint"))
    if key is not None:
        session.execute(
            text(
                "INSERT INTO signing_key (key_id, owner, public_key, created_at) "
                "VALUES (:k, 'platform', :p, CURRENT_TIMESTAMP)"
            ),
            {"k": key.key_id, "p": b64(key.public_raw)},
        )
        session.flush()
        audit.checkpoint(session, signing_key=key)
    session.commit()


def _rebuild_log(session: Session) -> None:
    """Make the log agree with the rewritten records and rebuild the tree, as a careful attacker
    with the code would (the platform's key, outside the database, stays out of reach)."""
    for row in session.execute(text("SELECT id, body, audit_seq, kind FROM log_entry")).all():
        body = json.loads(row.body)
        if row.kind == entries.AUDIT_HEAD_KIND:
            record = session.get(audit.AuditRecord, body["seq"])
            assert record is not None
            new = entries.body(
                row.kind, "audit_chain", str(record.seq), {"seq": record.seq, "hash": record.hash}
            )
        elif row.audit_seq is not None:
            record = session.get(audit.AuditRecord, row.audit_seq)
            assert record is not None
            new = entries.audited_body(
                seq=record.seq,
                action=record.action,
                subject_type=record.subject_type,
                subject_id=record.subject_id,
                content=audit.content_of(record),
                payload_json=record.payload,
            )
        else:
            continue
        session.execute(
            text("UPDATE log_entry SET body = :b WHERE id = :i"), {"b": new.decode(), "i": row.id}
        )
    session.execute(text("UPDATE log_entry SET leaf_index = NULL"))
    session.execute(text("DELETE FROM log_node"))
    session.execute(text("DELETE FROM log_head"))
    session.execute(text("DELETE FROM log_checkpoint"))
    session.flush()
    log.integrate(session, limit=100_000)
    session.commit()


def _rewrite_retirement(session: Session) -> int:
    record = session.exec(
        select(audit.AuditRecord)
        .where(col(audit.AuditRecord.action) == "credits.retired")
        .order_by(col(audit.AuditRecord.seq))
    ).first()
    assert record is not None
    record.payload = '{"quantity_t":1000000}'
    session.add(record)
    session.commit()
    return record.seq


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    done = run_cli(settings, *args)
    return done.returncode, done.stdout + done.stderr


def test_a_rewritten_audit_record_is_caught_against_the_checkpoint(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    _facts(session)
    held = _keep_checkpoint(session, tmp_path)
    assert _run(settings, "audit", "verify", "--checkpoint", str(held))[0] == 0

    seq = _rewrite_retirement(session)
    _rechain_audit(session)  # hashes recomputed, head moved, checkpoints deleted
    code, out = _run(settings, "audit", "verify")
    assert code == 1 and f"audit record {seq}" in out  # the log still holds the old record

    _rebuild_log(session)  # ... and the log made to agree with it
    assert _run(settings, "audit", "verify")[0] == 0  # the database agrees with itself
    code, out = _run(settings, "audit", "verify", "--checkpoint", str(held))
    assert code == 1 and "checkpoint's root" in out


def test_a_key_inserted_into_the_database_signs_nothing_that_verifies(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    _facts(session)
    for _ in range(3):
        audit.checkpoint(session)
    session.commit()
    held = _keep_checkpoint(session, tmp_path)
    _rewrite_retirement(session)
    _rechain_audit(session, key=SigningKey.generate())
    _rebuild_log(session)
    code, out = _run(settings, "audit", "verify")
    assert code == 1 and "checkpoint signature fails" in out
    code, out = _run(settings, "audit", "verify", "--checkpoint", str(held))
    assert code == 1
    # a checkpoint the attacker signs with their own key is refused as well
    forged = log.sign_head(session, key=SigningKey.generate())
    session.commit()
    assert forged is not None
    (tmp_path / "forged.txt").write_text(forged.note, "utf-8")
    code, out = _run(settings, "audit", "verify", "--checkpoint", str(tmp_path / "forged.txt"))
    assert code == 1 and "not signed by a pinned key" in out


def _inflate_a_payment(session: Session) -> tuple[int, int]:
    """Add 100,000 CNY to both legs of the last entry of a chain, fix the balances, rehash the
    entry and the head, and rewrite the anchor to the new hash."""
    head = session.exec(
        select(ChainHead).where(col(ChainHead.seq) > 0).order_by(col(ChainHead.chain))
    ).first()
    assert head is not None
    entry = session.exec(
        select(JournalEntry)
        .where(col(JournalEntry.chain) == head.chain)
        .where(col(JournalEntry.chain_seq) == head.seq)
    ).one()
    postings = list(
        session.exec(
            select(Posting).where(col(Posting.entry_id) == entry.id).order_by(col(Posting.ordinal))
        ).all()
    )
    for posting in postings:
        posting.amount += YUAN_100K
        session.add(posting)
        shard = session.exec(
            select(BalanceShard).where(col(BalanceShard.account_id) == posting.account_id)
        ).first()
        assert shard is not None
        if posting.side == "D":
            shard.posted_debits += YUAN_100K
        else:
            shard.posted_credits += YUAN_100K
        session.add(shard)
    old = entry.hash
    entry.hash = chain.link_hash(entry.prev_hash, chain.stored_entry_content(entry, postings))
    head.hash = entry.hash
    session.add(entry)
    session.add(head)
    anchor = session.exec(
        select(audit.AuditRecord).where(col(audit.AuditRecord.action) == ANCHOR_ACTION)
    ).one()
    anchor.payload = anchor.payload.replace(old, entry.hash)
    session.add(anchor)
    session.commit()
    return head.chain, head.seq


def test_an_inflated_payment_is_caught_against_the_checkpoint(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    _facts(session)
    held = _keep_checkpoint(session, tmp_path)
    assert _run(settings, "wallet", "verify", "--checkpoint", str(held))[0] == 0
    _inflate_a_payment(session)
    _rechain_audit(session)
    _rebuild_log(session)
    assert _run(settings, "wallet", "verify")[0] == 0  # the old checks see nothing
    assert _run(settings, "audit", "verify")[0] == 0
    code, out = _run(settings, "wallet", "verify", "--checkpoint", str(held))
    assert code == 1 and "checkpoint's root" in out
    code, out = _run(settings, "audit", "verify", "--checkpoint", str(held))
    assert code == 1 and "checkpoint's root" in out


def test_an_inflated_payment_without_a_rebuilt_log_names_the_chain(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    _facts(session)
    held = _keep_checkpoint(session, tmp_path)
    chain_id, seq = _inflate_a_payment(session)
    _rechain_audit(session)
    code, out = _run(settings, "wallet", "verify", "--checkpoint", str(held))
    assert code == 1 and f"chain {chain_id} seq {seq}" in out
