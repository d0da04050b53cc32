"""Pooling residents' reductions: a month of accepted grams into the residents' (RES) project.

A pool goes through three steps, each its own call (the monthly job runs whichever can run):

1. ``pooled`` (:func:`pool_month`): every resident's grams of the month (receipts of quantified
   behaviours; participation-only scenarios have none) move in the ledger from the resident's
   ``RED_G`` account to the platform's ``reduction_pool`` account; the pool claims the whole
   tonnes of (these grams + what earlier pools carried over) and carries the remainder;
2. ``submitted`` (:func:`submit_pool`): a monitoring period of the RES project with a report in
   the MRV schema (issuable = the claimed tonnes, no buffer: a behaviour that happened cannot
   be reversed by a fire) goes to the verifier and the authority like any other;
3. ``issued`` (:func:`settle_pools`): once the authority issued the batch, the tonnes' grams move
   to ``reductions_issued`` and the batch (serial-numbered, held by the pool operator) can be
   listed and sold like any credit. If fewer tonnes were issued than claimed, the difference
   carries over.

Conservation, at every step and for every pool: ``pooled_g + carried_in_g = tonnes × 10⁶ +
carried_out_g``; and in the ledger the pool account holds exactly the grams of unsettled pools'
tonnes plus the latest remainder. A month is pooled once, after the 8th of the next month (events
older than 7 days are refused, so by then the month is complete).
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

import wallet.service as wallet
from mrv.inclusive import local_date
from registry import methodologies
from registry.inclusion.errors import PoolingError
from registry.inclusion.models import (
    InclusionEvent,
    InclusionPool,
    InclusionPoolShare,
    PoolStatus,
)
from registry.inclusion.service.residents import accounts_of
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import DomainError
from tanhui.i18n import N_

GRAMS_PER_TONNE = 1_000_000
POOL_ACCOUNT = "reduction_pool"
ISSUED_ACCOUNT = "reductions_issued"
METHODOLOGY_NAME = methodologies.RESIDENTS_POOL_NAME
METHODOLOGY_VERSION = methodologies.RESIDENTS_POOL_VERSION
SETTLE_AFTER_DAYS = 8  # events are accepted up to 7 days late
RESIDENTS_PER_ENTRY = 100  # the wallet's limit of transfers per entry
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
OPEN_STATES = (PoolStatus.pooled, PoolStatus.submitted)


def month_bounds(month: str) -> tuple[date, date]:
    match = _MONTH.match(month or "")
    # years outside 2000-2999 are typing errors (and 0000 or 9999 would overflow the dates)
    if not match or not 2000 <= int(match.group(1)) <= 2999:
        raise PoolingError(N_("A month is written YYYY-MM, e.g. 2026-10."), month=month)
    year, number = int(match.group(1)), int(match.group(2))
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


@dataclass(frozen=True)
class Arithmetic:
    pooled_g: int
    carried_in_g: int
    tonnes: int
    carried_out_g: int


def split(pooled_g: int, carried_in_g: int) -> Arithmetic:
    """Whole tonnes and the carried remainder of a pool (all integers: grams and tonnes)."""
    if pooled_g < 0 or carried_in_g < 0:
        raise ValueError("grams cannot be negative")
    tonnes, remainder = divmod(pooled_g + carried_in_g, GRAMS_PER_TONNE)
    return Arithmetic(pooled_g, carried_in_g, tonnes, remainder)


def _pool_account(session: Session) -> uuid.UUID:
    return wallet.system_account(session, POOL_ACCOUNT, wallet.ASSET_REDUCTION_G).id


def monthly_grams(session: Session, first: date, last: date) -> dict[uuid.UUID, int]:
    """Each resident's grams of quantified behaviours that happened in [first, last]."""
    rows = session.exec(
        select(InclusionEvent.resident_id, func.sum(InclusionEvent.grams))
        .where(col(InclusionEvent.local_day) >= first)
        .where(col(InclusionEvent.local_day) <= last)
        .where(col(InclusionEvent.grams) > 0)
        .group_by(col(InclusionEvent.resident_id))
    ).all()
    return {resident_id: int(total) for resident_id, total in rows if total}


