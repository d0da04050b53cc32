"""A terminated project's credits: suspended until the authority decides.

One predicate, :func:`credits_suspended` ("this project is terminated and its credits were not
reinstated"), and its SQL twin :func:`suspended_projects`, decide everywhere: the registry
refuses to list, transfer, sell, retire or pledge the unsold tonnes of such a project (those
still with the batch's first holder, :func:`ensure_movable`), the market hides its listings and
leaves its trades out of the price index, and serial lookups and certificates say so.

The authority then decides once, with a reason, audited: ``cancelled`` (the unsold tonnes that
are simply held become ``cancelled`` blocks, posted to the cancelled-credits account) or
``reinstated`` (they move again, the termination stays on the record).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from registry import ledger
from registry.errors import CreditsSuspended, InvalidTransition, RegistryNotFound
from registry.models import Batch, BlockState, Project, ProjectStatus
from registry.service import blocks as block_service
from registry.service.actors import Actor, require
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind

CANCELLED_OWNER = f"system:{ledger.CANCELLED}"


class CreditsDecision(StrEnum):
    cancelled = "cancelled"
    reinstated = "reinstated"


def credits_suspended(project: Project) -> bool:
    """The project is terminated and the authority has not reinstated its credits."""
    return (
        project.status == ProjectStatus.terminated
        and project.credits_decision != CreditsDecision.reinstated
    )


def suspended_projects() -> ColumnElement[bool]:
    """:func:`credits_suspended` as a condition on ``registry_project`` rows."""
    return and_(
        col(Project.status) == ProjectStatus.terminated,
        or_(
            col(Project.credits_decision).is_(None),
            col(Project.credits_decision) != CreditsDecision.reinstated,
        ),
    )


def suspended_project_ids() -> Any:
    """A sub-select of the ids of projects whose credits are suspended (for other queries)."""
    return select(Project.id).where(suspended_projects())


def batch_suspended(session: Session, batch: Batch) -> bool:
    project = session.get(Project, batch.project_id)
    return project is not None and credits_suspended(project)


def ensure_movable(session: Session, batch: Batch, holder: str) -> None:
    """Refuse moving a terminated project's unsold tonnes (still with the batch's first holder)."""
    if holder != batch.holder:
        return
    project = session.get(Project, batch.project_id)
    if project is not None and credits_suspended(project):
        raise CreditsSuspended(
            N_(
                "Project {project} was terminated: its unsold credits of batch {batch} are"
                " suspended until the authority decides (cancel or reinstate)."
            ),
            project=project.code,
            batch=batch.serial_prefix,
            decision=project.credits_decision,
        )


def standing(project: Project) -> dict[str, Any] | None:
    """What lookups and certificates show about a terminated project; None for the others."""
    if project.status != ProjectStatus.terminated:
        return None
    return {
        "status": str(project.status),
        "reason": project.status_reason,
        "credits": project.credits_decision or "suspended",
        "credits_reason": project.credits_decision_reason,
        "decided_at": (
            project.credits_decided_at.isoformat(timespec="seconds")
            if project.credits_decided_at
            else None
        ),
    }


def decide(
    session: Session,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    decision: CreditsDecision | str,
    reason: str,
) -> Project:
    """The authority cancels or reinstates a terminated project's unsold credits, once."""
    require(actor, OrgKind.authority, action="Deciding on a terminated project's credits")
    try:
        chosen = CreditsDecision(decision)
    except ValueError:
        raise InvalidInput(
            N_("Decide cancelled or reinstated."),
            errors=[{"field": "decision", "message": "cancelled or reinstated"}],
        ) from None
    if not reason or not reason.strip():
        raise InvalidInput(
            N_("A reason is required."), errors=[{"field": "reason", "message": "required"}]
        )
    project = session.exec(
        select(Project).where(col(Project.id) == project_id).with_for_update()
    ).one_or_none()
    if project is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="project", id=str(project_id))
    if project.status != ProjectStatus.terminated or project.credits_decision is not None:
        raise InvalidTransition(
            N_("Only a terminated project's suspended credits await a decision ({code})."),
            code=project.code,
        )
    cancelled: list[dict[str, Any]] = []
    if chosen == CreditsDecision.cancelled:
        cancelled = _cancel_unsold(session, project)
    project.credits_decision = chosen.value
    project.credits_decision_reason = reason.strip()[:2000]
    project.credits_decided_at = utcnow()
    project.updated_at = utcnow()
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action=f"project.credits_{chosen.value}",
        subject_type="project",
        subject_id=project.id,
        payload={
            "code": project.code,
            "reason": project.credits_decision_reason,
            "batches": cancelled,
        },
    )
    return project


def _cancel_unsold(session: Session, project: Project) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    batches = session.exec(
        select(Batch).where(col(Batch.project_id) == project.id).order_by(col(Batch.batch_no))
    ).all()
    for batch in batches:
        held = block_service.lock_blocks(session, batch_id=batch.id, holder=batch.holder)
        amount = sum(block.quantity_t for block in held)
        if amount == 0:
            continue
        block_service.change(
            session,
            held,
            kind="cancellation",
            reference=f"terminated:{project.code}",
            state=BlockState.cancelled,
        )
        ledger.post(
            session,
            code="adjustment",
            asset=batch.asset_code,
            moves=[ledger.Move(batch.holder, CANCELLED_OWNER, amount)],
            metadata={
                "cancelled": "terminated project",
                "project": project.code,
                "serial_blocks": ledger.blocks_metadata(block_service.serial_pairs(batch, held)),
            },
            idempotency_key=f"terminated-cancel:{batch.id}",
        )
        done.append({"batch": batch.serial_prefix, "quantity_t": amount})
    return done
