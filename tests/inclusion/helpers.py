"""Partners, residents and signed batches for the carbon-inclusion tests."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.inclusion.service import partners, residents
from registry.inclusion.service.signatures import sign
from tanhui import identity
from tanhui.db import utcnow
from tanhui.models import Resident

_counter = itertools.count(1)
ALL_SCENARIOS = ["bus", "metro", "bike", "walk", "recycling", "tableware", "tourism", "second_hand"]


def partner(
    session: Session, scenarios: list[str] | None = None, name: str = ""
) -> tuple[uuid.UUID, str]:
    """A new data partner: (id, secret)."""
    created = partners.create_partner(
        session,
        name=name or f"partner {next(_counter)} {uuid.uuid4().hex[:6]}",
        scenarios=scenarios or ALL_SCENARIOS,
    )
    return created.partner.id, created.secret


def card_issuer(session: Session, name: str = "") -> tuple[uuid.UUID, str]:
    """A data partner that issues citizen cards (市民卡公司): (id, secret)."""
    issuer_id, secret = partner(session, ["bus"], name=name)
    partners.update_partner(
        session, partners.get_partner(session, issuer_id), issues_citizen_cards=True, actor="test"
    )
    return issuer_id, secret


def card_attestation(secret: str, number: str, phone: str, *, at: datetime | None = None) -> str:
    """The issuer's signed statement that card ``number`` is held by ``phone`` (normalised)."""
    moment = int((at or utcnow()).timestamp())
    return sign(secret, residents.card_statement(number, phone), timestamp=moment)


def link_card(session: Session, holder: Resident, number: str) -> Resident:
    """Link ``number`` to ``holder`` with a fresh issuer's proof (through the service)."""
    issuer_id, secret = card_issuer(session)
    phone = identity.resident_phone(holder)
    return residents.link_citizen_card(
        session,
        holder,
        number,
        issuer=str(issuer_id),
        attestation=card_attestation(secret, residents.normalise_citizen_card(number), phone),
        ip="192.0.2.1",
        actor="test",
    )


def resident(session: Session, phone: str | None = None) -> Resident:
    number = phone or f"139{next(_counter) % 10**8:08d}"
    return residents.register_resident(session, phone=number)


def phone_of(number: Resident | str) -> str:
    from tanhui import identity

    return identity.resident_phone(number) if isinstance(number, Resident) else number


def event(
    who: Resident | str,
    *,
    scenario: str = "bus",
    quantity: float | str = 10,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ref: dict[str, str] = (
        {"resident_id": str(who.id)} if isinstance(who, Resident) else {"phone": who}
    )
    if "resident" in extra:
        ref = extra.pop("resident")
    when = occurred_at or utcnow() - timedelta(hours=1)
    return {
        "partner_event_id": event_id or f"e-{uuid.uuid4().hex[:12]}",
        "resident": ref,
        "scenario": scenario,
        "quantity": quantity,
        "occurred_at": when.isoformat(),
        **extra,
    }


def body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}, separators=(",", ":")).encode()


def headers(
    partner_id: uuid.UUID, secret: str, raw: bytes, *, at: datetime | None = None
) -> dict[str, str]:
    moment = at or utcnow()
    return {
        "X-Tanhui-Partner": str(partner_id),
        "X-Tanhui-Signature": sign(secret, raw, timestamp=int(moment.timestamp())),
        "Content-Type": "application/json",
    }


def post(
    client: TestClient,
    partner_id: uuid.UUID,
    secret: str,
    events: list[dict[str, Any]],
    *,
    at: datetime | None = None,
) -> Any:
    raw = body(events)
    return client.post(
        "/api/v1/points/events", content=raw, headers=headers(partner_id, secret, raw, at=at)
    )


def give_points(session: Session, who: Resident, points: int) -> None:
    """Credit points straight from the platform's points issuance (as an accrual would)."""
    import wallet.service as wallet

    source = wallet.system_account(session, "points_issuance", wallet.ASSET_POINTS)
    target = wallet.account_for(session, asset=wallet.ASSET_POINTS, owner=f"resident:{who.id}")
    wallet.post_entry(
        session,
        code="points_accrual",
        transfers=[wallet.Transfer(source.id, target.id, points)],
    )


def points_of(session: Session, who: Resident) -> tuple[int, int]:
    """(balance, available)."""
    view = residents.balances(session, who)
    return view.points_balance, view.points_available


def merchant_voucher(session: Session, *, name: str, title: str, points_price: int = 20) -> Any:
    """A merchant, its cashier and a voucher it offers: (merchant, cashier, reward)."""
    from market.rewards.models import RewardKind
    from market.rewards.service import catalogue
    from tanhui.models import OrgKind
    from tests import factories

    merchant = factories.organisation(session, OrgKind.merchant, name=name)
    cashier = factories.user(session, org=merchant)
    reward = catalogue.create_reward(
        session,
        sponsor=merchant,
        kind=RewardKind.voucher,
        title=title,
        points_price=points_price,
        actor="test",
    )
    return merchant, cashier, reward
