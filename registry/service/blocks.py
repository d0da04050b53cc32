"""Serial blocks: taking tonnes out of a holder's blocks, splitting where needed.

The blocks of a batch tile 1..total without gaps or overlaps; every operation here keeps that.
Concurrency: the holder's candidate blocks are locked ``FOR UPDATE`` in serial order (one order
for everybody, so no deadlock between two takers). When a block is split, the *existing row*
keeps the part that stays and a new row gets the part taken: a transaction that was waiting on
the row then re-reads it, still matching, with what is left. So two retirements of the same
tonnes never both succeed, and neither fails for tonnes that are really there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from registry.errors import InsufficientCredits
from registry.models import Batch, BlockState, SerialBlock, SerialMovement
from registry.serials import block_serial
from tanhui.db import utcnow
from tanhui.i18n import N_


def lock_blocks(
    session: Session,
    *,
    batch_id: uuid.UUID,
    holder: str,
    state: BlockState = BlockState.held,
    listing_ref: str | None = None,
    pledge_id: uuid.UUID | None = None,
) -> list[SerialBlock]:
    query = (
        select(SerialBlock)
        .where(col(SerialBlock.batch_id) == batch_id)
        .where(col(SerialBlock.holder) == holder)
        .where(col(SerialBlock.state) == state)
    )
    if listing_ref is not None:
        query = query.where(col(SerialBlock.listing_ref) == listing_ref)
    if pledge_id is not None:
        query = query.where(col(SerialBlock.pledge_id) == pledge_id)
    return list(session.exec(query.order_by(col(SerialBlock.first)).with_for_update()).all())


def take(
    session: Session,
    *,
    batch_id: uuid.UUID,
    holder: str,
    quantity: int,
    lowest: bool = True,
    state: BlockState = BlockState.held,
    listing_ref: str | None = None,
    pledge_id: uuid.UUID | None = None,
) -> list[SerialBlock]:
    """Rows covering exactly ``quantity`` tonnes of the holder's blocks in ``state``.

    ``lowest``: the lowest serials first (retirements); otherwise the highest (transfers: the
    owner keeps the first sub-block, the recipient gets the last). The caller then changes the
    returned rows (holder, state ...); the rest stays as it was.
    """
    if quantity <= 0:
        raise InsufficientCredits(N_("The quantity must be a positive number of tonnes."))
    blocks = lock_blocks(
        session,
        batch_id=batch_id,
        holder=holder,
        state=state,
        listing_ref=listing_ref,
        pledge_id=pledge_id,
    )
    available = sum(block.quantity_t for block in blocks)
    if available < quantity:
        raise InsufficientCredits(
            N_("Only {available} t of batch {batch} are available; {quantity} t were asked."),
            available=available,
            quantity=quantity,
            batch=_prefix(session, batch_id),
        )
    ordered = blocks if lowest else list(reversed(blocks))
    taken: list[SerialBlock] = []
    left = quantity
    for block in ordered:
        if left == 0:
            break
        size = block.quantity_t
        if size <= left:
            taken.append(block)
            left -= size
            continue
        if lowest:  # the row keeps the upper part; a new row takes first..first+left-1
            part_first, part_last = block.first, block.first + left - 1
            block.first = part_last + 1
        else:  # the row keeps the lower part; a new row takes last-left+1..last
            part_first, part_last = block.last - left + 1, block.last
            block.last = part_first - 1
        block.updated_at = utcnow()
        session.add(block)
        session.flush()
        part = SerialBlock(
            batch_id=block.batch_id,
            first=part_first,
            last=part_last,
            holder=block.holder,
            state=block.state,
            pledge_id=block.pledge_id,
            retirement_id=block.retirement_id,
            listing_ref=block.listing_ref,
        )
        session.add(part)
        taken.append(part)
        left = 0
    session.flush()
    return sorted(taken, key=lambda block: block.first)


def change(
    session: Session,
    blocks: Sequence[SerialBlock],
    *,
    kind: str,
    reference: str | None,
    holder: str | None = None,
    state: BlockState | None = None,
    pledge_id: uuid.UUID | None = None,
    retirement_id: uuid.UUID | None = None,
    reversal_id: uuid.UUID | None = None,
    listing_ref: str | None = None,
) -> None:
    """Give ``blocks`` a new holder/state (the encumbrance fields are set as given) and log it."""
    now = utcnow()
    for block in blocks:
        session.add(
            SerialMovement(
                batch_id=block.batch_id,
                first=block.first,
                last=block.last,
                from_holder=block.holder,
                to_holder=holder or block.holder,
                kind=kind,
                reference=reference,
            )
        )
        if holder is not None:
            block.holder = holder
        if state is not None:
            block.state = state
        block.pledge_id = pledge_id
        block.listing_ref = listing_ref
        if retirement_id is not None:
            block.retirement_id = retirement_id
        if reversal_id is not None:
            block.reversal_id = reversal_id
        block.updated_at = now
        session.add(block)
    session.flush()


def _prefix(session: Session, batch_id: uuid.UUID) -> str:
    batch = session.get(Batch, batch_id)
    return batch.serial_prefix if batch else str(batch_id)


def serial_pairs(batch: Batch, blocks: Sequence[SerialBlock]) -> list[tuple[str, str]]:
    """``[(first tonne's serial, last tonne's serial)]`` of consecutive runs of ``blocks``."""
    runs: list[list[int]] = []
    for block in sorted(blocks, key=lambda b: b.first):
        if runs and runs[-1][1] + 1 == block.first:
            runs[-1][1] = block.last
        else:
            runs.append([block.first, block.last])
    return [
        (block_serial(batch.serial_prefix, a, a), block_serial(batch.serial_prefix, b, b))
        for a, b in runs
    ]


def batch_blocks(session: Session, batch_id: uuid.UUID) -> list[SerialBlock]:
    return list(
        session.exec(
            select(SerialBlock)
            .where(col(SerialBlock.batch_id) == batch_id)
            .order_by(col(SerialBlock.first))
        ).all()
    )


def tiles(batch: Batch, blocks: Sequence[SerialBlock]) -> bool:
    """The blocks cover 1..total exactly once (the serial invariant)."""
    expected = 1
    for block in sorted(blocks, key=lambda b: b.first):
        if block.first != expected or block.last < block.first:
            return False
        expected = block.last + 1
    return expected == batch.total_t + 1
