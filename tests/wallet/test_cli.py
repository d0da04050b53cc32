"""`tanhui wallet verify` and `tanhui wallet expire-holds`, and tampering caught by verify."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from tanhui.db import utcnow
from tanhui.settings import Settings
from tests.factories import run_cli
from wallet import service
from wallet.models import HoldStatus, JournalEntry
from wallet.service import Transfer


def _ledger(session: Session) -> tuple[uuid.UUID, uuid.UUID, JournalEntry]:
    issuance = service.system_account(session, "issuance", "CNY")
    a = service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
    b = service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
    service.post_entry(session, code="issuance", transfers=[Transfer(issuance.id, a.id, 500)])
    entry = service.post_entry(
        session, code="purchase", transfers=[Transfer(a.id, b.id, 120)], metadata={"order": "1"}
    )
    service.hold(
        session,
        debit_account_id=a.id,
        credit_account_id=b.id,
        amount=30,
        expires_at=utcnow() + timedelta(hours=1),
        code="purchase",
    )
    session.commit()
    return a.id, b.id, entry


def test_verify_passes_on_an_intact_ledger(settings: Settings, session: Session) -> None:
    _ledger(session)
    result = run_cli(settings, "wallet", "verify")
    assert result.returncode == 0, result.stderr
    assert "ledger ok: 3 entries" in result.stdout


TAMPERINGS = {
    "posting amount": "UPDATE wallet_posting SET amount = amount + 1 WHERE entry_id = :entry",
    "metadata": 'UPDATE wallet_entry SET metadata_json = \'{"order":"2"}\' WHERE id = :entry',
    "balance": "UPDATE wallet_balance SET posted_credits = posted_credits + 7"
    " WHERE account_id = :account",
    "code": "UPDATE wallet_entry SET code = 'refund' WHERE id = :entry",
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_verify_names_the_first_fault(settings: Settings, session: Session, tampering: str) -> None:
    a_id, _b_id, entry = _ledger(session)
    params = {"entry": entry.id, "account": a_id}
    if session.get_bind().dialect.name == "sqlite":
        params = {key: value.hex for key, value in params.items()}
    session.execute(text(TAMPERINGS[tampering]), params)
    session.commit()
    result = run_cli(settings, "wallet", "verify")
    assert result.returncode == 1
    assert "ledger fault" in result.stderr
    named = str(a_id) if tampering == "balance" else str(entry.id)
    assert named in result.stderr


def test_verify_catches_a_deleted_entry(settings: Settings, session: Session) -> None:
    _ledger(session)
    last = session.exec(select(JournalEntry).order_by(col(JournalEntry.created_at).desc())).first()
    assert last is not None
    params = {"entry": last.id.hex if session.get_bind().dialect.name == "sqlite" else last.id}
    session.execute(text("DELETE FROM wallet_hold WHERE entry_id = :entry"), params)
    session.execute(text("DELETE FROM wallet_posting WHERE entry_id = :entry"), params)
    session.execute(text("DELETE FROM wallet_entry WHERE id = :entry"), params)
    session.commit()
    result = run_cli(settings, "wallet", "verify")
    assert result.returncode == 1
    assert "ledger fault" in result.stderr


def test_expire_holds_releases_funds(settings: Settings, session: Session) -> None:
    a_id, _b_id, _entry = _ledger(session)
    record = session.exec(select(JournalEntry).where(col(JournalEntry.kind) == "hold")).one()
    hold = service.get_hold(session, record.hold_id) if record.hold_id else None
    assert hold is not None
    hold.expires_at = utcnow() - timedelta(seconds=1)
    session.add(hold)
    session.commit()
    assert service.get_balance(session, a_id).available == 350
    session.commit()
    result = run_cli(settings, "wallet", "expire-holds")
    assert result.returncode == 0, result.stderr
    assert "expired 1 holds" in result.stdout
    session.expire_all()
    assert service.get_hold(session, hold.id).status == HoldStatus.expired
    assert service.get_balance(session, a_id).available == 380
    session.commit()
    assert run_cli(settings, "wallet", "verify").returncode == 0


@pytest.mark.parametrize("command", ["verify", "anchor", "expire-holds"])
def test_wallet_commands_have_help(settings: Settings, command: str) -> None:
    result = run_cli(settings, "wallet", command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
