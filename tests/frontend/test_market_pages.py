"""The market's pages: browse, cart, checkout through the sandbox, orders and receipts; the
cooperative's sales, finance, the court and fund console, the public price index."""

from __future__ import annotations

import hashlib
import re
import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session

from market.models import Order, OrderStatus, VerifiedBuyer
from market.service import statements
from tanhui.models import Organisation, OrgKind, Role, User
from tests import factories
from tests.market import helpers

HTML = {"Accept": "text/html"}


def sign_in(client: TestClient, user: User) -> str:
    client.cookies.clear()
    return factories.login(client, user.email)


def member(session: Session, kind: OrgKind, org: Organisation | None = None) -> User:
    return factories.user(session, kind=kind, role=Role.member, org=org)


def coop_user(session: Session, world: helpers.World) -> User:
    assert world.coop.organisation_id is not None
    return member(
        session, OrgKind.cooperative, session.get(Organisation, world.coop.organisation_id)
    )


def test_browse_cart_checkout_sandbox_and_certificate(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    item = helpers.listing(session, world, quantity_t=500, price_fen_per_t=7_341)
    buyer = member(session, OrgKind.enterprise)
    session.commit()
    page = client.get("/market", params={"type": "bamboo"}, headers=HTML)
    assert page.status_code == 200
    assert item.project_id and "73.41" in page.text
    assert 'for="f-type"' in page.text and "<script" not in page.text
    csrf = sign_in(client, buyer)
    added = client.post(
        "/market/cart",
        data={"csrf_token": csrf, "listing_id": str(item.id), "quantity_t": "20"},
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"] == "/market/cart"
    cart = client.get("/market/cart", headers=HTML)
    assert "1,468.20" in cart.text  # 20 t × 73.41
    refused = client.post(
        "/market/checkout",
        data={"csrf_token": csrf, "provider": "sandbox", "retire_on_purchase": "on"},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert 'aria-invalid="true" aria-describedby="beneficiary-error"' in refused.text
    assert 'id="purpose-error"' in refused.text
    done = client.post(
        "/market/checkout",
        data={
            "csrf_token": csrf,
            "provider": "sandbox",
            "retire_on_purchase": "on",
            "beneficiary": "湖州绿能 2026 年度碳中和",
            "purpose": "annual_neutrality",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    sandbox_url = done.headers["location"]
    assert sandbox_url.startswith("/market/sandbox/")
    assert "tanhui_cart" in done.headers.get("set-cookie", "")
    sandbox = client.get(sandbox_url, headers=HTML)
    assert sandbox.status_code == 200 and "1,468.20" in sandbox.text
    paid = client.post(f"{sandbox_url}/pay", data={"csrf_token": csrf}, follow_redirects=False)
    assert paid.status_code == 303 and "checkout=settled" in paid.headers["location"]
    order_page = client.get(paid.headers["location"], headers=HTML)
    assert order_page.status_code == 200
    certificate = re.search(r'href="/verify/(THC-RC-[0-9A-Z-]+)"', order_page.text)
    assert certificate is not None
    orders_page = client.get("/market/orders", headers=HTML)
    assert certificate.group(1) in orders_page.text
    order_id = paid.headers["location"].split("/market/orders/")[1].split("?")[0]
    receipt = client.get(f"/market/orders/{order_id}/receipt.pdf")
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")
    session.expire_all()
    order = session.get(Order, uuid.UUID(order_id))
    assert order is not None and order.status == OrderStatus.settled
    session.rollback()  # SQLite: release the lock before the app reads again
    english = client.get("/market/orders", headers={**HTML, "Accept-Language": "en"})
    assert "Retirement certificates" in english.text


def test_pages_need_the_right_sign_in(session: Session, client: TestClient) -> None:
    enterprise = member(session, OrgKind.enterprise)
    session.commit()
    anonymous = client.get("/market/cart", headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    sign_in(client, enterprise)
    assert client.get("/market/finance", headers=HTML).status_code == 403
    assert client.get("/court", headers=HTML).status_code == 403
    assert client.get("/fund", headers=HTML).status_code == 403
    assert client.get("/market/sales", headers=HTML).status_code == 403
    assert client.get("/market/tokens", headers=HTML).status_code == 200


def test_tokens_page_creates_and_revokes(session: Session, client: TestClient) -> None:
    enterprise = member(session, OrgKind.enterprise)
    session.commit()
    csrf = sign_in(client, enterprise)
    created = client.post("/market/tokens", data={"csrf_token": csrf, "name": "ERP"}, headers=HTML)
    assert created.status_code == 201
    token = re.search(r'<code class="token">(thk_[^<]+)</code>', created.text)
    assert token is not None
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"}).status_code
        == 200
    )
    token_id = re.search(r'action="/market/tokens/([0-9a-f-]+)/revoke"', created.text)
    assert token_id is not None
    client.post(f"/market/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf})
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"}).status_code
        == 401
    )


def test_cooperative_lists_and_reads_household_statements(
    session: Session, client: TestClient
) -> None:
    world = helpers.issued_world(session)
    user = coop_user(session, world)
    session.commit()
    csrf = sign_in(client, user)
    page = client.get("/market/sales", headers=HTML)
    assert page.status_code == 200 and world.batch.serial_prefix in page.text
    bad = client.post(
        "/market/sales/listings",
        data={
            "csrf_token": csrf,
            "batch_id": str(world.batch.id),
            "quantity_t": "10",
            "price": "abc",
        },
        headers=HTML,
    )
    assert bad.status_code == 422 and 'id="l-price-error"' in bad.text
    made = client.post(
        "/market/sales/listings",
        data={
            "csrf_token": csrf,
            "batch_id": str(world.batch.id),
            "quantity_t": "100",
            "price": "58.83",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    listed = client.get("/market/sales", headers=HTML)
    assert "58.83" in listed.text
    listing_id = re.search(r'href="/market/listings/([0-9a-f-]+)"', listed.text)
    assert listing_id is not None
    from market.models import Listing

    session.expire_all()
    item = session.get(Listing, uuid.UUID(listing_id.group(1)))
    assert item is not None
    placed = helpers.order(session, world.enterprise, item, 10)  # through the service
    helpers.pay_in_sandbox(session, world.enterprise, placed)
    session.commit()
    (household,) = world.households
    household_id, household_name = household.id, household.name
    session.rollback()  # SQLite: reading the expired household began a transaction
    sales = client.get("/market/sales", headers=HTML)
    assert f"/market/sales/households/{household_id}" in sales.text
    statement = client.get(f"/market/sales/households/{household_id}", headers=HTML)
    link = re.search(r'<code class="token">[^<]*/h/([^<]+)</code>', statement.text)
    assert link is not None
    client.cookies.clear()
    own = client.get(f"/h/{link.group(1)}", headers=HTML)
    assert own.status_code == 200 and household_name in own.text
    assert client.get("/h/forged", headers=HTML).status_code == 404
    assert statements.household_from_token(link.group(1)) == household_id


def test_finance_confirms_a_bank_transfer(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=5_900)
    placed = helpers.order(
        session, world.enterprise, item, 10, provider=helpers.Provider.bank_transfer
    )
    finance = member(session, OrgKind.platform)
    session.commit()
    csrf = sign_in(client, finance)
    page = client.get("/market/finance", headers=HTML)
    assert placed.number in page.text
    confirmed = client.post(
        "/market/finance/confirm",
        data={
            "csrf_token": csrf,
            "reference": placed.number,
            "amount": "590.00",
            "bank_reference": "ICBC-9",
        },
        headers=HTML,
    )
    assert confirmed.status_code == 200 and placed.number in confirmed.text
    session.expire_all()
    order = session.get(Order, placed.id)
    assert order is not None and order.status == OrderStatus.settled


def test_finance_verifies_a_buyers_code_on_its_page(session: Session, client: TestClient) -> None:
    finance = member(session, OrgKind.platform)
    buyer = factories.organisation(session, OrgKind.enterprise)
    session.commit()
    buyer_id = buyer.id
    csrf = sign_in(client, finance)
    page = client.get("/market/finance", headers={**HTML, "Accept-Language": "zh-CN"})
    assert "已核验的买方" in page.text and buyer.name in page.text
    typo = client.post(
        "/market/finance/buyers",
        data={"csrf_token": csrf, "organisation_id": str(buyer_id), "uscc": "914403001922038217"},
        headers={**HTML, "Accept-Language": "zh-CN"},
    )
    assert typo.status_code == 422
    assert "不是有效的统一社会信用代码" in typo.text
    done = client.post(
        "/market/finance/buyers",
        data={"csrf_token": csrf, "organisation_id": str(buyer_id), "uscc": "914403001922038216"},
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert "914403001922038216" in client.get("/market/finance", headers=HTML).text
    session.expire_all()
    assert session.get(VerifiedBuyer, buyer_id) is not None
    session.rollback()
    withdrawn = client.post(
        f"/market/finance/buyers/{buyer_id}/revoke",
        data={"csrf_token": csrf},
        headers=HTML,
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    session.expire_all()
    assert session.get(VerifiedBuyer, buyer_id) is None
    session.rollback()


def test_court_records_a_case_from_the_judgment_file(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    court = member(session, OrgKind.court)
    defendant = factories.organisation(session, OrgKind.enterprise)
    session.commit()
    csrf = sign_in(client, court)
    judgment = "（2025）浙0591民初77号 判决书正文".encode()
    made = client.post(
        "/court/cases",
        data={
            "csrf_token": csrf,
            "case_number": "（2025）浙0591民初77号",
            "defendant_id": str(defendant.id),
            "project_id": str(world.project.id),
            "required_t": "12",
        },
        files={"judgment": ("judgment.pdf", judgment, "application/pdf")},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    case_page = client.get(made.headers["location"], headers=HTML)
    assert hashlib.sha256(judgment).hexdigest() in case_page.text
    wrong = client.post(
        "/court/cases",
        data={
            "csrf_token": csrf,
            "case_number": "x",
            "judgment_sha256": "nothex",
            "defendant_id": str(defendant.id),
            "project_id": str(world.project.id),
            "required_t": "1",
        },
        headers=HTML,
    )
    assert wrong.status_code == 422 and 'id="c-hash-error"' in wrong.text


def test_fund_sets_a_standard_and_drafts_a_round(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    fund = member(session, OrgKind.compensation_fund)
    session.commit()
    csrf = sign_in(client, fund)
    saved = client.post(
        "/fund/standards",
        data={
            "csrf_token": csrf,
            "year": "2026",
            "land_type": "bamboo",
            "district_adcode": world.project.district_adcode,
            "rate": "16.93",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    drafted = client.post(
        "/fund/rounds", data={"csrf_token": csrf, "round_year": "2026"}, follow_redirects=False
    )
    assert drafted.status_code == 303
    round_page = client.get(drafted.headers["location"], headers=HTML)
    assert round_page.status_code == 200
    short = client.post(
        f"{drafted.headers['location']}/pay", data={"csrf_token": csrf}, headers=HTML
    )
    assert short.status_code == 409 and 'role="alert"' in short.text


def test_public_price_index_page(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=7_341)
    placed = helpers.order(session, world.enterprise, item, 2)
    helpers.pay_in_sandbox(session, world.enterprise, placed)
    session.commit()
    page = client.get("/price-index", headers=HTML)
    assert page.status_code == 200
    assert "<svg" in page.text and "73.41" in page.text
    assert 'href="/price-index"' in page.text
    bad = client.get("/price-index", params={"start": "yesterday"}, headers=HTML)
    assert bad.status_code == 200 and 'role="alert"' in bad.text
