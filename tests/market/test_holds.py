"""Market holds (issue 16): a per-buyer cap on tonnes held unpaid, bank transfers (holds of
days) only for buyers whose unified social credit code platform staff verified, shorter holds
for the others; all through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from market.models import Order, VerifiedBuyer
from tanhui import uscc
from tanhui.models import AuditRecord, OrgKind
from tests.market import helpers
from tests.market.test_api import Caller, caller, world_with_callers

# Published codes of real companies (business licences, 国家企业信用信息公示系统).
HUAWEI = "914403001922038216"  # 华为技术有限公司
ALIBABA_CHINA = "91330100716105852F"  # 阿里巴巴（中国）网络技术有限公司


def test_published_codes_pass_the_checksum_and_typos_do_not() -> None:
    assert uscc.is_valid(HUAWEI) and uscc.is_valid(ALIBABA_CHINA)
    assert uscc.normalise(" 9133 0100 7161 0585 2f ") == ALIBABA_CHINA
    assert not uscc.is_valid(HUAWEI[:17] + "7")  # wrong check character
    assert not uscc.is_valid("914403001922038261")  # two digits swapped
    assert not uscc.is_valid(HUAWEI[:17])  # too short
    assert not uscc.is_valid("91330100716105852I")  # I is not in the alphabet
    # a check value of 31 is written 0
    bodies = (f"9133000012345{n:04d}" for n in range(10_000))
    body = next(body for body in bodies if uscc.check_character(body) == "0")
    assert uscc.is_valid(body + "0") and not uscc.is_valid(body + "Y")


def orders_count(session: Session) -> int:
    session.expire_all()
    count = int(session.exec(select(func.count()).select_from(Order)).one())
    session.rollback()  # SQLite: free the write lock for the app
    return count


def order_body(listing_id: uuid.UUID, quantity_t: int, provider: str) -> dict[str, object]:
    return {
        "lines": [{"listing_id": str(listing_id), "quantity_t": quantity_t}],
        "provider": provider,
    }


def verify(client: TestClient, finance: Caller, target: uuid.UUID, code: str) -> object:
    return client.post(
        f"/api/v1/market/buyers/{target}/verification", json={"uscc": code}, headers=finance.headers
    )


def test_bank_transfer_needs_a_verified_code(session: Session, client: TestClient) -> None:
    world, _coop, buyer, finance = world_with_callers(session)
    item = helpers.listing(session, world, quantity_t=1_000)
    session.commit()
    item_id = item.id  # (the session's objects are expired below)
    # an enterprise nobody verified cannot hold tonnes for three days
    refused = client.post(
        "/api/v1/market/orders",
        json=order_body(item_id, 10, "bank_transfer"),
        headers=buyer.headers,
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("market/buyer-not-verified")
    assert orders_count(session) == 0

    # the buyer cannot verify itself; a typo is refused; staff confirm the real code
    own = verify(client, buyer, buyer.organisation_id, HUAWEI)
    assert own.status_code == 403
    typo = verify(client, finance, buyer.organisation_id, HUAWEI[:17] + "7")
    assert typo.status_code == 422
    assert typo.json()["errors"][0]["field"] == "uscc"
    assert session.get(VerifiedBuyer, buyer.organisation_id) is None
    session.rollback()
    done = verify(client, finance, buyer.organisation_id, HUAWEI.lower())
    assert done.status_code == 200, done.text
    assert done.json()["uscc"] == HUAWEI
    # one code, one organisation
    other = caller(session, OrgKind.enterprise)
    session.commit()
    taken = verify(client, finance, other.organisation_id, HUAWEI)
    assert taken.status_code == 409
    listed = client.get("/api/v1/market/buyers/verifications", headers=finance.headers).json()
    codes = {row["organisation_id"]: row["uscc"] for row in listed}
    assert codes[str(buyer.organisation_id)] == HUAWEI
    assert str(other.organisation_id) not in codes
    session.expire_all()
    audited = session.exec(
        select(AuditRecord)
        .where(col(AuditRecord.action) == "buyer.verified")
        .where(col(AuditRecord.subject_id) == str(buyer.organisation_id))
    ).all()
    assert [json.loads(row.payload)["uscc"] for row in audited] == [HUAWEI]
    session.rollback()

    placed = client.post(
        "/api/v1/market/orders",
        json=order_body(item_id, 10, "bank_transfer"),
        headers=buyer.headers,
    )
    assert placed.status_code == 201, placed.text
    created = datetime.fromisoformat(placed.json()["created_at"])
    held = datetime.fromisoformat(placed.json()["hold_expires_at"]) - created
    assert timedelta(days=3) - timedelta(minutes=1) < held <= timedelta(days=3)

    # revoked: back to online payment only
    gone = client.post(
        f"/api/v1/market/buyers/{buyer.organisation_id}/verification/revoke",
        headers=finance.headers,
    )
    assert gone.status_code == 200 and gone.json()["uscc"] == HUAWEI
    again = client.post(
        "/api/v1/market/orders",
        json=order_body(item_id, 10, "bank_transfer"),
        headers=buyer.headers,
    )
    assert again.status_code == 403


def test_unverified_buyers_hold_for_less_time(session: Session, client: TestClient) -> None:
    world, _coop, buyer, finance = world_with_callers(session)
    item = helpers.listing(session, world, quantity_t=1_000)
    session.commit()

    def hold_of(who: Caller) -> timedelta:
        placed = client.post(
            "/api/v1/market/orders", json=order_body(item.id, 5, "sandbox"), headers=who.headers
        )
        assert placed.status_code == 201, placed.text
        body = placed.json()
        return datetime.fromisoformat(body["hold_expires_at"]) - datetime.fromisoformat(
            body["created_at"]
        )

    unverified = hold_of(buyer)
    assert verify(client, finance, buyer.organisation_id, ALIBABA_CHINA).status_code == 200
    verified = hold_of(buyer)
    assert unverified <= timedelta(minutes=15) < verified <= timedelta(minutes=30)


def test_one_buyer_cannot_hold_the_whole_market(session: Session, client: TestClient) -> None:
    world, _coop, buyer, finance = world_with_callers(session)
    item_id = helpers.listing(session, world, quantity_t=1_000).id
    session.commit()
    assert verify(client, finance, buyer.organisation_id, HUAWEI).status_code == 200
    # the attack of the issue: every open tonne, by bank transfer
    everything = client.post(
        "/api/v1/market/orders",
        json=order_body(item_id, 1_000, "bank_transfer"),
        headers=buyer.headers,
    )
    assert everything.status_code == 409, everything.text
    assert everything.headers["content-type"].startswith("application/problem+json")
    assert everything.json()["type"].endswith("market/hold-cap-exceeded")
    assert orders_count(session) == 0
    # a quarter of the 1,000 t on sale, across orders
    first = client.post(
        "/api/v1/market/orders",
        json=order_body(item_id, 200, "bank_transfer"),
        headers=buyer.headers,
    )
    assert first.status_code == 201
    room = client.get("/api/v1/market/holds", headers=buyer.headers).json()
    assert room == {"verified": True, "cap_t": 250, "held_t": 200, "free_t": 50}
    over = client.post(
        "/api/v1/market/orders", json=order_body(item_id, 51, "sandbox"), headers=buyer.headers
    )
    assert over.status_code == 409
    assert "250" in over.json()["detail"]
    assert orders_count(session) == 1
    exact = client.post(
        "/api/v1/market/orders", json=order_body(item_id, 50, "sandbox"), headers=buyer.headers
    )
    assert exact.status_code == 201
    # others still buy; cancelling gives the buyer its room back
    other = caller(session, OrgKind.enterprise)
    session.commit()
    assert (
        client.post(
            "/api/v1/market/orders", json=order_body(item_id, 100, "sandbox"), headers=other.headers
        ).status_code
        == 201
    )
    cancelled = client.post(
        f"/api/v1/market/orders/{first.json()['id']}/cancel", headers=buyer.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (
        client.post(
            "/api/v1/market/orders", json=order_body(item_id, 200, "sandbox"), headers=buyer.headers
        ).status_code
        == 201
    )


def test_a_small_market_still_sells_up_to_the_floor(session: Session, client: TestClient) -> None:
    world, _coop, buyer, _finance = world_with_callers(session)
    item = helpers.listing(session, world, quantity_t=120)
    session.commit()
    over = client.post(
        "/api/v1/market/orders", json=order_body(item.id, 101, "sandbox"), headers=buyer.headers
    )
    assert over.status_code == 409
    assert (
        client.post(
            "/api/v1/market/orders", json=order_body(item.id, 100, "sandbox"), headers=buyer.headers
        ).status_code
        == 201
    )
