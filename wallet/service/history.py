"""An account's history: its postings, oldest first, in cursor pages (and as CSV)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from tanhui import spreadsheets
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from wallet.models import JournalEntry, Layer, Posting, Side
from wallet.service.accounts import get_account

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
MAX_CSV_ROWS = 100_000
CSV_COLUMNS = (
    "posting_id",
    "entry_id",
    "created_at",
    "kind",
    "code",
    "layer",
    "side",
    "amount",
    "asset",
    "hold_id",
    "reverses_id",
    "metadata",
)


@dataclass(frozen=True)
class PostingLine:
    id: int
    entry_id: uuid.UUID
    created_at: datetime
    kind: str
    code: str
    layer: str
    side: str
    amount: int
    asset: str
    hold_id: uuid.UUID | None
    reverses_id: uuid.UUID | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PostingPage:
    items: list[PostingLine]
    next_cursor: str | None


@dataclass(frozen=True)
class CodeTotals:
    """What one business code (``settlement``, ``reward_reimbursement``…) posted on an account."""

    code: str
    debits: int
    credits: int
    entries: int


def totals_by_code(
    session: Session,
    account_id: uuid.UUID,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, CodeTotals]:
    """The account's posted debits and credits summed per entry code, and how many entries
    posted them: one aggregate query (a transparency figure straight from the journal). With
    ``since`` / ``until``, only entries made in [since, until)."""
    get_account(session, account_id)
    query = (
        select(
            JournalEntry.code,
            Posting.side,
            func.coalesce(func.sum(Posting.amount), 0),
            func.count(func.distinct(Posting.entry_id)),
        )
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_id) == account_id)
        .where(col(Posting.layer) == Layer.posted)
        .group_by(col(JournalEntry.code), col(Posting.side))
    )
    rows = session.exec(_made_in(query, since, until)).all()
    sums: dict[str, list[int]] = {}
    entries: dict[str, int] = {}
    for code, side, amount, count in rows:
        slot = sums.setdefault(code, [0, 0])
        slot[0 if side == Side.debit else 1] += int(amount or 0)
        entries[code] = max(entries.get(code, 0), int(count or 0))
    return {
        code: CodeTotals(code=code, debits=pair[0], credits=pair[1], entries=entries[code])
        for code, pair in sums.items()
    }


def count_entries(
    session: Session,
    *,
    account_ids: Iterable[uuid.UUID],
    code: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """How many posted entries of ``code`` touched any of the accounts (each entry once), made
    in [since, until) when given."""
    wanted = list(account_ids)
    if not wanted:
        return 0
    query = (
        select(func.count(func.distinct(Posting.entry_id)))
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_id).in_(wanted))
        .where(col(Posting.layer) == Layer.posted)
        .where(col(JournalEntry.code) == code)
    )
    count = session.exec(_made_in(query, since, until)).one()
    return int(count or 0)


def _made_in(query: Any, since: datetime | None, until: datetime | None) -> Any:
    """``query`` limited to journal entries made in [since, until)."""
    if since is not None:
        query = query.where(col(JournalEntry.created_at) >= since)
    if until is not None:
        query = query.where(col(JournalEntry.created_at) < until)
    return query


def postings_of_code(
    session: Session, account_id: uuid.UUID, *, code: str, limit: int = DEFAULT_PAGE_SIZE
) -> list[PostingLine]:
    """The account's posted postings of entries of ``code``, newest first, at most ``limit``
    (e.g. the reimbursements a merchant received: one query, no page cursor)."""
    get_account(session, account_id)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(N_("limit must be between 1 and {maximum}."), maximum=MAX_PAGE_SIZE)
    rows = session.exec(
        select(Posting, JournalEntry)
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_id) == account_id)
        .where(col(Posting.layer) == Layer.posted)
        .where(col(JournalEntry.code) == code)
        .order_by(col(Posting.id).desc())
        .limit(limit)
    ).all()
    return [_line(posting, entry) for posting, entry in rows]


@dataclass(frozen=True)
class EntryCredit:
    """What one entry credited to an account (its credit postings there summed)."""

    entry_id: uuid.UUID
    created_at: datetime
    amount: int
    metadata: dict[str, Any]
    cursor: int  # the entry's last posting id: pass it as ``before`` for older entries


def credits_by_entry(
    session: Session,
    account_id: uuid.UUID,
    *,
    code: str,
    before: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> list[EntryCredit]:
    """Entries of ``code`` that credited the account, newest first, each once with its credit
    postings there summed (an entry may credit the same account in several legs): one
    grouped query, paged by ``before`` (the ``cursor`` of the last item of the page before)."""
    get_account(session, account_id)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(N_("limit must be between 1 and {maximum}."), maximum=MAX_PAGE_SIZE)
    last_posting = func.max(Posting.id)
    query = (
        select(
            Posting.entry_id,
            func.sum(Posting.amount),
            last_posting,
        )
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_id) == account_id)
        .where(col(Posting.layer) == Layer.posted)
        .where(col(Posting.side) == Side.credit)
        .where(col(JournalEntry.code) == code)
        .group_by(col(Posting.entry_id))
        .order_by(last_posting.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.having(last_posting < before)
    rows = session.exec(query).all()
    if not rows:
        return []
    entries = {
        entry.id: entry
        for entry in session.exec(
            select(JournalEntry).where(col(JournalEntry.id).in_([row[0] for row in rows]))
        ).all()
    }
    return [
        EntryCredit(
            entry_id=entry_id,
            created_at=entries[entry_id].created_at,
            amount=int(amount),
            metadata=json.loads(entries[entry_id].metadata_json),
            cursor=int(cursor or 0),
        )
        for entry_id, amount, cursor in rows
    ]


def _line(posting: Posting, entry: JournalEntry) -> PostingLine:
    return PostingLine(
        id=int(posting.id or 0),
        entry_id=entry.id,
        created_at=entry.created_at,
        kind=entry.kind,
        code=entry.code,
        layer=posting.layer,
        side=posting.side,
        amount=posting.amount,
        asset=posting.asset,
        hold_id=entry.hold_id,
        reverses_id=entry.reverses_id,
        metadata=json.loads(entry.metadata_json),
    )


def _cursor_value(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidInput(N_("The cursor {cursor} is not valid."), cursor=cursor)
    return int(cursor)


def list_postings(
    session: Session,
    account_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    max_limit: int = MAX_PAGE_SIZE,
) -> PostingPage:
    """Postings of the account after ``cursor`` (the ``next_cursor`` of the previous page).

    Postings are ordered by their id, which grows with insertion; an entry committed late may
    carry a smaller id than one already listed, so a reader following the newest page may see it
    only on a re-read from an earlier cursor.
    """
    get_account(session, account_id)
    if not 1 <= limit <= max_limit:
        raise InvalidInput(N_("limit must be between 1 and {maximum}."), maximum=max_limit)
    after = _cursor_value(cursor)
    rows = session.exec(
        select(Posting, JournalEntry)
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_id) == account_id)
        .where(col(Posting.id) > after)
        .order_by(col(Posting.id))
        .limit(limit + 1)
    ).all()
    items = [_line(posting, entry) for posting, entry in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return PostingPage(items=items, next_cursor=next_cursor)


def postings_csv(lines: Iterable[PostingLine]) -> str:
    """The lines as CSV (UTF-8, header row, amounts as integers in the asset's smallest unit)."""
    buffer = io.StringIO()
    writer = spreadsheets.csv_writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.id,
                line.entry_id,
                line.created_at.isoformat(),
                line.kind,
                line.code,
                line.layer,
                line.side,
                line.amount,
                line.asset,
                line.hold_id or "",
                line.reverses_id or "",
                _csv_safe(json.dumps(line.metadata, ensure_ascii=False, sort_keys=True)),
            ]
        )
    return buffer.getvalue()


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
