"""Listings: tonnes of one batch offered at a price, held in the wallet and the registry.

A listing keeps ``listed_t`` tonnes out of its seller's reach in two places, always together:
the serial blocks are in state ``listed`` (so the registry will not retire, pledge or transfer
them) and one wallet hold on the seller's credit account reserves the same number (so the
ledger's available balance excludes them). Orders reserve tonnes *of a listing* for a limited
time (see :mod:`market.service.orders`); a tonne is open when it is listed and not reserved.

Every change of ``listed_t`` goes through :func:`resync_hold` with the listing row locked: the
wallet cannot shrink a hold, so the old hold is voided and a new one made for what stays listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from market.errors import InvalidListing, ListingClosed
from market.models import (
    Listing,
    ListingStatus,
    OrderLine,
)
from market.service.common import (
    SELLER_KINDS,
    credit_account,
    not_found,
    now_or,
    org_owner,
    require,
)
from registry.models import Batch, Project
from registry.service import suspension
from registry.service import transfers as registry_transfers
from registry.service.actors import Actor
from tanhui import audit
from tanhui.db import UTCDateTime, utcnow
from tanhui.i18n import N_
from wallet import service as wallet
from wallet.models import HoldStatus

MAX_PRICE_FEN_PER_T = 100_000_00  # 100,000 CNY/t: anything above is a typo
MAX_LISTING_T = 10**9
LISTING_HOLD_ESCROW = "market_listings"  # system account credited (pending) by listing holds
OPEN_ENDED_HOLD = timedelta(days=20 * 365)
HOLD_GRACE = timedelta(days=30)
MAX_PAGE = 200


def _hold_expiry(listing: Listing, now: datetime) -> datetime:
    """The wallet hold outlives the listing; the market releases it, the wallet never has to."""
    if listing.ends_at is None:
        return now + OPEN_ENDED_HOLD
    return max(listing.ends_at, now) + HOLD_GRACE


def lock_listings(session: Session, listing_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Listing]:
    """Lock listings ``FOR UPDATE`` in id order (one order for every use case: no deadlocks)."""
    ordered = sorted(set(listing_ids))
    rows = session.exec(
        select(Listing)
        .where(col(Listing.id).in_(ordered))
        .order_by(col(Listing.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.id: row for row in rows}


def lock_listing(session: Session, listing_id: uuid.UUID) -> Listing:
    found = lock_listings(session, [listing_id]).get(listing_id)
    if found is None:
        raise not_found("listing", listing_id)
    return found


def reserved_t(
    session: Session,
    listing_id: uuid.UUID,
    *,
    now: datetime,
    excluding_order: uuid.UUID | None = None,
) -> int:
    """Tonnes of the listing reserved by open orders whose hold has not expired (one range of
    ``ix_market_order_line_reserved``: however many orders the listing had, whatever the
    planner's statistics say)."""
    query = (
        select(func.coalesce(func.sum(OrderLine.quantity_t), 0))
        .where(col(OrderLine.listing_id) == listing_id)
        .where(col(OrderLine.reserved_until) > now)
    )
    if excluding_order is not None:
        query = query.where(col(OrderLine.order_id) != excluding_order)
    return int(session.exec(query).one())


def ensure_sellable(session: Session, listing: Listing) -> None:
    """Refuse buying a terminated project's unsold tonnes (the registry's one predicate)."""
    batch = session.get(Batch, listing.batch_id)
    if batch is not None:
        suspension.ensure_movable(session, batch, org_owner(listing.seller_id))


def is_selling(listing: Listing, now: datetime) -> bool:
    return listing.status == ListingStatus.active and (
        listing.ends_at is None or listing.ends_at > now
    )


def open_t(
    session: Session,
    listing: Listing,
    *,
    now: datetime,
    excluding_order: uuid.UUID | None = None,
) -> int:
    """Tonnes a new order may still take (0 when the listing no longer sells)."""
    if not is_selling(listing, now):
        return 0
    return max(
        0,
        listing.listed_t
        - reserved_t(session, listing.id, now=now, excluding_order=excluding_order),
    )


def create_listing(
    session: Session,
    *,
    actor: Actor,
    batch_id: uuid.UUID,
    quantity_t: int,
    price_fen_per_t: int,
    min_order_t: int = 1,
    ends_at: datetime | None = None,
    seller_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Listing:
    """The actor's organisation offers ``quantity_t`` of its available tonnes of a batch."""
    require(actor, *SELLER_KINDS, action="Listing credits")
    moment = now_or(now)
    seller = seller_id or actor.organisation_id
    if seller is None or (not actor.is_platform_admin and seller != actor.organisation_id):
        raise InvalidListing(
            N_("Name the selling organisation (seller_id)."),
            errors=[{"field": "seller_id", "message": "required"}],
        )
    _check_numbers(quantity_t, price_fen_per_t, min_order_t)
    if ends_at is not None:
        if ends_at.tzinfo is None:
            raise InvalidListing(N_("The end date must carry a time zone."))
        if ends_at <= moment:
            raise InvalidListing(
                N_("The end date must be in the future."),
                errors=[{"field": "ends_at", "message": "in the past"}],
            )
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise not_found("batch", batch_id)
    project = session.get(Project, batch.project_id)
    assert project is not None
    listing = Listing(
        seller_id=seller,
        batch_id=batch.id,
        project_id=project.id,
        credit_type=str(project.type),
        district_adcode=project.district_adcode,
        vintage=batch.vintage,
        price_fen_per_t=price_fen_per_t,
        min_order_t=min_order_t,
        quantity_t=quantity_t,
        listed_t=0,
        ends_at=ends_at,
        created_by=actor.ref,
    )
    session.add(listing)
    session.flush()
    # The registry refuses tonnes that are not the seller's, or already listed, pledged, retired.
    registry_transfers.list_credits(
        session,
        batch_id=batch.id,
        owner=org_owner(seller),
        quantity_t=quantity_t,
        listing_ref=listing.ref,
    )
    listing.listed_t = quantity_t
    resync_hold(session, listing, now=moment)
    audit.record(
        session,
        actor=actor.ref,
        action="listing.created",
        subject_type="listing",
        subject_id=listing.id,
        payload={
            "batch": batch.serial_prefix,
            "quantity_t": quantity_t,
            "price_fen_per_t": price_fen_per_t,
            "min_order_t": min_order_t,
        },
    )
    return listing


def _check_numbers(quantity_t: int, price_fen_per_t: int, min_order_t: int) -> None:
    errors = []
    if not 0 < quantity_t <= MAX_LISTING_T:
        errors.append({"field": "quantity_t", "message": "must be a positive number of tonnes"})
    if not 0 < price_fen_per_t <= MAX_PRICE_FEN_PER_T:
        errors.append({"field": "price_fen_per_t", "message": "out of range"})
    if not 0 < min_order_t <= max(quantity_t, 1):
        errors.append({"field": "min_order_t", "message": "between 1 and the quantity"})
    if errors:
        raise InvalidListing(
            N_(
                "List a positive number of tonnes at a price between 0.01 and 100,000 CNY/t,"
                " with a minimum order no larger than the quantity."
            ),
            errors=errors,
        )


def resync_hold(session: Session, listing: Listing, *, now: datetime | None = None) -> None:
    """Make the wallet hold reserve exactly ``listed_t`` (call with the listing locked)."""
    moment = now_or(now)
    batch = session.get(Batch, listing.batch_id)
    assert batch is not None
    if listing.wallet_hold_id is not None:
        current = wallet.get_hold(session, listing.wallet_hold_id)
        if (
            current.status == HoldStatus.pending
            and current.amount == listing.listed_t
            and not wallet.is_expired(current, moment)
        ):
            return
        if current.status == HoldStatus.pending and not wallet.is_expired(current):
            wallet.void_hold(session, current.id)
        listing.wallet_hold_id = None
    if listing.listed_t > 0:
        seller = org_owner(listing.seller_id)
        held = wallet.hold(
            session,
            debit_account_id=credit_account(session, batch.asset_code, seller),
            credit_account_id=credit_account(
                session, batch.asset_code, f"system:{LISTING_HOLD_ESCROW}"
            ),
            amount=listing.listed_t,
            expires_at=_hold_expiry(listing, moment),
            code="listing",
            scope="market",
            metadata={"listing": str(listing.id), "batch": batch.serial_prefix},
        )
        listing.wallet_hold_id = held.id
    listing.updated_at = utcnow()
    session.add(listing)
    session.flush()


def release_unreserved(
    session: Session, listing: Listing, *, now: datetime | None = None, actor_ref: str
) -> int:
    """A listing that no longer sells gives back its tonnes not reserved by open orders
    (with the listing locked); returns the tonnes released."""
    moment = now_or(now)
    if is_selling(listing, moment):
        return 0
    if listing.status == ListingStatus.active:  # past its end date
        listing.status = ListingStatus.ended
    keep = reserved_t(session, listing.id, now=moment)
    release = listing.listed_t - keep
    if release <= 0:
        return 0
    registry_transfers.unlist(
        session,
        batch_id=listing.batch_id,
        owner=org_owner(listing.seller_id),
        listing_ref=listing.ref,
        quantity_t=release,
    )
    listing.listed_t = keep
    resync_hold(session, listing, now=moment)
    audit.record(
        session,
        actor=actor_ref,
        action="listing.released",
        subject_type="listing",
        subject_id=listing.id,
        payload={"released_t": release, "still_listed_t": keep, "status": str(listing.status)},
    )
    return release


def delist(
    session: Session, *, actor: Actor, listing_id: uuid.UUID, now: datetime | None = None
) -> Listing:
    """The seller withdraws a listing: open tonnes go back at once; tonnes reserved by orders
    awaiting payment stay listed until those orders settle or lapse."""
    require(actor, *SELLER_KINDS, action="Delisting credits")
    listing = lock_listing(session, listing_id)
    if not actor.is_platform_admin and listing.seller_id != actor.organisation_id:
        raise not_found("listing", listing_id)
    if listing.status != ListingStatus.active:
        raise ListingClosed(
            N_("Listing {id} is {status}."), id=str(listing.id), status=str(listing.status)
        )
    listing.status = ListingStatus.closed
    session.add(listing)
    release_unreserved(session, listing, now=now, actor_ref=actor.ref)
    audit.record(
        session,
        actor=actor.ref,
        action="listing.delisted",
        subject_type="listing",
        subject_id=listing.id,
        payload={"still_listed_t": listing.listed_t},
    )
    return listing


def sweep(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Release the tonnes of listings that stopped selling (ended, delisted) and are no longer
    reserved; returns the tonnes released. Run by ``tanhui market expire``."""
    moment = now_or(now)
    candidates = session.exec(
        select(Listing.id)
        .where(col(Listing.listed_t) > 0)
        .where(
            (col(Listing.status) != ListingStatus.active)
            | (col(Listing.ends_at).is_not(None) & (col(Listing.ends_at) <= moment))
        )
        .order_by(col(Listing.id))
        .limit(limit)
    ).all()
    released = 0
    for listing in lock_listings(session, list(candidates)).values():
        released += release_unreserved(session, listing, now=moment, actor_ref="system:market")
    return released


def get_listing(session: Session, listing_id: uuid.UUID) -> Listing:
    found = session.get(Listing, listing_id)
    if found is None:
        raise not_found("listing", listing_id)
    return found


@dataclass(frozen=True)
class ListingQuery:
    credit_type: str | None = None
    district_adcode: str | None = None
    vintage: int | None = None
    min_price_fen: int | None = None
    max_price_fen: int | None = None
    project_id: uuid.UUID | None = None
    seller_id: uuid.UUID | None = None
    include_closed: bool = False
    limit: int = 50
    offset: int = 0


def search(session: Session, query: ListingQuery, *, now: datetime | None = None) -> list[Listing]:
    """Listings by type, district, vintage, price (cheapest first)."""
    statement = search_statement(search_shape(query))
    return list(session.exec(statement, params=search_params(query, now_or(now))).all())


# The search's optional filters: ListingQuery field -> the condition on its bound value.
_SEARCH_FILTERS: dict[str, Callable[[Any], Any]] = {
    "credit_type": lambda value: col(Listing.credit_type) == value,
    "district_adcode": lambda value: col(Listing.district_adcode) == value,
    "vintage": lambda value: col(Listing.vintage) == value,
    "min_price_fen": lambda value: col(Listing.price_fen_per_t) >= value,
    "max_price_fen": lambda value: col(Listing.price_fen_per_t) <= value,
    "project_id": lambda value: col(Listing.project_id) == value,
    "seller_id": lambda value: col(Listing.seller_id) == value,
}


def search_shape(query: ListingQuery) -> tuple[str, ...]:
    """Which conditions ``query`` sets ("open" unless closed listings are included): searches
    of one shape share one statement, built once, whatever their values."""
    present = tuple(name for name in _SEARCH_FILTERS if getattr(query, name) not in (None, ""))
    return present if query.include_closed else ("open", *present)


def search_params(query: ListingQuery, moment: datetime) -> dict[str, Any]:
    """The values :func:`search_statement` binds (``moment``: the clock of the open check)."""
    params = {name: getattr(query, name) for name in search_shape(query) if name != "open"}
    params.update(
        moment=moment,
        page_offset=max(0, query.offset),
        page_limit=max(1, min(query.limit, MAX_PAGE)),
    )
    return params


_SEARCH_STATEMENTS: dict[tuple[str, ...], SelectOfScalar[Listing]] = {}  # at most 2**8 shapes


def search_statement(shape: tuple[str, ...]) -> SelectOfScalar[Listing]:
    """The page of listings a search of ``shape`` asks for, cheapest first, with its values as
    bound parameters (:func:`search_params`). Building a statement cost more than running it,
    so each shape's is built once per process."""
    found = _SEARCH_STATEMENTS.get(shape)
    if found is None:
        found = _SEARCH_STATEMENTS[shape] = _build_search(shape)
    return found


def _build_search(shape: tuple[str, ...]) -> SelectOfScalar[Listing]:
    # a terminated project's listings are not offered (registry.service.suspension)
    statement = select(Listing).where(
        col(Listing.project_id).not_in(suspension.suspended_project_ids())
    )
    for name in shape:
        if name == "open":
            moment = bindparam("moment", type_=UTCDateTime())
            statement = statement.where(col(Listing.status) == ListingStatus.active).where(
                col(Listing.ends_at).is_(None) | (col(Listing.ends_at) > moment)
            )
        else:
            statement = statement.where(_SEARCH_FILTERS[name](bindparam(name)))
    return (
        statement.order_by(col(Listing.price_fen_per_t), col(Listing.created_at), col(Listing.id))
        .offset(bindparam("page_offset", type_=Integer()))
        .limit(bindparam("page_limit", type_=Integer()))
    )


def open_quantities(
    session: Session, listings: Sequence[Listing], *, now: datetime | None = None
) -> dict[uuid.UUID, int]:
    """Open tonnes of several listings in one query (for pages and search results)."""
    moment = now_or(now)
    ids = [listing.id for listing in listings]
    if not ids:
        return {}
    rows = session.exec(
        select(OrderLine.listing_id, func.sum(OrderLine.quantity_t))
        .where(col(OrderLine.listing_id).in_(ids))
        .where(col(OrderLine.reserved_until) > moment)
        .group_by(col(OrderLine.listing_id))
    ).all()
    reserved = {listing_id: int(total or 0) for listing_id, total in rows}
    return {
        listing.id: (
            max(0, listing.listed_t - reserved.get(listing.id, 0))
            if is_selling(listing, moment)
            else 0
        )
        for listing in listings
    }


def listings_of_seller(session: Session, seller_id: uuid.UUID) -> list[Listing]:
    return list(
        session.exec(
            select(Listing)
            .where(col(Listing.seller_id) == seller_id)
            .order_by(col(Listing.created_at).desc())
        ).all()
    )
