"""Residents as carbon inclusion sees them: how partners name them (phone, citizen card, id),
their ledger accounts, balances, and the citizen card they may link."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, text
from sqlmodel import Session, col, select

import wallet.service as wallet
from registry.inclusion.errors import (
    CitizenCardNotProven,
    CitizenCardRateLimited,
    InvalidCitizenCard,
    UnknownResident,
)
from registry.inclusion.models import InclusionEvent, InclusionPartner, InclusionPoolShare
from registry.inclusion.service import partners, signatures
from tanhui import audit, identity, pii, throttle
from tanhui.db import database_kind, utcnow
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.models import Resident
from wallet.models import Account

_CARD = re.compile(r"^[0-9A-Z]{8,20}$")  # ASCII only: numbers are folded first
LOOKUP_CHUNK = 1_000


def normalise_citizen_card(raw: str) -> str:
    """A citizen card number: 8 to 20 letters and digits; spaces and dashes ignored."""
    value = re.sub(r"[\s\-]", "", pii.fold(raw)).upper()
    if not _CARD.match(value):
        raise InvalidCitizenCard(
            N_("A citizen card number has 8 to 20 letters and digits."),
            errors=[{"field": "number", "message": "invalid"}],
        )
    return value


def owner_of(resident_id: uuid.UUID) -> str:
    return f"resident:{resident_id}"


def register_resident(
    session: Session, *, phone: str, display_name: str = "", actor: str = "system:cli"
) -> Resident:
    """A new resident with their points and reductions accounts opened."""
    resident = identity.create_resident(
        session, phone=phone, display_name=display_name, actor=actor
    )
    open_accounts(session, resident.id)
    return resident


def open_accounts(session: Session, resident_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The resident's (POINTS, RED_G) account ids, opened if missing."""
    owner = owner_of(resident_id)
    points = wallet.account_for(session, asset=wallet.ASSET_POINTS, owner=owner)
    grams = wallet.account_for(session, asset=wallet.ASSET_REDUCTION_G, owner=owner)
    return points.id, grams.id


@dataclass(frozen=True)
class ResidentLookup:
    """Which resident each reference names (references that name nobody are absent), and, where
    the lookup found them on the way, the residents' (POINTS, RED_G) account ids."""

    by_phone: dict[str, uuid.UUID]
    by_card: dict[str, uuid.UUID]
    by_id: set[uuid.UUID]
    accounts: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = field(default_factory=dict)


def phone_index(raw: str) -> str | None:
    try:
        return pii.blind_index(pii.normalise_phone(raw), context=pii.PHONE)
    except DomainError:
        return None


def card_index(raw: str) -> str | None:
    try:
        return pii.blind_index(normalise_citizen_card(raw), context=pii.CITIZEN_CARD)
    except DomainError:
        return None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def lookup(
    session: Session,
    *,
    phone_indexes: Iterable[str],
    card_indexes: Iterable[str],
    ids: Iterable[uuid.UUID],
) -> ResidentLookup:
    """Find many residents at once by blind index or id (one query per kind)."""
    if database_kind(session) == "postgresql":
        return _lookup_postgresql(session, phone_indexes, card_indexes, ids)
    by_phone: dict[str, uuid.UUID] = {}
    by_card: dict[str, uuid.UUID] = {}
    found_ids: set[uuid.UUID] = set()
    for chunk in _chunks(sorted(set(phone_indexes))):
        for resident_id, index in session.exec(
            select(Resident.id, Resident.phone_index).where(col(Resident.phone_index).in_(chunk))
        ).all():
            by_phone[index] = resident_id
    for chunk in _chunks(sorted(set(card_indexes))):
        for resident_id, card in session.exec(
            select(Resident.id, Resident.citizen_card_index).where(
                col(Resident.citizen_card_index).in_(chunk)
            )
        ).all():
            if card is not None:
                by_card[card] = resident_id
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        found_ids.update(
            session.exec(
                select(Resident.id).where(col(Resident.id).in_(wanted[start : start + 1000]))
            ).all()
        )
    return ResidentLookup(by_phone=by_phone, by_card=by_card, by_id=found_ids)


