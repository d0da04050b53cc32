"""Reversals: a loss event (fire, pest, typhoon, illegal harvest) on a project's parcels.

A loss is proposed by the project's cooperative or a verifier and confirmed (or rejected) by the
authority; nothing is cancelled before it confirms (ADR 0092). A loss is capped at the credited
stock of the affected parcels (the project's issued and withheld tonnes, shared by area), and a
project's losses together at its whole credited stock. Confirmation cancels the project's own
buffer credits (its batches' buffer blocks, oldest first); the part beyond them is the
project's debt (``reversal_debt_t``), never taken from other projects' buffer. While it owes,
the project is issued nothing (:func:`require_no_outstanding_loss`, called by issuance) until it
makes the loss good by cancelling credits it holds (:func:`make_good`), as Verra's
non-permanence rules require a reversal beyond a project's buffer contribution to be
compensated before further issuance.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from fractions import Fraction

from sqlmodel import Session, col, func, select

from registry import ledger
from registry.errors import (
    IssuanceBlockedByLoss,
    LossExceedsCreditedStock,
    RegistryNotFound,
    ReversalConflict,
)
from registry.models import (
    Batch,
    BlockState,
    LossCause,
    Parcel,
    Project,
    ProjectParcel,
    ProjectStatus,
    Reversal,
    ReversalParcel,
    ReversalStatus,
    SerialBlock,
)
from registry.service import blocks as block_service
from registry.service import parcels as parcel_service
from registry.service import projects
from registry.service.actors import Actor, ensure_own, require
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind

BUFFER_OWNER = f"system:{ledger.BUFFER_POOL}"
CANCELLED_OWNER = f"system:{ledger.CANCELLED}"


def require_no_outstanding_loss(project: Project) -> None:
    """Issuance refuses a project that owes a confirmed loss beyond its own buffer."""
    if project.reversal_debt_t > 0:
        raise IssuanceBlockedByLoss(
            N_(
                "Project {code} owes {owed} t of confirmed losses beyond its buffer: it is issued"
                " nothing until it makes them good by cancelling credits it holds."
            ),
            code=project.code,
            owed=project.reversal_debt_t,
        )


def credited_stock_t(
    session: Session, project_id: uuid.UUID, parcel_ids: Sequence[uuid.UUID] | None = None
) -> int:
    """The tonnes credited to the project (issued plus withheld for the buffer), or to some of
    its parcels: the project's share by area, rounded down (the cap of a loss on them)."""
    issued = int(
        session.exec(
            select(func.coalesce(func.sum(Batch.quantity_t + Batch.buffer_t), 0)).where(
                col(Batch.project_id) == project_id
            )
        ).one()
    )
    if parcel_ids is None or issued == 0:
        return issued
    parcels = session.exec(
        select(Parcel)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .where(col(ProjectParcel.project_id) == project_id)
    ).all()
    total = sum((parcel_service.area_mu(p) for p in parcels), Fraction(0))
    wanted = set(parcel_ids)
    affected = sum((parcel_service.area_mu(p) for p in parcels if p.id in wanted), Fraction(0))
    if total == 0:
        return 0
    share = issued * affected / total
    return share.numerator // share.denominator


def _losses_t(session: Session, project_id: uuid.UUID) -> int:
    """The project's proposed and confirmed losses (rejected ones do not count)."""
    return int(
        session.exec(
            select(func.coalesce(func.sum(Reversal.estimated_loss_t), 0))
            .where(col(Reversal.project_id) == project_id)
            .where(col(Reversal.status) != ReversalStatus.rejected)
        ).one()
    )


def propose_reversal(
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
    """The cooperative or a verifier proposes a loss on some of the project's parcels; the
    authority confirms it (:func:`confirm_reversal`). Refused above the credited stock."""
    require(actor, OrgKind.cooperative, OrgKind.verifier, action="Proposing a loss", admin=False)
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
    on_parcels = credited_stock_t(session, project.id, wanted)
    room = credited_stock_t(session, project.id) - _losses_t(session, project.id)
    cap = max(0, min(on_parcels, room))
    if estimated_loss_t > cap:
        raise LossExceedsCreditedStock(
            N_(
                "A loss of {loss} t exceeds what was credited on these parcels of project {code}:"
                " at most {cap} t ({stock} t credited on them, {room} t left on the project)."
            ),
            loss=estimated_loss_t,
            code=project.code,
            cap=cap,
            stock=on_parcels,
            room=max(room, 0),
            errors=[{"field": "estimated_loss_t", "message": f"at most {cap}"}],
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
        status=ReversalStatus.proposed,
    )
    session.add(reversal)
    session.flush()
    for parcel_id in wanted:
        session.add(ReversalParcel(reversal_id=reversal.id, parcel_id=parcel_id))
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.loss_proposed",
        subject_type="project",
        subject_id=project.id,
        payload={
            "code": project.code,
            "reversal": str(reversal.id),
            "cause": str(cause),
            "occurred_on": occurred_on.isoformat(),
            "estimated_loss_t": estimated_loss_t,
            "parcels": [str(p) for p in wanted[:200]],
        },
    )
    return reversal


