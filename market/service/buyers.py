"""Buyers: who may hold tonnes unpaid, for how long, and how many.

An order holds its tonnes before any money arrives, so holding is what an abuser would buy for
free: one enterprise could hold the whole market for the three days a bank transfer takes. So:

- a bank transfer (a hold of days) is only for an organisation whose unified social credit code
  (统一社会信用代码) platform staff verified against its business licence (:func:`verify`);
  an unverified buyer pays online, and its holds are shorter (``market_unverified_hold_s``);
- every buyer holds at most a share of the tonnes on sale at once (:func:`check_hold_cap`),
  counted with the buyer's row locked so that parallel orders of one buyer queue up instead of
  each seeing the same room under the cap.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from market.errors import (
    BuyerNotVerified,
    BuyerVerificationConflict,
    HoldCapExceeded,
    InvalidBuyerVerification,
    MarketRoleRefused,
)
from market.models import (
    OPEN_ORDER_STATUSES,
    Listing,
    ListingStatus,
    Order,
    OrderLine,
    Provider,
    VerifiedBuyer,
)
from market.service.common import FINANCE_KINDS, not_found, require
from market.service.common import organisation as find_organisation
from registry.service.actors import Actor
from tanhui import audit, uscc
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind
from tanhui.settings import get_settings

STRIPE_MIN_HOLD = timedelta(minutes=32)  # a Checkout Session lasts at least 30 minutes


def lock_buyer(session: Session, buyer_id: uuid.UUID) -> Organisation:
    """Lock the buyer's organisation row (``FOR NO KEY UPDATE``: rows that merely reference it
    are not blocked) for the rest of the transaction: one buyer's orders are placed one at a
    time, whichever web worker takes them."""
    found = session.exec(
        select(Organisation).where(col(Organisation.id) == buyer_id).with_for_update(key_share=True)
    ).one_or_none()
    if found is None:
        raise not_found("organisation", buyer_id)
    return found


def held_t(session: Session, buyer_id: uuid.UUID, *, now: datetime) -> int:
    """Tonnes the buyer's open orders hold now (their hold has not lapsed)."""
    return int(
        session.exec(
            select(func.coalesce(func.sum(OrderLine.quantity_t), 0))
            .join(Order, col(Order.id) == col(OrderLine.order_id))
            .where(col(Order.buyer_id) == buyer_id)
            .where(col(Order.status).in_(OPEN_ORDER_STATUSES))
            .where(col(OrderLine.reserved_until) > now)
        ).one()
    )


def supply_t(session: Session, *, now: datetime) -> int:
    """Tonnes listed on the listings still selling, held by orders or not."""
    return int(
        session.exec(
            select(func.coalesce(func.sum(Listing.listed_t), 0))
            .where(col(Listing.status) == ListingStatus.active)
            .where((col(Listing.ends_at).is_(None)) | (col(Listing.ends_at) > now))
        ).one()
    )


@dataclass(frozen=True)
class HoldRoom:
    cap_t: int
    held_t: int

    @property
    def free_t(self) -> int:
        return max(0, self.cap_t - self.held_t)


def hold_room(session: Session, buyer_id: uuid.UUID, *, now: datetime) -> HoldRoom:
    """The buyer's cap (a share of the supply, at least the floor) and what it holds."""
    settings = get_settings()
    share = supply_t(session, now=now) * settings.market_buyer_hold_share_bp // 10_000
    return HoldRoom(
        cap_t=max(settings.market_buyer_hold_min_t, share),
        held_t=held_t(session, buyer_id, now=now),
    )


def check_hold_cap(
    session: Session, buyer_id: uuid.UUID, quantity_t: int, *, now: datetime
) -> None:
    """Refuse to hold ``quantity_t`` more tonnes for the buyer past its cap. The caller holds
    the buyer's lock (:func:`lock_buyer`) until it commits the order."""
    room = hold_room(session, buyer_id, now=now)
    if quantity_t > room.free_t:
        raise HoldCapExceeded(
            N_(
                "One buyer may hold at most {cap} t unpaid at once; you hold {held} t and"
                " ask for {quantity} t. Pay or cancel an open order first."
            ),
            cap=room.cap_t,
            held=room.held_t,
            quantity=quantity_t,
        )


def require_buyer(actor: Actor) -> uuid.UUID:
    """The actor's organisation, which buys (members and viewers may read their room)."""
    if actor.organisation_id is None:
        raise MarketRoleRefused(
            N_("{action} needs an organisation account."), action="Reading the hold cap"
        )
    return actor.organisation_id


