"""Issue 16, numbers: values no column can hold were read as numbers and answered 500
(``InvalidOperation``, ``OverflowError``, PostgreSQL's ``NumericValueOutOfRange``). Each finding
is sent through HTTP, on SQLite and PostgreSQL; each must be refused next to its field, with
nothing written, and the same fields must accept full-width digits."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from market.models import CompensationStandard, Listing, Order, OrderStatus
from market.rewards.models import Reward
from tanhui.models import Organisation, OrgKind, Role, User
from tests import factories
from tests.market import helpers

HTML = {"Accept": "text/html", "Accept-Language": "en"}
# each fits the forms' max_length (a longer value is refused by FastAPI before the handler)
HOSTILE = ("1e30", "1E+30", "NaN", "Infinity", "-inf", "9" * 19, "1" + "0" * 19, "0x10", "1_0e5")


def sign_in(client: TestClient, user: User) -> str:
    client.cookies.clear()
    return factories.login(client, user.email)


def member(session: Session, kind: OrgKind, org: Organisation | None = None) -> User:
    return factories.user(session, kind=kind, role=Role.member, org=org)


def test_public_market_search_refuses_numbers_no_column_holds(client: TestClient) -> None:
    """``GET /market?min_price=1e26`` and ``?vintage=9999999999999999999``: no sign-in needed."""
    for name, value, field_id in (
        ("min_price", "1e26", "f-min"),
        ("max_price", "1" + "0" * 30, "f-max"),
        ("vintage", "9999999999999999999", "f-vintage"),
        ("vintage", "99999999999", "f-vintage"),  # over INTEGER, under BIGINT
        ("vintage", "NaN", "f-vintage"),
    ):
        response = client.get("/market", params={name: value}, headers=HTML)
        assert response.status_code == 200, (name, value, response.status_code)
        assert f'id="{field_id}-error"' in response.text, (name, value)
    fine = client.get(
        "/market", params={"vintage": "２０２４", "min_price": "７３．４１"}, headers=HTML
    )
    assert fine.status_code == 200 and 'class="error"' not in fine.text


def test_listing_price_of_1e30_is_refused_on_its_field(
    session: Session, client: TestClient
) -> None:
    world = helpers.issued_world(session)
    assert world.coop.organisation_id is not None
    seller = member(
        session, OrgKind.cooperative, session.get(Organisation, world.coop.organisation_id)
    )
    session.commit()
    csrf = sign_in(client, seller)
    form = {"csrf_token": csrf, "batch_id": str(world.batch.id), "quantity_t": "10"}
    for price in (*HOSTILE, "100000.01"):  # the last: over the API's bound on a price
        refused = client.post("/market/sales/listings", data={**form, "price": price}, headers=HTML)
        assert refused.status_code == 422 and 'id="l-price-error"' in refused.text, price
    for quantity in HOSTILE:
        refused = client.post(
            "/market/sales/listings",
            data={**form, "quantity_t": quantity, "price": "1"},
            headers=HTML,
        )
        assert refused.status_code == 422, quantity
    session.expire_all()
    assert session.exec(select(Listing).where(col(Listing.batch_id) == world.batch.id)).all() == []
    session.rollback()  # ends the read (SQLite's lock) before the app writes
    listed = client.post(
        "/market/sales/listings",
        data={**form, "quantity_t": "１０", "price": "７３．４１"},
        follow_redirects=False,
    )
    assert listed.status_code == 303, listed.text
    made = session.exec(select(Listing).where(col(Listing.batch_id) == world.batch.id)).one()
    assert (made.quantity_t, made.price_fen_per_t) == (10, 7341)


def test_bank_transfer_amount_of_1e30_is_refused(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=5_900)
    placed = helpers.order(
        session, world.enterprise, item, 10, provider=helpers.Provider.bank_transfer
    )
    finance = member(session, OrgKind.platform)
    session.commit()
    csrf = sign_in(client, finance)
    form = {"csrf_token": csrf, "reference": placed.number, "bank_reference": "ICBC-9"}
    for amount in HOSTILE:
        refused = client.post(
            "/market/finance/confirm", data={**form, "amount": amount}, headers=HTML
        )
        assert refused.status_code == 422 and 'id="b-amount-error"' in refused.text, amount
    session.expire_all()
    order = session.get(Order, placed.id)
    assert order is not None and order.status != OrderStatus.settled
    session.rollback()
    paid = client.post(
        "/market/finance/confirm", data={**form, "amount": "５９０．００"}, headers=HTML
    )
    assert paid.status_code == 200
    session.expire_all()
    order = session.get(Order, placed.id)
    assert order is not None and order.status == OrderStatus.settled


def test_fund_rate_of_1e30_is_refused(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    fund = member(session, OrgKind.compensation_fund)
    session.commit()
    csrf = sign_in(client, fund)
    form = {
        "csrf_token": csrf,
        "year": "2026",
        "land_type": "bamboo",
        "district_adcode": world.project.district_adcode or "",
    }
    for rate in (*HOSTILE, "10000000.01"):
        refused = client.post("/fund/standards", data={**form, "rate": rate}, headers=HTML)
        assert refused.status_code == 422 and 'id="s-rate-error"' in refused.text, rate
    for year in HOSTILE:
        refused = client.post(
            "/fund/standards", data={**form, "year": year, "rate": "1"}, headers=HTML
        )
        assert refused.status_code == 422, year
    session.expire_all()
    assert session.exec(select(CompensationStandard)).all() == []


def test_reward_stock_of_2_to_the_63_is_refused(session: Session, client: TestClient) -> None:
    merchant = factories.user(session, kind=OrgKind.merchant, role=Role.owner)
    token = factories.token_for(session, merchant)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    offer = {"kind": "voucher", "title": "茶一杯", "points_price": 10}
    for stock in (2**63, 2**64, 10**30, 1e30, "1e30", "NaN", True, -1):
        refused = client.post(
            "/api/v1/points/rewards", json={**offer, "stock": stock}, headers=headers
        )
        assert refused.status_code == 422, (stock, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert any(error["field"] == "stock" for error in refused.json()["errors"]), refused.text
    assert session.exec(select(Reward)).all() == []
    session.rollback()
    for price in (10**30, 1e30, "1e3"):
        refused = client.post(
            "/api/v1/points/rewards", json={**offer, "points_price": price}, headers=headers
        )
        assert refused.status_code == 422, (price, refused.text)
    made = client.post("/api/v1/points/rewards", json={**offer, "stock": "１２"}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["stock"] == 12


def test_api_amounts_and_query_integers_are_bounded(session: Session, client: TestClient) -> None:
    """The API's deposits, court cases and wallet transfers of 2^63 are 422, not 500."""
    finance = factories.user(session, kind=OrgKind.platform, role=Role.owner)
    token = factories.token_for(session, finance)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    fund = factories.organisation(session, OrgKind.compensation_fund)
    session.commit()
    for amount in (2**63, 10**30, 1e30):
        deposit = client.post(
            "/api/v1/market/compensation/deposits",
            json={"fund_id": str(fund.id), "amount_fen": amount, "bank_reference": "x"},
            headers={**headers, "Idempotency-Key": f"deposit-{amount}"},
        )
        assert deposit.status_code == 422, (amount, deposit.text)
        assert [error["field"] for error in deposit.json()["errors"]] == ["amount_fen"]
    for limit in ("9" * 30, "1e3", "NaN"):
        page = client.get("/api/v1/public/batches", params={"limit": limit})
        assert page.status_code == 422, (limit, page.text)