def _proposed(session: Session, actor: Actor, reversal_id: uuid.UUID) -> tuple[Reversal, Project]:
    require(actor, OrgKind.authority, action="Deciding on a loss", admin=False)
    reversal = session.exec(
        select(Reversal)
        .where(col(Reversal.id) == reversal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if reversal is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="reversal", id=str(reversal_id))
    project = projects.get_project(session, actor=actor, project_id=reversal.project_id, lock=True)
    if reversal.status != ReversalStatus.proposed:
        raise ReversalConflict(
            N_("The loss of {day} is already {status}."),
            day=reversal.occurred_on.isoformat(),
            status=str(reversal.status),
        )
    return reversal, project


def confirm_reversal(session: Session, *, actor: Actor, reversal_id: uuid.UUID) -> Reversal:
    """The authority confirms a proposed loss: the project's own buffer credits are cancelled
    to cover it; what they cannot cover becomes the project's debt, which blocks issuance."""
    reversal, project = _proposed(session, actor, reversal_id)
    own_batches = [
        b.id
        for b in session.exec(
            select(Batch)
            .where(col(Batch.project_id) == project.id)
            .order_by(col(Batch.issued_at), col(Batch.id))
        ).all()
    ]
    loss = reversal.estimated_loss_t
    own = _cancel_from(session, reversal, own_batches, loss)
    owed = loss - own
    reversal.cancelled_own_buffer_t = own
    reversal.cancelled_pool_t = 0
    reversal.shortfall_t = owed
    reversal.status = ReversalStatus.confirmed
    reversal.confirmed_by = actor.ref
    reversal.confirmed_at = utcnow()
    session.add(reversal)
    project.reversal_debt_t += owed
    project.buffer_exceeded = project.reversal_debt_t > 0
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.loss_confirmed",
        subject_type="project",
        subject_id=project.id,
        payload={
            "code": project.code,
            "reversal": str(reversal.id),
            "estimated_loss_t": loss,
            "cancelled_own_buffer_t": own,
            "owed_t": owed,
            "reversal_debt_t": project.reversal_debt_t,
        },
    )
    return reversal


def reject_reversal(
    session: Session, *, actor: Actor, reversal_id: uuid.UUID, reason: str = ""
) -> Reversal:
    """The authority rejects a proposed loss; nothing is cancelled."""
    reversal, project = _proposed(session, actor, reversal_id)
    reversal.status = ReversalStatus.rejected
    reversal.confirmed_by = actor.ref
    reversal.confirmed_at = utcnow()
    session.add(reversal)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.loss_rejected",
        subject_type="project",
        subject_id=project.id,
        payload={"code": project.code, "reversal": str(reversal.id), "reason": reason[:500]},
    )
    return reversal


def make_good(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    batch_id: uuid.UUID,
    quantity_t: int,
) -> Project:
    """The project's cooperative makes good (part of) its debt by cancelling credits it holds:
    the project's own (cancelled from its held credits) or another project's (compensated)."""
    require(actor, OrgKind.cooperative, action="Making good a loss", admin=False)
    project = projects.get_project(session, actor=actor, project_id=project_id, lock=True)
    ensure_own(actor, project.cooperative_id, what="project", object_id=project_id)
    if isinstance(quantity_t, bool) or not 0 < quantity_t <= project.reversal_debt_t:
        raise InvalidInput(
            N_("Project {code} owes {owed} t; cancel 1 to {owed} t to make its losses good."),
            code=project.code,
            owed=project.reversal_debt_t,
            errors=[{"field": "quantity_t", "message": f"1 to {project.reversal_debt_t}"}],
        )
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    holder = actor.owner
    taken = block_service.take(
        session, batch_id=batch.id, holder=holder, quantity=quantity_t, lowest=True
    )
    reference = f"make-good:{project.code}"
    block_service.change(
        session, taken, kind="cancellation", reference=reference, state=BlockState.cancelled
    )
    pairs = block_service.serial_pairs(batch, taken)
    ledger.post(
        session,
        code="reversal",
        asset=batch.asset_code,
        moves=[ledger.Move(holder, CANCELLED_OWNER, quantity_t)],
        metadata={
            "make_good": project.code,
            "serial_blocks": ledger.blocks_metadata(pairs),
        },
        idempotency_key=f"make-good:{project.id}:{uuid.uuid4()}",
    )
    project.reversal_debt_t -= quantity_t
    project.buffer_exceeded = project.reversal_debt_t > 0
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="project.loss_made_good",
        subject_type="project",
        subject_id=project.id,
        payload={
            "code": project.code,
            "batch": batch.serial_prefix,
            "cancelled_t": quantity_t,
            "reversal_debt_t": project.reversal_debt_t,
            "serial_blocks": [list(p) for p in pairs[:50]],
        },
    )
    return project


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


def get_reversal(session: Session, *, actor: Actor, reversal_id: uuid.UUID) -> Reversal:
    reversal = session.get(Reversal, reversal_id)
    if reversal is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="reversal", id=str(reversal_id))
    projects.get_project(session, actor=actor, project_id=reversal.project_id)
    return reversal


def reversals_of(session: Session, project_id: uuid.UUID) -> list[Reversal]:
    return list(
        session.exec(
            select(Reversal)
            .where(col(Reversal.project_id) == project_id)
            .order_by(col(Reversal.created_at))
        ).all()
    )


def confirmed_reversals_of(session: Session, project_id: uuid.UUID) -> list[Reversal]:
    """The losses the authority confirmed (what the public sees; proposals are not facts)."""
    return [r for r in reversals_of(session, project_id) if r.status == ReversalStatus.confirmed]


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
