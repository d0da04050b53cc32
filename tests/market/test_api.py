"""The market's HTTP API: listings, orders with Idempotency-Key, checkout, statements, funds."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import RetirementPurpose
from tanhui.models import Organisation, OrgKind, Role
from tests import factories
from tests.market import helpers


@dataclass
class Caller:
    organisation_id: uuid.UUID
    headers: dict[str, str]


def caller(session: Session, kind: OrgKind, org: Organisation | None = None) -> Caller:
    user = factories.user(session, kind=kind, role=Role.member, org=org)
    token = factories.token_for(session, user)
    assert user.organisation_id is not None
    return Caller(
        user.organisation_id, {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    )


def world_with_callers(session: Session) -> tuple[helpers.World, Caller, Caller, Caller]:
    world = helpers.issued_world(session, areas=[(100.0, {0: 6_000, 1: 4_000})])
    assert world.coop.organisation_id is not None
    coop_org = session.get(Organisation, world.coop.organisation_id)
    coop = caller(session, OrgKind.cooperative, coop_org)
    buyer = caller(session, OrgKind.enterprise)
    finance = caller(session, OrgKind.platform)
    session.commit()
    return world, coop, buyer, finance


def test_list_search_order_pay_and_read_statements(session: Session, client: TestClient) -> None:
    world, coop, buyer, _finance = world_with_callers(session)
    listed = client.post(
        "/api/v1/market/listings",
        json={"batch_id": str(world.batch.id), "quantity_t": 200, "price_fen_per_t": 7_341},
        headers={**coop.headers, "Idempotency-Key": "list-1"},
    )
    assert listed.status_code == 201, listed.text
    listing = listed.json()
    assert listing["open_t"] == 200 and listing["credit_type"] == "bamboo"
    assert listing["district"] is not None
    found = client.get("/api/v1/market/listings", params={"type": "bamboo", "max_price_fen": 8_000})
    assert [item["id"] for item in found.json()] == [listing["id"]]
    body = {
        "lines": [{"listing_id": listing["id"], "quantity_t": 20}],
        "retire_on_purchase": True,
        "beneficiary": "湖州绿能 2026 年度碳中和",
        "purpose": RetirementPurpose.annual_neutrality.value,
    }
    headers = {**buyer.headers, "Idempotency-Key": "order-1"}
    first = client.post("/api/v1/market/orders", json=body, headers=headers)
    again = client.post("/api/v1/market/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["provider"] == "sandbox"
    other = client.post(
        "/api/v1/market/orders",
        json={**body, "lines": [{**body["lines"][0], "quantity_t": 1}]},
        headers=headers,
    )
    assert other.status_code == 409
    order = first.json()
    assert client.get(f"/api/v1/market/listings/{listing['id']}").json()["open_t"] == 180
    checkout = client.post(f"/api/v1/market/orders/{order['id']}/checkout", headers=buyer.headers)
    assert checkout.status_code == 200, checkout.text
    assert checkout.json()["checkout_url"].endswith(
        f"/market/sandbox/{checkout.json()['payment']['id']}"
    )
    paid = client.post(
        f"/api/v1/market/sandbox/payments/{checkout.json()['payment']['id']}/complete",
        headers=buyer.headers,
    )
    assert paid.json()["outcome"] == "settled"
    settled = paid.json()["order"]
    assert settled["status"] == "settled" and settled["outstanding_fen"] == 0
    (line,) = settled["lines"]
    assert line["certificate_id"]
    # another enterprise cannot see it
    stranger = caller(session, OrgKind.enterprise)
    session.commit()
    assert (
        client.get(f"/api/v1/market/orders/{order['id']}", headers=stranger.headers).status_code
        == 404
    )
    receipt = client.get(f"/api/v1/market/orders/{order['id']}/receipt", headers=buyer.headers)
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")
    assert receipt.headers["content-type"] == "application/pdf"
    statement = client.get("/api/v1/market/statements/enterprise", headers=buyer.headers).json()
    assert statement["bought_t"] == 20 and statement["spent_fen"] == 20 * 7_341
    assert [row["certificate_id"] for row in statement["certificates"]] == [line["certificate_id"]]
    assert statement["certificates"][0]["verify_url"].endswith(f"/verify/{line['certificate_id']}")
    sales = client.get("/api/v1/market/statements/cooperative", headers=coop.headers).json()
    (sale,) = sales["sales"]
    assert sale["quantity_t"] == 20 and sale["amount_fen"] == 20 * 7_341
    assert sale["fee_fen"] + sale["cooperative_fen"] + sale["households_fen"] == sale["amount_fen"]
    assert len(sales["households"]) == 2
    shares = sorted(h["sales_fen"] for h in sales["households"])
    assert sum(shares) == sale["households_fen"]
    household_id = next(
        h["household_id"] for h in sales["households"] if h["sales_fen"] == shares[-1]
    )
    own = client.get(f"/api/v1/market/statements/households/{household_id}", headers=coop.headers)
    assert own.json()["total_fen"] == shares[-1] == own.json()["balance_fen"]
    assert (
        client.get(
            f"/api/v1/market/statements/households/{household_id}", headers=buyer.headers
        ).status_code
        == 404
    )
    link = client.get(
        f"/api/v1/market/statements/households/{household_id}/link", headers=coop.headers
    ).json()
    token = link["url"].rsplit("/h/", 1)[1]
    by_link = client.get(f"/api/v1/market/statements/by-link/{token}")
    assert by_link.status_code == 200 and by_link.json()["entries"][0]["kind"] == "sale_share"
    assert client.get(f"/api/v1/market/statements/by-link/{token}x").status_code == 404
    delisted = client.post(f"/api/v1/market/listings/{listing['id']}/delist", headers=coop.headers)
    assert delisted.status_code == 200 and delisted.json()["status"] == "closed"
    assert delisted.json()["listed_t"] == 0


def test_problems_for_bad_orders(session: Session, client: TestClient) -> None:
    world, coop, buyer, _finance = world_with_callers(session)
    item = helpers.listing(session, world, quantity_t=5)
    session.commit()
    sold_out = client.post(
        "/api/v1/market/orders",
        json={"lines": [{"listing_id": str(item.id), "quantity_t": 6}]},
        headers=buyer.headers,
    )
    assert sold_out.status_code == 409
    assert sold_out.json()["type"] == "/problems/market/sold-out"
    assert sold_out.json()["available"] == 5
    wash = client.post(
        "/api/v1/market/orders",
        json={"lines": [{"listing_id": str(item.id), "quantity_t": 1}]},
        headers=coop.headers,
    )
    assert wash.json()["type"] == "/problems/market/wash-trade"
    stripe = client.post(
        "/api/v1/market/orders",
        json={"lines": [{"listing_id": str(item.id), "quantity_t": 1}], "provider": "stripe"},
        headers=buyer.headers,
    )
    assert stripe.status_code == 409
    assert stripe.json()["type"] == "/problems/market/provider-unavailable"
    anonymous = client.post(
        "/api/v1/market/orders", json={"lines": [{"listing_id": str(item.id), "quantity_t": 1}]}
    )
    assert anonymous.status_code == 401
    unknown = client.post(
        "/api/v1/market/orders",
        json={"lines": [{"listing_id": str(uuid.uuid4()), "quantity_t": 1}]},
        headers=buyer.headers,
    )
    assert unknown.status_code == 404
    not_seller = client.post(
        "/api/v1/market/listings",
        json={"batch_id": str(world.batch.id), "quantity_t": 1, "price_fen_per_t": 1},
        headers=buyer.headers,
    )
    assert not_seller.status_code == 403


def test_bank_transfer_over_http(session: Session, client: TestClient) -> None:
    world, _coop, buyer, finance = world_with_callers(session)
    item = helpers.listing(session, world, quantity_t=50, price_fen_per_t=5_900)
    session.commit()
    verified = client.post(
        f"/api/v1/market/buyers/{buyer.organisation_id}/verification",
        json={"uscc": helpers.uscc_code()},
        headers=finance.headers,
    )
    assert verified.status_code == 200, verified.text
    order = client.post(
        "/api/v1/market/orders",
        json={
            "lines": [{"listing_id": str(item.id), "quantity_t": 10}],
            "provider": "bank_transfer",
        },
        headers=buyer.headers,
    ).json()
    assert order["bank_transfer"]["reference"] == order["number"]
    checkout = client.post(f"/api/v1/market/orders/{order['id']}/checkout", headers=buyer.headers)
    assert checkout.json()["bank_transfer"]["amount_fen"] == 59_000
    refused = client.post(
        "/api/v1/market/bank-transfers/confirm",
        json={"reference": order["number"], "amount_fen": 59_000, "bank_reference": "B1"},
        headers=buyer.headers,
    )
    assert refused.status_code == 403
    waiting = client.get("/api/v1/market/bank-transfers", headers=finance.headers).json()
    assert [item["id"] for item in waiting] == [order["id"]]
    partial = client.post(
        "/api/v1/market/bank-transfers/confirm",
        json={"reference": order["number"], "amount_fen": 9_000, "bank_reference": "B1"},
        headers={**finance.headers, "Idempotency-Key": "b1"},
    )
    assert partial.json()["outcome"] == "partial" and partial.json()["outstanding_fen"] == 50_000
    rest = client.post(
        "/api/v1/market/bank-transfers/confirm",
        json={"reference": order["number"], "amount_fen": 51_000, "bank_reference": "B2"},
        headers=finance.headers,
    )
    assert rest.json()["outcome"] == "settled" and rest.json()["refunded_fen"] == 1_000
    refunds = client.get(f"/api/v1/market/orders/{order['id']}/refunds", headers=buyer.headers)
    assert [(r["reason"], r["amount_fen"]) for r in refunds.json()] == [("excess", 1_000)]


def test_fund_over_http(session: Session, client: TestClient) -> None:
    world, _coop, _buyer, finance = world_with_callers(session)
    fund = caller(session, OrgKind.compensation_fund)
    session.commit()
    district = world.project.district_adcode
    standard = client.post(
        "/api/v1/market/compensation/standards",
        json={
            "year": 2026,
            "land_type": "bamboo",
            "district_adcode": district,
            "rate_fen_per_mu_year": 3_000,
        },
        headers=fund.headers,
    )
    assert standard.status_code == 201, standard.text
    assert standard.json()["district"]
    drafted = client.post(
        "/api/v1/market/compensation/payout-rounds", json={"year": 2026}, headers=fund.headers
    )
    assert drafted.status_code == 201, drafted.text
    payout_round = drafted.json()
    assert payout_round["parcels"] == 1 and payout_round["total_fen"] > 0
    assert len(payout_round["lines"]) == 3  # the cooperative and two households
    short = client.post(
        f"/api/v1/market/compensation/payout-rounds/{payout_round['id']}/pay",
        headers=fund.headers,
    )
    assert short.status_code == 409
    assert short.json()["type"] == "/problems/wallet/insufficient-funds"
    deposit = client.post(
        "/api/v1/market/compensation/deposits",
        json={
            "fund_id": str(fund.organisation_id),
            "amount_fen": payout_round["total_fen"],
            "bank_reference": "FUND-1",
        },
        headers=finance.headers,
    )
    assert deposit.status_code == 201 and deposit.json()["balance_fen"] == payout_round["total_fen"]
    paid = client.post(
        f"/api/v1/market/compensation/payout-rounds/{payout_round['id']}/pay",
        headers={**fund.headers, "Idempotency-Key": "pay-2026"},
    )
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    replay = client.post(
        f"/api/v1/market/compensation/payout-rounds/{payout_round['id']}/pay",
        headers={**fund.headers, "Idempotency-Key": "pay-2026"},
    )
    assert replay.json() == paid.json()
    listed = client.get("/api/v1/market/compensation/payout-rounds", headers=fund.headers).json()
    assert [item["status"] for item in listed] == ["paid"]


def test_a_household_statement_link_expires(
    session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link lasts ``household_link_days`` (180): its expiry date is given with it, and an old
    link answers 410 with a problem telling the household to ask for a new one."""
    import itsdangerous.timed

    from tanhui.settings import get_settings

    world, coop, _buyer, _finance = world_with_callers(session)
    (household, *_rest) = world.households
    household_id = household.id
    session.commit()
    url = f"/api/v1/market/statements/households/{household_id}/link"
    fresh = client.get(url, headers=coop.headers).json()
    expires = datetime.fromisoformat(fresh["expires_at"])
    days = get_settings().household_link_days
    assert days == 180
    assert abs((expires - datetime.now(UTC)) - timedelta(days=days)) < timedelta(minutes=5)
    token = fresh["url"].rsplit("/h/", 1)[1]
    assert client.get(f"/api/v1/market/statements/by-link/{token}").status_code == 200

    signed_long_ago = int(time.time()) - (days + 1) * 86_400
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: signed_long_ago
    )
    old = client.get(url, headers=coop.headers).json()
    monkeypatch.undo()
    old_token = old["url"].rsplit("/h/", 1)[1]
    answer = client.get(f"/api/v1/market/statements/by-link/{old_token}")
    assert answer.status_code == 410
    problem = answer.json()
    assert problem["type"].endswith("/market/statement-link-expired")
    assert problem["days"] == days and "180" in problem["detail"]
    page = client.get(f"/h/{old_token}", headers={"Accept": "text/html"})
    assert page.status_code == 410 and "过期" in page.text
    assert client.get(f"/h/{token}", headers={"Accept": "text/html"}).status_code == 200