def pool_month(
    session: Session, *, month: str, actor: str = "system:points-pool", today: date | None = None
) -> InclusionPool:
    """Step 1: move the month's grams into the pool and claim its whole tonnes."""
    first, last = month_bounds(month)
    current = today or local_date(utcnow())
    if current < last + timedelta(days=SETTLE_AFTER_DAYS + 1):
        raise PoolingError(
            N_("{month} can be pooled from {day}, once its late events have arrived."),
            month=month,
            day=(last + timedelta(days=SETTLE_AFTER_DAYS + 1)).isoformat(),
        )
    existing = session.exec(select(InclusionPool).where(col(InclusionPool.month) == month)).first()
    if existing is not None:
        raise PoolingError(N_("{month} was already pooled."), month=month)
    pool_account = _pool_account(session)
    grams = monthly_grams(session, first, last)
    reserved = sum(
        pool.tonnes * GRAMS_PER_TONNE
        for pool in session.exec(
            select(InclusionPool).where(col(InclusionPool.status).in_(OPEN_STATES))
        ).all()
    )
    before = wallet.get_balance(session, pool_account).balance
    carried_in = before - reserved
    if carried_in < 0:  # pragma: no cover - the ledger and the pools disagree: stop
        raise PoolingError(N_("The pool account holds less than the open pools claim."))
    figures = split(sum(grams.values()), carried_in)
    pool = InclusionPool(
        month=month,
        residents=len(grams),
        pooled_g=figures.pooled_g,
        carried_in_g=figures.carried_in_g,
        tonnes=figures.tonnes,
        carried_out_g=figures.carried_out_g,
        status=PoolStatus.pooled,
    )
    session.add(pool)
    session.flush()
    _move_grams(session, pool, grams, pool_account)
    if grams:
        session.execute(
            InclusionPoolShare.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"pool_id": pool.id, "resident_id": resident_id, "grams": amount}
                for resident_id, amount in sorted(grams.items())
            ],
        )
    if figures.tonnes == 0:
        pool.status = PoolStatus.issued  # nothing to issue: the grams all carry over
        pool.issued_at = utcnow()
        session.add(pool)
        session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.pool.pooled",
        subject_type="inclusion_pool",
        subject_id=pool.id,
        payload={
            "month": month,
            "residents": pool.residents,
            "pooled_g": pool.pooled_g,
            "carried_in_g": pool.carried_in_g,
            "tonnes": pool.tonnes,
            "carried_out_g": pool.carried_out_g,
        },
    )
    return pool


def _move_grams(
    session: Session, pool: InclusionPool, grams: dict[uuid.UUID, int], pool_account: uuid.UUID
) -> None:
    residents = sorted(grams)
    accounts = accounts_of(session, residents)
    requests = []
    for start in range(0, len(residents), RESIDENTS_PER_ENTRY):
        group = residents[start : start + RESIDENTS_PER_ENTRY]
        requests.append(
            wallet.EntryRequest(
                code="pooling",
                transfers=[
                    wallet.Transfer(accounts[resident][1], pool_account, grams[resident])
                    for resident in group
                ],
                idempotency_key=f"pool:{pool.month}:{start}",
                metadata={"pool": pool.month},
            )
        )
    for start in range(0, len(requests), wallet.MAX_BATCH_ENTRIES):
        for result in wallet.post_entries(
            session, requests[start : start + wallet.MAX_BATCH_ENTRIES], scope="inclusion"
        ):
            if result.error is not None:
                raise result.error


