"""Issuance: filed → issued, one serial-numbered batch per monitoring period.

Serials 1..quantity go to the cooperative, the next ``buffer`` to the platform buffer pool.
Only a measured (or, for residents, pooled) period is issued from, and quantity + buffer never
exceeds its conservative estimate (:mod:`registry.service.measured`, invariant 5). The buffer
withheld is the report's ``buffer_tco2e`` scaled to the quantity issued, rounded up, and at
least the methodology's minimum share.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, func, select

from registry import ledger
from registry.errors import QuantityExceedsIssuable, RegistryNotFound
from registry.models import (
    Batch,
    BlockState,
    MonitoringPeriod,
    PeriodStatus,
    Project,
    ProjectStatus,
    SerialBlock,
    SerialMovement,
)
from registry.serials import batch_prefix, block_serial
from registry.service import ground, measured, projects, reversals
from registry.service.actors import Actor, require
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import OrgKind

BUFFER_OWNER = f"system:{ledger.BUFFER_POOL}"
ISSUANCE_OWNER = f"system:{ledger.ISSUANCE}"


def issue(
    session: Session, *, actor: Actor, period_id: uuid.UUID, quantity_t: int | None = None
) -> Batch:
    """filed → issued: the authority approves issuance of at most the report's issuable tonnes."""
    require(actor, OrgKind.authority, action="Issuing credits", admin=False)
    period, project = projects._period_for(
        session,
        actor=actor,
        period_id=period_id,
        action="issue",
        project_state=ProjectStatus.filed,
        period_state=PeriodStatus.filed,
    )
    reversals.require_no_outstanding_loss(project)
    quantity = period.issuable_t if quantity_t is None else quantity_t
    if quantity <= 0 or quantity > period.issuable_t:
        raise QuantityExceedsIssuable(
            N_("Period {number} of project {code} allows 1 to {issuable} t; {quantity} t asked."),
            number=period.number,
            code=project.code,
            issuable=period.issuable_t,
            quantity=quantity,
        )
    ground.check_issuance(session, project, period.start, period.end)
    buffer = measured.check_issuable(period, project, quantity)
    batch_no = (
        session.exec(
            select(func.count()).select_from(Batch).where(col(Batch.project_id) == project.id)
        ).one()
        + 1
    )
    vintage = period.end.year
    prefix = batch_prefix(project.type, project.code, vintage, batch_no)
    asset = ledger.ensure_credit_asset(
        session, prefix, f"{project.code} {project.name} vintage {vintage}, tCO2e"
    )
    holder = f"org:{project.cooperative_id}"
    batch = Batch(
        project_id=project.id,
        period_id=period.id,
        vintage=vintage,
        batch_no=batch_no,
        serial_prefix=prefix,
        asset_code=asset,
        quantity_t=quantity,
        buffer_t=buffer,
        holder=holder,
    )
    session.add(batch)
    session.flush()
    blocks = [SerialBlock(batch_id=batch.id, first=1, last=quantity, holder=holder)]
    if buffer:
        blocks.append(
            SerialBlock(
                batch_id=batch.id, first=quantity + 1, last=quantity + buffer, holder=BUFFER_OWNER
            )
        )
    for block in blocks:
        session.add(block)
        session.add(
            SerialMovement(
                batch_id=batch.id,
                first=block.first,
                last=block.last,
                from_holder=None,
                to_holder=block.holder,
                kind="issuance",
                reference=prefix,
            )
        )
    session.flush()
    moves = [ledger.Move(ISSUANCE_OWNER, holder, quantity)]
    if buffer:
        moves.append(ledger.Move(ISSUANCE_OWNER, BUFFER_OWNER, buffer))
    batch.journal_entry_id = ledger.post(
        session,
        code="issuance",
        asset=asset,
        moves=moves,
        metadata={
            "batch": prefix,
            "serials": [block_serial(prefix, b.first, b.last) for b in blocks],
        },
        idempotency_key=f"issuance:{period.id}",
    )
    session.add(batch)
    period.status = PeriodStatus.issued
    period.issued_at = utcnow()
    session.add(period)
    projects._move(
        session,
        project,
        actor=actor,
        action="issued",
        to=ProjectStatus.issued,
        payload={
            "period": period.number,
            "batch": prefix,
            "quantity_t": quantity,
            "buffer_t": buffer,
            "serials": block_serial(prefix, 1, quantity + buffer),
        },
    )
    return batch


def get_batch(session: Session, batch_id: uuid.UUID) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    return batch


def batch_by_prefix(session: Session, prefix: str) -> Batch:
    batch = session.exec(select(Batch).where(col(Batch.serial_prefix) == prefix)).first()
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=prefix)
    return batch


def batches_of_project(session: Session, project_id: uuid.UUID) -> list[Batch]:
    return list(
        session.exec(
            select(Batch).where(col(Batch.project_id) == project_id).order_by(col(Batch.batch_no))
        ).all()
    )


def project_of(session: Session, batch: Batch) -> Project:
    project = session.get(Project, batch.project_id)
    assert project is not None
    return project


def period_of(session: Session, batch: Batch) -> MonitoringPeriod:
    period = session.get(MonitoringPeriod, batch.period_id)
    assert period is not None
    return period


def holdings(session: Session, owner: str) -> list[tuple[Batch, BlockState, int]]:
    """(batch, state, tonnes) the owner holds, retired included."""
    rows = session.exec(
        select(Batch, SerialBlock.state, func.sum(SerialBlock.last - SerialBlock.first + 1))
        .join(SerialBlock, col(SerialBlock.batch_id) == col(Batch.id))
        .where(col(SerialBlock.holder) == owner)
        .group_by(col(Batch.id), col(SerialBlock.state))
        .order_by(col(Batch.serial_prefix))
    ).all()
    return [(batch, BlockState(state), int(total)) for batch, state, total in rows]
