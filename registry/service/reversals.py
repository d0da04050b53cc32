"""Reversals: a loss event (fire, pest, typhoon, illegal harvest) cancels buffer credits.

The estimated loss is cancelled from the buffer credits the project itself contributed (its
batches' buffer blocks, oldest first); what those cannot cover comes from the rest of the pool
(other projects' buffer blocks, oldest batches first), as Verra's pooled buffer does. When the
project's cumulative losses exceed what it withheld, the project is flagged
(``buffer_exceeded``); a loss the whole pool cannot cover is recorded as a shortfall.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlmodel import Session, col, func, select

from registry import ledger
from registry.errors import RegistryNotFound
from registry.models import (
    Batch,
    BlockState,
    LossCause,
    Parcel,
    ProjectParcel,
    ProjectStatus,
    Reversal,
    ReversalParcel,
    SerialBlock,
)
from registry.service import blocks as block_service
from registry.service import projects
from registry.service.actors import Actor, require
from registry.service.issuance import BUFFER_OWNER
from tanhui import audit
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind

CANCELLED_OWNER = f"system:{ledger.CANCELLED}"


def report_reversal(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    parcel_ids: Sequence[uuid.UUID],
    cause: LossCause,
    occurred_on: date,
    estimated_loss_t: int,
    description: str = "",
) -> Reversal:
    """Record a loss on some of the project's parcels and cancel buffer credits to cover it."""
    require(
        actor, OrgKind.cooperative, OrgKind.authority, OrgKind.verifier, action="Reporting a loss"
    )
    project = projects.get_project(session, actor=actor, project_id=project_id, lock=True)
    if project.status in {ProjectStatus.draft, ProjectStatus.terminated}:
        raise InvalidInput(N_("Losses are reported on collected, active projects."))
    if estimated_loss_t <= 0:
        raise InvalidInput(
            N_("The estimated loss must be a positive number of tonnes."),
            errors=[{"field": "estimated_loss_t", "message": "positive"}],
        )
    wanted = list(dict.fromkeys(parcel_ids))
    in_project = set(
        session.exec(
            select(ProjectParcel.parcel_id)
            .where(col(ProjectParcel.project_id) == project.id)
            .where(col(ProjectParcel.parcel_id).in_(wanted))
        ).all()
    )
    if not wanted or in_project != set(wanted):
        raise RegistryNotFound(
            N_("No {what} {id}."), what="parcel of this project", id="(one of parcel_ids)"
        )
    reversal = Reversal(
        project_id=project.id,
        cause=cause,
        occurred_on=occurred_on,
        estimated_loss_t=estimated_loss_t,
        cancelled_own_buffer_t=0,
        cancelled_pool_t=0,
        shortfall_t=0,
        description=description.strip(),
        reported_by=actor.ref,
    )
    session.add(reversal)
    session.flush()
    for parcel_id in wanted:
        session.add(ReversalParcel(reversal_id=reversal.id, parcel_id=parcel_id))
    own_batches = [
        b.id
        for b in session.exec(
            select(Batch).where(col(Batch.project_id) == project.id).order_by(col(Batch.issued_at))
        ).all()
    ]
    left = estimated_loss_t
    own = _cancel_from(session, reversal, own_batches, left)
    left -= own
    pool = 0
    if left:
        others = [
            b.id
            for b in session.exec(
                select(Batch)
                .where(col(Batch.project_id) != project.id)
                .order_by(col(Batch.issued_at), col(Batch.id))
            ).all()
        ]
        pool = _cancel_from(session, reversal, others, left)
        left -= pool
    reversal.cancelled_own_buffer_t = own
    reversal.cancelled_pool_t = pool
    reversal.shortfall_t = left
    session.add(reversal)
    withheld = session.exec(
        select(func.coalesce(func.sum(Batch.buffer_t), 0)).where(
            col(Batch.project_id) == project.id
        )
    ).one()
    lost = session.exec(
        select(func.coalesce(func.sum(Reversal.estimated_loss_t), 0)).where(
            col(Reversal.project_id) == project.id
        )
    ).one()
    if int(lost) > int(withheld) and not project.buffer_exceeded:
        project.buffer_exceeded = True
        session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.loss_reported",
        subject_type="project",
        subject_id=project.id,
        payload={
            "code": project.code,
            "cause": str(cause),
            "occurred_on": occurred_on.isoformat(),
            "estimated_loss_t": estimated_loss_t,
            "cancelled_own_buffer_t": own,
            "cancelled_pool_t": pool,
            "shortfall_t": left,
            "buffer_exceeded": project.buffer_exceeded,
            "parcels": [str(p) for p in wanted[:200]],
        },
    )
    return reversal


def _cancel_from(
    session: Session, reversal: Reversal, batch_ids: Sequence[uuid.UUID], quantity: int
) -> int:
    """Cancel up to ``quantity`` buffer tonnes from ``batch_ids`` in order; returns how many."""
    done = 0
    for batch_id in batch_ids:
        if done == quantity:
            break
        available = sum(
            block.quantity_t
            for block in block_service.lock_blocks(session, batch_id=batch_id, holder=BUFFER_OWNER)
        )
        amount = min(available, quantity - done)
        if amount <= 0:
            continue
        batch = session.get(Batch, batch_id)
        assert batch is not None
        taken = block_service.take(
            session, batch_id=batch_id, holder=BUFFER_OWNER, quantity=amount, lowest=True
        )
        block_service.change(
            session,
            taken,
            kind="cancellation",
            reference=str(reversal.id),
            state=BlockState.cancelled,
            reversal_id=reversal.id,
        )
        entry = ledger.post(
            session,
            code="reversal",
            asset=batch.asset_code,
            moves=[ledger.Move(BUFFER_OWNER, CANCELLED_OWNER, amount)],
            metadata={
                "reversal": str(reversal.id),
                "serial_blocks": ledger.blocks_metadata(block_service.serial_pairs(batch, taken)),
            },
            idempotency_key=f"reversal:{reversal.id}:{batch.id}",
        )
        reversal.journal_entry_id = reversal.journal_entry_id or entry
        done += amount
    return done


def reversals_of(session: Session, project_id: uuid.UUID) -> list[Reversal]:
    return list(
        session.exec(
            select(Reversal)
            .where(col(Reversal.project_id) == project_id)
            .order_by(col(Reversal.created_at))
        ).all()
    )


def cancelled_blocks(session: Session, reversal_id: uuid.UUID) -> list[SerialBlock]:
    return list(
        session.exec(select(SerialBlock).where(col(SerialBlock.reversal_id) == reversal_id)).all()
    )


def parcels_of(session: Session, reversal_id: uuid.UUID) -> list[Parcel]:
    return list(
        session.exec(
            select(Parcel)
            .join(ReversalParcel, col(ReversalParcel.parcel_id) == col(Parcel.id))
            .where(col(ReversalParcel.reversal_id) == reversal_id)
        ).all()
    )