def pool_report(pool: InclusionPool) -> dict[str, Any]:
    """The pool as a report in the MRV schema (what the verifier checks and signs)."""
    first, last = month_bounds(pool.month)
    return {
        "schema": "tanhui.mrv.report/1",
        "methodology": {
            "name": METHODOLOGY_NAME,
            "version": METHODOLOGY_VERSION,
            "parameters": {
                "month": pool.month,
                "residents": pool.residents,
                "pooled_g": pool.pooled_g,
                "carried_in_g": pool.carried_in_g,
                "carried_out_g": pool.carried_out_g,
                "factors": "GET /api/v1/points/methodologies",
            },
        },
        "monitoring_period": {
            "start": first.isoformat(),
            "end": last.isoformat(),
            "years": round(((last - first).days + 1) / 365.25, 4),
        },
        "parcels": [],
        "totals": {
            "area_ha": 0.0,
            "removals_tco2e": float(pool.tonnes),
            "net_tco2e": float(pool.pooled_g + pool.carried_in_g) / GRAMS_PER_TONNE,
            "conservative_net_tco2e": float(pool.tonnes),
            "buffer_share": 0.0,
            "buffer_tco2e": 0,
            "issuable_tco2e": pool.tonnes,
        },
        "provenance": {
            "inputs": [],
            "software": "tanhui carbon inclusion",
            "seed": 0,
            "crs": "none",
            "area_crs": "none",
        },
    }


def residents_project(session: Session, code: str | None = None) -> Any:
    """The residents' (RES) project: by code, or the only active one."""
    from registry.models import Project, ProjectStatus, ProjectType

    query = select(Project).where(col(Project.type) == ProjectType.residents)
    if code:
        query = query.where(col(Project.code) == code.strip().upper())
    else:
        query = query.where(
            col(Project.status).not_in([ProjectStatus.terminated, ProjectStatus.suspended])
        )
    found = list(session.exec(query).all())
    if len(found) != 1:
        raise PoolingError(
            N_("Name the residents' project to pool into ({count} found)."), count=len(found)
        )
    return found[0]


def submit_pool(session: Session, pool: InclusionPool, *, project_code: str | None = None) -> str:
    """Step 2: submit the pool as a monitoring period of the RES project, as its operator.

    Returns what happened ("submitted", or why it waits); a registry refusal leaves the pool
    ``pooled`` (nothing half-written: the registry calls run in a savepoint)."""
    from registry.service import projects
    from registry.service.actors import Actor
    from tanhui.models import OrgKind, Role

    if pool.status != PoolStatus.pooled:
        return str(pool.status)
    project = residents_project(session, project_code)
    operator = Actor(
        ref="system:points-pool",
        organisation_id=project.cooperative_id,
        org_kind=OrgKind.cooperative,
        role=Role.member,
    )
    try:
        with session.begin_nested():
            if project.status == "draft":
                projects.collect(session, actor=operator, project_id=project.id)
            period = projects.submit_pooled_period(
                session, actor=operator, project_id=project.id, report=pool_report(pool)
            )
    except DomainError as error:
        return f"waiting: {error}"
    pool.project_id = project.id
    pool.monitoring_period_id = period.id
    pool.status = PoolStatus.submitted
    session.add(pool)
    session.flush()
    audit.record(
        session,
        actor="system:points-pool",
        action="points.pool.submitted",
        subject_type="inclusion_pool",
        subject_id=pool.id,
        payload={"month": pool.month, "project": project.code, "period": period.number},
    )
    return "submitted"