# PostgreSQL: one array parameter per kind of reference and the resident's two main accounts
# joined on the way, in one statement for a batch. Every lookup is a subquery that cannot be
# flattened (LIMIT 1), so each is one probe of a unique index whatever the statistics say (a
# generic plan made with the statistics of nearly empty tables scanned the accounts once per
# resident: 300 ms a batch).
_PG_LOOKUP = text(
    "WITH r AS (SELECT 'p' AS kind, v.ref, x.id FROM unnest(CAST(:phones AS text[])) AS v(ref)"
    " CROSS JOIN LATERAL (SELECT id FROM resident WHERE phone_index = v.ref LIMIT 1) AS x"
    " UNION ALL SELECT 'c', v.ref, x.id FROM unnest(CAST(:cards AS text[])) AS v(ref)"
    " CROSS JOIN LATERAL (SELECT id FROM resident WHERE citizen_card_index = v.ref LIMIT 1) AS x"
    " UNION ALL SELECT 'i', v.ref::text, x.id FROM unnest(CAST(:ids AS uuid[])) AS v(ref)"
    " CROSS JOIN LATERAL (SELECT id FROM resident WHERE id = v.ref LIMIT 1) AS x)"
    " SELECT r.kind, r.ref, r.id, p.id, g.id FROM r"
    " LEFT JOIN LATERAL (SELECT id FROM wallet_account WHERE owner = 'resident:' || r.id::text"
    " AND asset = 'POINTS' AND purpose = 'main' LIMIT 1) AS p ON true"
    " LEFT JOIN LATERAL (SELECT id FROM wallet_account WHERE owner = 'resident:' || r.id::text"
    " AND asset = 'RED_G' AND purpose = 'main' LIMIT 1) AS g ON true"
)


def _lookup_postgresql(
    session: Session,
    phone_indexes: Iterable[str],
    card_indexes: Iterable[str],
    ids: Iterable[uuid.UUID],
) -> ResidentLookup:
    phones = sorted(set(phone_indexes))
    cards = sorted(set(card_indexes))
    wanted = sorted(set(ids))
    lookup = ResidentLookup(by_phone={}, by_card={}, by_id=set())
    if not (phones or cards or wanted):
        return lookup
    # Blind indexes are hex and ids are UUIDs: nothing in these literals needs quoting.
    rows = session.execute(
        _PG_LOOKUP,
        {
            "phones": "{" + ",".join(phones) + "}",
            "cards": "{" + ",".join(cards) + "}",
            "ids": "{" + ",".join(map(str, wanted)) + "}",
        },
    ).all()
    for kind, ref, resident_id, points, grams in rows:
        if kind == "p":
            lookup.by_phone[ref] = resident_id
        elif kind == "c":
            lookup.by_card[ref] = resident_id
        else:
            lookup.by_id.add(resident_id)
        if points is not None and grams is not None:
            lookup.accounts[resident_id] = (points, grams)
    return lookup


def get_resident(session: Session, resident_id: uuid.UUID) -> Resident:
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise UnknownResident(N_("No resident {resident_id}."), resident_id=str(resident_id))
    return resident


CARD_PROOF_TOLERANCE_S = 15 * 60
CARD_LINKS_PER_RESIDENT = throttle.Limit("card.link.resident", 5, timedelta(days=1))
CARD_LINKS_PER_ADDRESS = throttle.Limit("card.link.address", 20, timedelta(hours=1))


def card_statement(number: str, phone: str) -> bytes:
    """What a card issuer signs to attest that the holder of card ``number`` is the person with
    mobile ``phone`` (both normalised): signed like a partner's batch, ``t=<unix>,v1=<hex
    HMAC-SHA256 of "{t}.{statement}">`` (or ``ed25519=``), valid for 15 minutes."""
    return f"tanhui-citizen-card-v1\n{number}\n{phone}".encode()


def link_citizen_card(
    session: Session,
    resident: Resident,
    number: str,
    *,
    issuer: str,
    attestation: str,
    ip: str,
    actor: str,
) -> Resident:
    """Link a citizen card (市民卡) so that partners can report by card number, on the card
    issuer's attestation that its holder is this resident's phone.

    Whether the card is linked to someone else changes nothing in the answer: a proven holder
    takes the card over (the previous link ends, audited). Attempts are limited per resident and
    per client address, counted before the proof is checked.
    """
    counters = throttle.hold(
        session,
        (CARD_LINKS_PER_RESIDENT, str(resident.id)),
        (CARD_LINKS_PER_ADDRESS, throttle.client_address(ip)),
    )
    spent = throttle.exhausted(counters)
    if spent is not None:
        raise CitizenCardRateLimited(
            N_("Too many attempts to link a citizen card; try again later."),
            retry_after=spent.retry_after_s,
        )
    throttle.count(session, *counters)
    normalised = normalise_citizen_card(number)
    partner = _card_issuer(session, issuer)
    phone = identity.resident_phone(resident)
    try:
        signatures.verify(
            attestation,
            card_statement(normalised, phone),
            partners.keys_of(session, partner.id, active_only=True) if partner else [],
            now=utcnow(),
            tolerance_s=CARD_PROOF_TOLERANCE_S,
        )
    except DomainError:
        raise CitizenCardNotProven() from None
    assert partner is not None  # no keys, no valid attestation
    sealed = pii.seal(normalised, context=pii.CITIZEN_CARD)
    masked = _mask_card(normalised)
    holder = session.exec(
        select(Resident).where(col(Resident.citizen_card_index) == sealed.index).with_for_update()
    ).first()
    if holder is not None and holder.id != resident.id:
        holder.citizen_card_sealed = None
        holder.citizen_card_index = None
        session.add(holder)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="points.citizen_card.unlinked",
            subject_type="resident",
            subject_id=holder.id,
            payload={"card": masked, "reason": "proven by another holder"},
        )
    resident.citizen_card_sealed = sealed.sealed
    resident.citizen_card_index = sealed.index
    session.add(resident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.citizen_card.linked",
        subject_type="resident",
        subject_id=resident.id,
        payload={"card": masked, "issuer": str(partner.id)},
    )
    return resident