def verification_of(session: Session, organisation_id: uuid.UUID) -> tuple[VerifiedBuyer, str]:
    """The organisation's verification and its name (404 when it is not verified)."""
    record = session.get(VerifiedBuyer, organisation_id)
    if record is None:
        raise not_found("buyer verification", organisation_id)
    return record, find_organisation(session, organisation_id).name


def is_verified(session: Session, organisation_id: uuid.UUID) -> bool:
    return session.get(VerifiedBuyer, organisation_id) is not None


def hold_duration(session: Session, buyer_id: uuid.UUID, provider: Provider) -> timedelta:
    """How long an order of the buyer paid through ``provider`` holds its tonnes; a bank
    transfer is refused to a buyer that is not verified."""
    settings = get_settings()
    verified = is_verified(session, buyer_id)
    if provider == Provider.bank_transfer:
        if not verified:
            raise BuyerNotVerified(
                N_(
                    "Bank transfer is only for organisations whose unified social credit code"
                    " the platform has verified; pay online, or ask the platform to verify it."
                )
            )
        return timedelta(seconds=settings.market_bank_transfer_hold_s)
    configured = timedelta(seconds=settings.market_order_hold_s)
    if not verified:
        configured = min(configured, timedelta(seconds=settings.market_unverified_hold_s))
    if provider == Provider.stripe:
        return max(configured, STRIPE_MIN_HOLD)
    return configured


def verify(
    session: Session, *, actor: Actor, organisation_id: uuid.UUID, code: str
) -> VerifiedBuyer:
    """Platform staff confirm the organisation's unified social credit code (they saw the
    business licence); the code must pass its checksum and belong to no other organisation."""
    require(actor, *FINANCE_KINDS, action="Verifying buyers")
    organisation = find_organisation(session, organisation_id)
    if organisation.kind == OrgKind.platform:
        raise InvalidBuyerVerification(
            N_("The platform itself does not buy."),
            errors=[{"field": "organisation_id", "message": "the platform"}],
        )
    normalised = uscc.normalise(code or "")
    if not uscc.is_valid(normalised):
        raise InvalidBuyerVerification(
            N_(
                "{code} is not a valid unified social credit code (18 characters, the last"
                " one a check character)."
            ),
            code=normalised[:40],
            errors=[{"field": "uscc", "message": "invalid"}],
        )
    other = session.exec(
        select(VerifiedBuyer).where(col(VerifiedBuyer.uscc) == normalised)
    ).one_or_none()
    if other is not None and other.organisation_id != organisation.id:
        raise BuyerVerificationConflict(
            N_("The code {code} is already verified for another organisation."),
            code=normalised,
            errors=[{"field": "uscc", "message": "taken"}],
        )
    record = session.get(VerifiedBuyer, organisation.id)
    if record is None:
        record = VerifiedBuyer(organisation_id=organisation.id, uscc=normalised, verified_by="")
    record.uscc = normalised
    record.verified_by = actor.ref
    record.verified_at = utcnow()
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="buyer.verified",
        subject_type="organisation",
        subject_id=organisation.id,
        payload={"name": organisation.name, "uscc": normalised},
    )
    return record


def revoke(session: Session, *, actor: Actor, organisation_id: uuid.UUID) -> None:
    """Staff withdraw a verification (a licence revoked, a mistake): the organisation's next
    orders are held briefly and cannot be paid by bank transfer."""
    require(actor, *FINANCE_KINDS, action="Verifying buyers")
    record = session.get(VerifiedBuyer, organisation_id)
    if record is None:
        raise not_found("buyer verification", organisation_id)
    session.delete(record)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="buyer.verification_revoked",
        subject_type="organisation",
        subject_id=organisation_id,
        payload={"uscc": record.uscc},
    )


def verified_buyers(session: Session, *, actor: Actor) -> list[tuple[VerifiedBuyer, str]]:
    """Every verified buyer with its organisation's name, for platform staff."""
    require(actor, *FINANCE_KINDS, action="Verifying buyers")
    rows = session.exec(
        select(VerifiedBuyer, Organisation.name)
        .join(Organisation, col(Organisation.id) == col(VerifiedBuyer.organisation_id))
        .order_by(col(Organisation.name))
    ).all()
    return [(record, name) for record, name in rows]
