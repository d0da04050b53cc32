"""Market test data, made through the registry's and the market's service functions."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from market.models import OPEN_ORDER_STATUSES, Listing, Order, OrderLine, Payment, Provider
from market.service import buyers, listings, orders, payments
from registry.models import Batch, Household, Project, ProjectType
from registry.service import issuance, projects
from registry.service.actors import Actor
from tanhui import uscc
from tanhui.models import OrgKind, Role
from tests import factories
from tests.registry import helpers as registry_helpers
from wallet import service as wallet

__all__ = ["OrgKind", "ProjectType", "Provider"]

_counter = itertools.count(1)


@dataclass
class World:
    """A cooperative with an issued batch, its households, an enterprise and a platform user."""

    coop: Actor
    verifier: Actor
    authority: Actor
    enterprise: Actor
    finance: Actor
    project: Project
    batch: Batch
    households: list[Household] = field(default_factory=list)


def org_actor(session: Session, kind: OrgKind, role: Role = Role.member) -> Actor:
    org = factories.organisation(session, kind)
    return Actor(
        ref=f"test:{kind.value}:{org.id}", organisation_id=org.id, org_kind=kind, role=role
    )


def issued_world(
    session: Session,
    *,
    issuable: int = 1_000,
    buffer: int = 200,
    areas: list[tuple[float, dict[int, int]]] | None = None,
    household_share_bp: int = 8_000,
    kind: ProjectType = ProjectType.bamboo,
) -> World:
    """An issued project. ``areas``: one (side in metres, {household number: share_bp}) per
    parcel; households are numbered from 0 and created as needed."""
    roles = registry_helpers.Roles.make(session)
    coop = roles.coop
    assert coop.organisation_id is not None
    n = next(_counter)
    layout = areas or [(100.0, {0: 10_000})]
    households: list[Household] = []
    parcels = []
    # a grid of 1.2 km cells near Anji's county seat: every world on its own ground, in Huzhou
    offset, north = (n % 8) * 1_200.0, ((n // 8) % 8) * 1_200.0
    for index, (side, shares) in enumerate(layout):
        while len(households) <= max(shares):
            households.append(registry_helpers.household(session, coop))
        parcels.append(
            registry_helpers.parcel(
                session,
                coop,
                x=offset + index * 400.0,
                y=north,
                side=side,
                holders=[(households[i], share) for i, share in sorted(shares.items())],
                land_type=registry_helpers.LAND_OF[kind],
            )
        )
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"M{n:05d}{uuid.uuid4().hex[:3].upper()}",
        name=f"市场测试项目 {n}",
        type=kind,
        methodology_name=registry_helpers.METHODOLOGY_OF[kind],
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
    )
    projects.add_parcels(
        session, actor=coop, project_id=project.id, parcel_ids=[p.id for p in parcels]
    )
    registry_helpers.contract(session, coop, parcels, household_share_bp=household_share_bp)
    projects.collect(session, actor=coop, project_id=project.id)
    period = registry_helpers.measured_period(
        session,
        coop,
        project.id,
        registry_helpers.report(issuable, buffer, registry_helpers.METHODOLOGY_OF[kind]),
    )
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    batch = issuance.issue(session, actor=roles.authority, period_id=period.id)
    finance = org_actor(session, OrgKind.platform)
    verify_buyer(session, finance, roles.enterprise)  # the world's buyer may pay by transfer
    return World(
        coop=coop,
        verifier=roles.verifier,
        authority=roles.authority,
        enterprise=roles.enterprise,
        finance=finance,
        project=project,
        batch=batch,
        households=households,
    )


def uscc_code() -> str:
    """A new unified social credit code with a valid check character (Huzhou's prefix)."""
    body = f"913305{next(_counter):011d}"
    return body + uscc.check_character(body)


def verify_buyer(session: Session, finance: Actor, buyer: Actor) -> None:
    """Platform staff verify the buyer's code (it may pay by bank transfer)."""
    assert buyer.organisation_id is not None
    buyers.verify(session, actor=finance, organisation_id=buyer.organisation_id, code=uscc_code())


def listing(
    session: Session,
    world: World,
    *,
    quantity_t: int = 100,
    price_fen_per_t: int = 7_341,
    min_order_t: int = 1,
    **extra: Any,
) -> Listing:
    return listings.create_listing(
        session,
        actor=world.coop,
        batch_id=world.batch.id,
        quantity_t=quantity_t,
        price_fen_per_t=price_fen_per_t,
        min_order_t=min_order_t,
        **extra,
    )


def order(
    session: Session,
    buyer: Actor,
    item: Listing,
    quantity_t: int,
    *,
    provider: Provider = Provider.sandbox,
    **extra: Any,
) -> Order:
    return orders.create_order(
        session,
        actor=buyer,
        lines=[orders.LineRequest(listing_id=item.id, quantity_t=quantity_t)],
        provider=provider,
        **extra,
    )


def pay_in_sandbox(session: Session, buyer: Actor, placed: Order) -> payments.PaymentOutcome:
    payment: Payment = payments.start_checkout(session, actor=buyer, order_id=placed.id)
    return payments.sandbox_complete(session, actor=buyer, payment_id=payment.id)


def balance(session: Session, asset: str, owner: str) -> int:
    account = wallet.find_account(session, asset=asset, owner=owner)
    return wallet.get_balance(session, account.id).balance if account else 0


def available(session: Session, asset: str, owner: str) -> int:
    account = wallet.find_account(session, asset=asset, owner=owner)
    return wallet.get_balance(session, account.id).available if account else 0


def owner(actor: Actor) -> str:
    return f"org:{actor.organisation_id}"


def reservations_disagree(session: Session) -> list[str]:
    """Order lines whose ``reserved_until`` is not their order's hold (the hold's expiry while
    the order is open, nothing once it is closed): the count of open tonnes reads it."""
    session.flush()
    wrong = []
    for line, placed in session.exec(
        select(OrderLine, Order).join(Order, col(Order.id) == col(OrderLine.order_id))
    ).all():
        expected = placed.hold_expires_at if placed.status in OPEN_ORDER_STATUSES else None
        if line.reserved_until != expected:
            wrong.append(f"{placed.number} {placed.status}: {line.reserved_until} != {expected}")
    return wrong