def settle(session: Session, pool: InclusionPool) -> bool:
    """Step 3: once the pool's period is issued, convert the issued tonnes' grams."""
    from registry.models import Batch
    from registry.serials import tonne_serial

    if pool.status != PoolStatus.submitted or pool.monitoring_period_id is None:
        return False
    batch = session.exec(
        select(Batch).where(col(Batch.period_id) == pool.monitoring_period_id)
    ).first()
    if batch is None:
        return False
    issued = batch.quantity_t + batch.buffer_t
    if issued > pool.tonnes:  # pragma: no cover - the registry issues at most the report's
        raise PoolingError(N_("More tonnes were issued than the pool claimed."))
    shortfall = (pool.tonnes - issued) * GRAMS_PER_TONNE
    if issued:
        entry = wallet.post_entry(
            session,
            code="issuance",
            transfers=[
                wallet.Transfer(
                    _pool_account(session),
                    wallet.system_account(session, ISSUED_ACCOUNT, wallet.ASSET_REDUCTION_G).id,
                    issued * GRAMS_PER_TONNE,
                )
            ],
            idempotency_key=f"pool-issued:{pool.month}",
            scope="inclusion",
            metadata={"pool": pool.month, "batch": batch.serial_prefix},
        )
        pool.journal_entry_id = entry.id
    pool.tonnes = issued
    pool.carried_out_g += shortfall
    pool.batch_id = batch.id
    pool.serial_first = tonne_serial(batch.serial_prefix, 1) if issued else None
    pool.serial_last = tonne_serial(batch.serial_prefix, issued) if issued else None
    pool.status = PoolStatus.issued
    pool.issued_at = utcnow()
    session.add(pool)
    session.flush()
    audit.record(
        session,
        actor="system:points-pool",
        action="points.pool.issued",
        subject_type="inclusion_pool",
        subject_id=pool.id,
        payload={"month": pool.month, "batch": batch.serial_prefix, "tonnes": issued},
    )
    return True


def settle_pools(session: Session) -> int:
    """Settle every submitted pool whose batch is issued; returns how many."""
    pools = session.exec(
        select(InclusionPool)
        .where(col(InclusionPool.status) == PoolStatus.submitted)
        .order_by(col(InclusionPool.month))
    ).all()
    return sum(1 for pool in pools if settle(session, pool))


def list_pools(session: Session) -> list[InclusionPool]:
    return list(session.exec(select(InclusionPool).order_by(col(InclusionPool.month).desc())).all())


@dataclass(frozen=True)
class Buyer:
    name: str
    tonnes: int
    retired: bool


@dataclass(frozen=True)
class Contribution:
    pool: InclusionPool
    grams: int
    buyers: Sequence[Buyer]


def buyers_of(session: Session, pool: InclusionPool) -> list[Buyer]:
    """Who holds or retired the pool's tonnes, other than the pool operator."""
    if pool.batch_id is None:
        return []
    from registry.models import Batch, BlockState, SerialBlock
    from registry.service.transfers import organisation_name

    batch = session.get(Batch, pool.batch_id)
    if batch is None:
        return []
    rows = session.exec(
        select(
            SerialBlock.holder,
            SerialBlock.state,
            func.sum(SerialBlock.last - SerialBlock.first + 1),
        )
        .where(col(SerialBlock.batch_id) == batch.id)
        .where(col(SerialBlock.holder) != batch.holder)
        .group_by(col(SerialBlock.holder), col(SerialBlock.state))
    ).all()
    buyers = []
    for holder, state, tonnes in rows:
        name = organisation_name(session, holder)
        if name:
            buyers.append(Buyer(name=name, tonnes=int(tonnes), retired=state == BlockState.retired))
    return sorted(buyers, key=lambda buyer: (-buyer.tonnes, buyer.name))


def contributions_of(session: Session, resident_id: uuid.UUID) -> list[Contribution]:
    """The pools a resident's grams went into, with who bought them."""
    rows = session.exec(
        select(InclusionPool, InclusionPoolShare.grams)
        .join(InclusionPoolShare, col(InclusionPoolShare.pool_id) == col(InclusionPool.id))
        .where(col(InclusionPoolShare.resident_id) == resident_id)
        .order_by(col(InclusionPool.month).desc())
    ).all()
    return [
        Contribution(pool=pool, grams=int(grams), buyers=buyers_of(session, pool))
        for pool, grams in rows
    ]