def _card_issuer(session: Session, issuer: str) -> InclusionPartner | None:
    """The active card-issuing partner ``issuer`` names, or None (answered like a bad proof)."""
    try:
        partner = session.get(InclusionPartner, uuid.UUID(str(issuer).strip()))
    except ValueError:
        return None
    if partner is None or not partner.active or not partner.issues_citizen_cards:
        return None
    return partner


def _mask_card(number: str) -> str:
    return number[:2] + "*" * (len(number) - 4) + number[-2:]


def unlink_citizen_card(session: Session, resident: Resident, *, actor: str) -> Resident:
    if resident.citizen_card_index is None:
        return resident
    resident.citizen_card_sealed = None
    resident.citizen_card_index = None
    session.add(resident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.citizen_card.unlinked",
        subject_type="resident",
        subject_id=resident.id,
    )
    return resident


def masked_citizen_card(resident: Resident) -> str | None:
    if resident.citizen_card_sealed is None:
        return None
    return _mask_card(pii.unseal(resident.citizen_card_sealed, context=pii.CITIZEN_CARD))


@dataclass(frozen=True)
class Balances:
    resident_id: uuid.UUID
    points_balance: int
    points_available: int
    reductions_g: int
    pooled_g: int
    receipts: int
    citizen_card_linked: bool


def balances(session: Session, resident: Resident) -> Balances:
    """Points (balance and available), grams ever credited and how many were pooled."""
    owner = owner_of(resident.id)
    points = wallet.find_account(session, asset=wallet.ASSET_POINTS, owner=owner)
    grams = wallet.find_account(session, asset=wallet.ASSET_REDUCTION_G, owner=owner)
    views = wallet.balances_of(session, [account for account in (points, grams) if account])
    points_view = views.get(points.id) if points else None
    grams_view = views.get(grams.id) if grams else None
    receipts = session.exec(
        select(func.count())
        .select_from(InclusionEvent)
        .where(col(InclusionEvent.resident_id) == resident.id)
    ).one()
    pooled = session.exec(
        select(func.coalesce(func.sum(InclusionPoolShare.grams), 0)).where(
            col(InclusionPoolShare.resident_id) == resident.id
        )
    ).one()
    return Balances(
        resident_id=resident.id,
        points_balance=points_view.balance if points_view else 0,
        points_available=points_view.available if points_view else 0,
        reductions_g=grams_view.posted_credits if grams_view else 0,
        pooled_g=int(pooled),
        receipts=int(receipts),
        citizen_card_linked=resident.citizen_card_index is not None,
    )


def accounts_of(
    session: Session, resident_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]]:
    """Each resident's (POINTS, RED_G) account ids, found in one query, opened where missing."""
    owners = {owner_of(resident_id): resident_id for resident_id in resident_ids}
    found: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
    names = sorted(owners)
    for start in range(0, len(names), LOOKUP_CHUNK):
        rows = session.exec(
            select(Account.owner, Account.asset, Account.id)
            .where(col(Account.owner).in_(names[start : start + LOOKUP_CHUNK]))
            .where(col(Account.asset).in_([wallet.ASSET_POINTS, wallet.ASSET_REDUCTION_G]))
            .where(col(Account.purpose) == "main")
        ).all()
        for owner, asset, account_id in rows:
            found.setdefault(owners[owner], {})[asset] = account_id
    result = {}
    for resident_id in resident_ids:
        accounts = found.get(resident_id, {})
        if len(accounts) == 2:
            result[resident_id] = (
                accounts[wallet.ASSET_POINTS],
                accounts[wallet.ASSET_REDUCTION_G],
            )
        else:
            result[resident_id] = open_accounts(session, resident_id)
    return result
