"""The residents' rewards fund (ADR 0059): the pool batch's sales pay the fund, not the pool
operator; a platform voucher with a face value honoured by a merchant is reimbursed from the
fund, the rest by the platform, once; the pages show the fund's figures from the ledger."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import wallet.service as wallet
from market.models import Order, OrderStatus, Payout, PayoutKind, Provider
from market.rewards.errors import UnknownVoucher, VoucherUsed
from market.rewards.models import RedemptionStatus, RewardKind
from market.rewards.service import catalogue, redemptions
from market.service import listings, orders, rewards_fund, statements
from market.service.common import MARKET_TZ
from market.service.settlement import split_line
from registry.models import Batch, ProjectType
from registry.service import issuance, projects
from registry.service.actors import Actor
from registry.service.contracts import household_revenue_split
from tanhui.db import retrying
from tanhui.errors import DomainError
from tanhui.models import Organisation, OrgKind
from tanhui.settings import get_settings
from tests import factories
from tests.inclusion import helpers
from tests.inclusion.test_pooling import _phones_sold
from tests.market import helpers as market_helpers
from tests.registry import helpers as registry_helpers
from wallet.models import JournalEntry

CNY = wallet.ASSET_CNY


def _cny(session: Session, owner: str) -> int:
    return market_helpers.balance(session, CNY, owner)


def _pool_batch(session: Session, code: str = "RES0001") -> tuple[registry_helpers.Roles, Batch]:
    """The real path: residents' grams pooled, submitted, certified, filed, issued (1 t)."""
    roles = registry_helpers.Roles.make(session)
    assert roles.coop.organisation_id is not None
    project = projects.create_project(
        session,
        actor=roles.coop,
        cooperative_id=roles.coop.organisation_id,
        code=code,
        name="湖州居民低碳行为减排量归集",
        type=ProjectType.residents,
        methodology_name="tanhui-residents-pool",
        methodology_version="1.0",
        crediting_start=date(2026, 1, 1),
        crediting_end=date(2035, 12, 31),
    )
    from registry.inclusion.service import pooling

    people = [helpers.resident(session) for _ in range(10)]
    _phones_sold(session, helpers.partner(session, ["second_hand"]), people, date(2026, 9, 3), 2)
    pool = pooling.pool_month(session, month="2026-09", today=date(2026, 10, 9))
    assert pool.tonnes == 1 and pooling.submit_pool(session, pool) == "submitted"
    period = registry_helpers.latest_period(session, project.id)
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    batch = issuance.issue(session, actor=roles.authority, period_id=period.id)
    assert pooling.settle_pools(session) == 1
    return roles, batch


def _sell(
    session: Session, buyer: Actor, lots: list[tuple[uuid.UUID, int]]
) -> tuple[Order, list[Payout]]:
    placed = orders.create_order(
        session,
        actor=buyer,
        lines=[orders.LineRequest(listing_id=lot, quantity_t=tonnes) for lot, tonnes in lots],
        provider=Provider.sandbox,
    )
    market_helpers.pay_in_sandbox(session, buyer, placed)
    session.refresh(placed)
    assert placed.status == OrderStatus.settled
    payouts = list(session.exec(select(Payout).where(col(Payout.order_id) == placed.id)).all())
    return placed, payouts


def test_a_pool_sale_pays_the_fund_and_other_lines_pay_as_before(session: Session) -> None:
    roles, batch = _pool_batch(session)
    operator = f"org:{roles.coop.organisation_id}"
    # A bamboo project with three households, sold in the same order: unchanged split.
    world = market_helpers.issued_world(
        session, areas=[(100.0, {0: 10_000}), (70.0, {1: 6_000, 2: 4_000})]
    )
    pool_lot = listings.create_listing(
        session, actor=roles.coop, batch_id=batch.id, quantity_t=1, price_fen_per_t=2_400
    )
    bamboo_lot = market_helpers.listing(session, world, quantity_t=10, price_fen_per_t=7_341)
    before = (_cny(session, operator), _cny(session, rewards_fund.FUND_OWNER))
    placed, payouts = _sell(session, world.enterprise, [(pool_lot.id, 1), (bamboo_lot.id, 3)])

    fee_bp = get_settings().market_fee_bp
    pool_split = split_line(2_400, fee_bp, lambda net: {})
    bamboo_split = split_line(
        3 * 7_341,
        fee_bp,
        lambda net: household_revenue_split(
            session, project_id=world.project.id, net_proceeds_fen=net
        ),
    )
    assert pool_split.seller_fen > 0 and bamboo_split.households
    # The pool's net went to the fund, none of it to the pool operator.
    assert _cny(session, operator) == before[0]
    assert _cny(session, rewards_fund.FUND_OWNER) == before[1] + pool_split.seller_fen
    # The bamboo line: the cooperative and each household exactly as the split says.
    assert _cny(session, market_helpers.owner(world.coop)) == bamboo_split.seller_fen
    for household_id, amount in bamboo_split.households.items():
        assert _cny(session, f"household:{household_id}") == amount
    # One settlement entry holds it all, and the payout records say where each fen went.
    entries = session.exec(
        select(JournalEntry)
        .where(col(JournalEntry.code) == "settlement")
        .where(col(JournalEntry.idempotency_key).startswith(f"settlement:{placed.id}"))
    ).all()
    assert len(entries) == 1 and entries[0].id == placed.settlement_entry_id
    kinds = sorted((str(p.kind), p.amount_fen) for p in payouts if p.line_id)
    assert (str(PayoutKind.rewards_fund), pool_split.seller_fen) in kinds
    assert (str(PayoutKind.cooperative), bamboo_split.seller_fen) in kinds
    assert not any(
        p.kind == PayoutKind.cooperative and p.cooperative_id == roles.coop.organisation_id
        for p in payouts
    )
    assert sum(p.amount_fen for p in payouts) == placed.total_fen
    # The pool operator's statement shows the fund's share, not revenue of its own.
    statement = statements.cooperative_statement(session, actor=roles.coop)
    (sale,) = statement.sales
    assert (sale.rewards_fund_fen, sale.cooperative_fen) == (pool_split.seller_fen, 0)
    assert statement.rewards_fund_fen == pool_split.seller_fen and statement.revenue_fen == 0
    summary = rewards_fund.summary(session)
    assert summary.from_sales_fen == summary.balance_fen == pool_split.seller_fen
    assert (summary.paid_for_rewards_fen, summary.rewards_reimbursed) == (0, 0)
    assert wallet.verify_ledger(session).ok


def _fund_with(session: Session, amount_fen: int) -> None:
    """Money into the fund without a sale (the voucher tests need a known balance)."""
    clearing = wallet.system_account(session, "clearing", CNY)
    wallet.post_entry(
        session,
        code="adjustment",
        transfers=[wallet.Transfer(clearing.id, rewards_fund.fund_account(session), amount_fen)],
    )


def _platform_voucher(
    session: Session, platform: Organisation, value_fen: int | None, **extra: object
) -> uuid.UUID:
    return catalogue.create_reward(
        session,
        sponsor=platform,
        kind=extra.pop("kind", RewardKind.voucher),  # type: ignore[arg-type]
        title="低碳出行 5 元券",
        points_price=10,
        value_fen=value_fen,
        actor="test",
        **extra,  # type: ignore[arg-type]
    ).id


def test_a_platform_voucher_is_reimbursed_from_the_fund_then_the_platform(
    session: Session,
) -> None:
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant)
    bus = factories.organisation(session, OrgKind.data_partner)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    reward = _platform_voucher(session, platform, 500)
    _fund_with(session, 300)
    first = redemptions.redeem(session, resident=resident, reward_id=reward)
    second = redemptions.redeem(
        session,
        resident=resident,
        reward_id=_platform_voucher(session, platform, 200, kind=RewardKind.bus_coupon),
    )
    merchant_owner = f"org:{merchant.id}"

    # The merchant sees the platform's voucher and honours it: 3.00 from the fund, 2.00 from
    # the platform, in one entry keyed by the redemption.
    assert redemptions.lookup(
        session, code=first.code, organisation=merchant, is_platform_admin=False
    )
    confirmed = redemptions.confirm(session, code=first.code, organisation=merchant, actor="m")
    assert confirmed.status == RedemptionStatus.confirmed
    assert _cny(session, merchant_owner) == 500
    assert _cny(session, rewards_fund.FUND_OWNER) == 0
    assert _cny(session, "system:operating") == -200
    paid = rewards_fund.reimbursement_of(session, confirmed.id)
    assert paid is not None and (paid.from_fund_fen, paid.from_platform_fen) == (300, 200)
    entry = wallet.get_entry(session, paid.entry_id)
    assert entry.code == "reward_reimbursement"
    assert json.loads(entry.metadata_json)["redemption"] == str(confirmed.id)
    assert helpers.points_of(session, resident) == (90, 80)  # the coupon still holds 10

    # Confirming twice does not pay twice; nor does posting the reimbursement again.
    with pytest.raises(VoucherUsed):
        redemptions.confirm(session, code=first.code, organisation=merchant, actor="m")
    again = rewards_fund.reimburse(
        session,
        redemption_id=confirmed.id,
        reward_id=reward,
        merchant_id=merchant.id,
        value_fen=500,
    )
    assert again is not None and again.entry_id == paid.entry_id
    assert _cny(session, merchant_owner) == 500

    # With the fund empty, the bus operator's coupon is paid by the platform alone.
    redemptions.confirm(session, code=second.code, organisation=bus, actor="b")
    assert _cny(session, f"org:{bus.id}") == 200
    assert _cny(session, "system:operating") == -400
    summary = rewards_fund.summary(session)
    assert (summary.paid_for_rewards_fen, summary.platform_topped_up_fen) == (300, 400)
    assert (summary.balance_fen, summary.rewards_reimbursed, summary.rewards_total_fen) == (
        0,
        2,
        700,
    )
    assert wallet.verify_ledger(session).ok


def test_who_may_honour_and_when_no_money_moves(session: Session) -> None:
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant)
    other = factories.organisation(session, OrgKind.merchant)
    enterprise = factories.organisation(session, OrgKind.enterprise)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    _fund_with(session, 1_000)

    def voucher(sponsor: Organisation, value_fen: int | None, **extra: object) -> str:
        reward = catalogue.create_reward(
            session,
            sponsor=sponsor,
            kind=extra.pop("kind", RewardKind.voucher),  # type: ignore[arg-type]
            title="券",
            points_price=5,
            value_fen=value_fen,
            actor="test",
        )
        return redemptions.redeem(session, resident=resident, reward_id=reward.id).code

    # A merchant's own voucher: only that merchant honours it, and it funds it itself.
    own = voucher(merchant, 2_000)
    with pytest.raises(UnknownVoucher):
        redemptions.confirm(session, code=own, organisation=other, actor="o")
    done = redemptions.confirm(session, code=own, organisation=merchant, actor="m")
    assert rewards_fund.reimbursement_of(session, done.id) is None
    # A platform reward without a face value is the platform's to honour.
    free = voucher(platform, None)
    with pytest.raises(UnknownVoucher):
        redemptions.confirm(session, code=free, organisation=merchant, actor="m")
    # An enterprise does not honour platform vouchers.
    valued = voucher(platform, 300)
    with pytest.raises(UnknownVoucher):
        redemptions.confirm(session, code=valued, organisation=enterprise, actor="e")
    # The platform honouring its own voucher pays nobody.
    mine = redemptions.confirm(session, code=valued, organisation=platform, actor="p")
    assert rewards_fund.reimbursement_of(session, mine.id) is None
    assert _cny(session, f"org:{merchant.id}") == 0
    assert _cny(session, rewards_fund.FUND_OWNER) == 1_000
    assert wallet.verify_ledger(session).ok


def _resident_cookie(client: TestClient, session: Session, resident: object) -> None:
    from fastapi import Response

    from tanhui import identity
    from tanhui.auth import set_session_cookie

    started = identity.start_web_session(session, resident=resident)  # type: ignore[arg-type]
    session.commit()
    response = Response()
    set_session_cookie(response, started.key)
    name, value = response.headers["set-cookie"].split(";")[0].split("=", 1)
    client.cookies.set(name, value)


def _figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]+)<', html)
    assert found, name
    return found.group(1)


def test_pages_show_the_fund_and_the_merchant_api_its_reimbursement(
    client: TestClient, session: Session
) -> None:
    roles, batch = _pool_batch(session)
    pool_lot = listings.create_listing(
        session, actor=roles.coop, batch_id=batch.id, quantity_t=1, price_fen_per_t=2_400
    )
    _sell(session, roles.enterprise, [(pool_lot.id, 1)])
    net = split_line(2_400, get_settings().market_fee_bp, lambda _: {}).seller_fen
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant, name="莫干山民宿（测试）")
    cashier = factories.user(session, org=merchant)
    admin = factories.user(session, admin=True)
    resident = helpers.resident(session, "13957400077")
    helpers.give_points(session, resident, 50)
    reward = _platform_voucher(session, platform, 500)
    code = redemptions.redeem(session, resident=resident, reward_id=reward).code
    session.commit()

    factories.login(client, cashier.email)
    csrf = client.get("/api/v1/me").json()["csrf_token"]
    confirmed = client.post(
        "/api/v1/points/vouchers/confirm", json={"code": code}, headers={"X-CSRF-Token": csrf}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["reimbursement"]["amount_fen"] == 500
    assert confirmed.json()["reimbursement"]["from_fund_fen"] == 500
    again = client.post(
        "/api/v1/points/vouchers/confirm", json={"code": code}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409
    client.cookies.clear()

    def cny(fen: int) -> str:
        yuan, cents = divmod(fen, 100)
        return f"¥{yuan:,}.{cents:02d}"

    _resident_cookie(client, session, resident)
    page = client.get("/app/pool")
    assert page.status_code == 200
    assert _figure(page.text, "from-sales") == cny(net)
    assert _figure(page.text, "paid") == cny(500)
    assert _figure(page.text, "balance") == cny(net - 500)
    assert _figure(page.text, "vouchers") == "1"
    assert "the proceeds fund rewards" not in page.text
    client.cookies.clear()
    public = client.get("/projects/RES0001")
    assert public.status_code == 200 and _figure(public.text, "balance") == cny(net - 500)
    factories.login(client, admin.email)
    admin_page = client.get("/admin/points")
    assert _figure(admin_page.text, "from-sales") == cny(net)
    assert _figure(admin_page.text, "platform") == cny(0)
    # One month's figures on the same page: this month's are everything so far; last month's
    # moved nothing; a month written wrongly is refused next to its field.
    here = datetime.now(MARKET_TZ)
    this_month = f"{here:%Y-%m}"
    last_month = f"{(here.replace(day=1) - timedelta(days=1)):%Y-%m}"
    month_page = client.get("/admin/points", params={"fund_month": this_month})
    assert month_page.status_code == 200
    assert _figure(month_page.text, "month-from-sales") == cny(net)
    assert _figure(month_page.text, "month-balance") == cny(net - 500)
    assert _figure(month_page.text, "month-vouchers") == "1"
    before = client.get("/admin/points", params={"fund_month": last_month})
    assert _figure(before.text, "month-from-sales") == cny(0)
    assert _figure(before.text, "month-balance") == cny(0)
    assert _figure(before.text, "from-sales") == cny(net)  # all time, as before
    wrong = client.get(
        "/admin/points", params={"fund_month": "2026-13"}, headers={"Accept-Language": "en"}
    )
    assert wrong.status_code == 422 and 'id="f-fund_month-error"' in wrong.text
    assert "month-from-sales" not in wrong.text
    if session.get_bind().dialect.name == "postgresql":  # the crash-safety harness's checks
        from sqlalchemy import text

        from tests.faults.harness import INVARIANTS

        for name in (
            "a residents' (RES) line's seller share goes to the rewards fund, other lines' never",
            "a reimbursed voucher was confirmed",
        ):
            assert session.execute(text(INVARIANTS[name])).all() == [], name


@pytest.mark.postgres
def test_concurrent_confirmations_never_overdraw_the_fund(pg_engine: Engine) -> None:
    """12 merchants confirm 12 platform vouchers of 3.00 at once against a fund of 10.00: the
    fund pays exactly 10.00, the platform the rest, every merchant is paid once in full."""
    with Session(pg_engine) as session:
        platform = factories.organisation(session, OrgKind.platform)
        merchants = [factories.organisation(session, OrgKind.merchant) for _ in range(12)]
        resident = helpers.resident(session)
        helpers.give_points(session, resident, 1_000)
        reward = _platform_voucher(session, platform, 300)
        codes = [
            redemptions.redeem(session, resident=resident, reward_id=reward).code for _ in merchants
        ]
        _fund_with(session, 1_000)
        merchant_ids = [merchant.id for merchant in merchants]
        session.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(len(codes))

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            retrying(
                pg_engine,
                lambda s: redemptions.confirm(
                    s,
                    code=codes[index],
                    organisation=s.get_one(Organisation, merchant_ids[index]),
                    actor="m",
                ),
            )
            outcomes.append("ok")
        except DomainError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ok"] * len(codes)
    with Session(pg_engine) as session:
        assert all(_cny(session, f"org:{m}") == 300 for m in merchant_ids)
        summary = rewards_fund.summary(session)
        assert (summary.paid_for_rewards_fen, summary.balance_fen) == (1_000, 0)
        assert summary.platform_topped_up_fen == 12 * 300 - 1_000
        assert summary.rewards_reimbursed == 12
        assert wallet.verify_ledger(session).ok


def test_the_api_publishes_the_fund_figures_of_the_ledger(
    client: TestClient, session: Session
) -> None:
    """``GET /api/v1/points/rewards-fund`` (public, no sign-in) answers the ledger's figures after
    a pool sale and two reimbursements, one split between the fund and the platform."""
    roles, batch = _pool_batch(session)
    pool_lot = listings.create_listing(
        session, actor=roles.coop, batch_id=batch.id, quantity_t=1, price_fen_per_t=2_400
    )
    _sell(session, roles.enterprise, [(pool_lot.id, 1)])
    net = split_line(2_400, get_settings().market_fee_bp, lambda _: {}).seller_fen
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    split = redemptions.redeem(
        session, resident=resident, reward_id=_platform_voucher(session, platform, net + 200)
    )
    whole = redemptions.redeem(
        session, resident=resident, reward_id=_platform_voucher(session, platform, 300)
    )
    redemptions.confirm(session, code=split.code, organisation=merchant, actor="m")
    redemptions.confirm(session, code=whole.code, organisation=merchant, actor="m")
    session.commit()

    response = client.get("/api/v1/points/rewards-fund")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "currency": "CNY",
        "month": None,
        "from_sales_fen": net,
        "paid_for_rewards_fen": net,
        "balance_fen": 0,
        "platform_topped_up_fen": 500,
        "rewards_total_fen": net + 500,
        "rewards_reimbursed": 2,
    }
    # The same numbers straight from the ledger's balances and the service the pages use.
    assert body["balance_fen"] == _cny(session, rewards_fund.FUND_OWNER)
    assert body["platform_topped_up_fen"] == -_cny(session, "system:operating")
    assert body["rewards_total_fen"] == _cny(session, f"org:{merchant.id}")
    figures = rewards_fund.summary(session)
    assert body["from_sales_fen"] == figures.from_sales_fen
    assert body["rewards_reimbursed"] == figures.rewards_reimbursed
    # One month's figures: this month's are everything so far (the balance now); last month's
    # are nothing (the fund did not exist yet); a later month moved nothing but keeps the
    # balance; a month written wrongly is a 422 problem.
    session.rollback()  # SQLite: the reads above hold the write lock the app's requests need
    here = datetime.now(MARKET_TZ)
    this_month = f"{here:%Y-%m}"
    last_month = f"{(here.replace(day=1) - timedelta(days=1)):%Y-%m}"
    month = client.get("/api/v1/points/rewards-fund", params={"month": this_month}).json()
    assert month == {**body, "month": this_month}
    before = client.get("/api/v1/points/rewards-fund", params={"month": last_month}).json()
    assert {key: value for key, value in before.items() if key.endswith(("_fen", "ed"))} == {
        "from_sales_fen": 0,
        "paid_for_rewards_fen": 0,
        "balance_fen": 0,
        "platform_topped_up_fen": 0,
        "rewards_total_fen": 0,
        "rewards_reimbursed": 0,
    }
    later = client.get("/api/v1/points/rewards-fund", params={"month": "2999-12"}).json()
    assert later["balance_fen"] == body["balance_fen"] and later["from_sales_fen"] == 0
    for wrong in ("2026-13", "1999-01", "2026-1"):
        refused = client.get("/api/v1/points/rewards-fund", params={"month": wrong})
        assert refused.status_code == 422, wrong
        assert refused.headers["content-type"].startswith("application/problem+json")
    # Documented in OpenAPI, public (no security requirement), with its response model.
    spec = client.get("/api/openapi.json").json()
    operation = spec["paths"]["/api/v1/points/rewards-fund"]["get"]
    assert operation["summary"] and not operation.get("security")
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/RewardsFundPublic")
    assert wallet.verify_ledger(session).ok


def test_the_merchant_page_lists_the_platform_vouchers_it_honoured(
    client: TestClient, session: Session
) -> None:
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant, name="莫干山民宿（测试）")
    other = factories.organisation(session, OrgKind.merchant)
    cashier = factories.user(session, org=merchant)
    other_cashier = factories.user(session, org=other)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    _fund_with(session, 300)
    split = redemptions.redeem(
        session, resident=resident, reward_id=_platform_voucher(session, platform, 500)
    )
    own_reward = catalogue.create_reward(
        session,
        sponsor=merchant,
        kind=RewardKind.voucher,
        title="民宿自有 8 元券",
        points_price=5,
        value_fen=800,
        actor="test",
    )
    own = redemptions.redeem(session, resident=resident, reward_id=own_reward.id)
    redemptions.confirm(session, code=split.code, organisation=merchant, actor="m")
    redemptions.confirm(session, code=own.code, organisation=merchant, actor="m")
    paid = rewards_fund.reimbursement_of(session, split.redemption.id)
    assert paid is not None and (paid.from_fund_fen, paid.from_platform_fen) == (300, 200)
    session.commit()

    factories.login(client, cashier.email)
    page = client.get("/merchant")
    assert page.status_code == 200
    section = page.text.split('id="honoured-platform-vouchers"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr data-entry="([^"]+)">(.*?)</tr>', section, flags=re.S)
    # One row for the entry (two credits: fund and platform), none for the merchant's own reward.
    assert [entry for entry, _ in rows] == [str(paid.entry_id)]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows[0][1])
    assert cells[1:] == ["低碳出行 5 元券", "¥5.00", "¥3.00", "¥2.00"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", cells[0]), cells[0]
    assert "民宿自有 8 元券" not in section
    client.cookies.clear()
    # Another merchant sees none of it.
    factories.login(client, other_cashier.email)
    other_page = client.get("/merchant")
    other_section = other_page.text.split('id="honoured-platform-vouchers"', 1)[1]
    assert "data-entry=" not in other_section.split("</section>", 1)[0]
    assert redemptions.honoured_platform_vouchers(session, other.id) == []


def test_the_merchant_api_pages_through_every_reimbursement(
    client: TestClient, session: Session
) -> None:
    """More platform vouchers than a page: pages of ``limit`` newest first, each voucher once
    (a voucher paid by the fund and the platform is one item, its two credits summed), the last
    page without a cursor; another merchant's API shows none; a bad cursor is a 422 problem."""
    platform = factories.organisation(session, OrgKind.platform)
    merchant = factories.organisation(session, OrgKind.merchant)
    other = factories.organisation(session, OrgKind.merchant)
    cashier = factories.user(session, org=merchant)
    other_cashier = factories.user(session, org=other)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    _fund_with(session, 700)  # the first voucher from the fund, the second split, then platform
    voucher = _platform_voucher(session, platform, 500)
    honoured = []
    for _ in range(5):
        redeemed = redemptions.redeem(session, resident=resident, reward_id=voucher)
        redemptions.confirm(session, code=redeemed.code, organisation=merchant, actor="m")
        honoured.append(redeemed.redemption.id)
    headers = {"Authorization": f"Bearer {factories.token_for(session, cashier)}"}
    other_headers = {"Authorization": f"Bearer {factories.token_for(session, other_cashier)}"}
    session.commit()

    seen: list[dict[str, object]] = []
    sizes = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(
            "/api/v1/points/merchant/reimbursements", params=params, headers=headers
        ).json()
        sizes.append(len(page["items"]))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert [item["redemption_id"] for item in seen] == [str(i) for i in reversed(honoured)]
    paid = [
        (item["reimbursement"]["from_fund_fen"], item["reimbursement"]["from_platform_fen"])
        for item in reversed(seen)
    ]
    assert paid == [(500, 0), (200, 300), (0, 500), (0, 500), (0, 500)]
    assert all(item["reimbursement"]["amount_fen"] == 500 for item in seen)
    assert all(item["reward_title"] == "低碳出行 5 元券" for item in seen)
    nothing = client.get("/api/v1/points/merchant/reimbursements", headers=other_headers)
    assert nothing.status_code == 200 and nothing.json() == {"items": [], "next_cursor": None}
    bad = client.get(
        "/api/v1/points/merchant/reimbursements", params={"cursor": "abc"}, headers=headers
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    # the merchant's page pages the same way (?before= the cursor), with a way back
    first_page = client.get(
        "/api/v1/points/merchant/reimbursements", params={"limit": 2}, headers=headers
    ).json()
    factories.login(client, cashier.email)
    page = client.get("/merchant", params={"before": first_page["next_cursor"]})
    section = page.text.split('id="honoured-platform-vouchers"', 1)[1].split("</section>", 1)[0]
    entries = re.findall(r'<tr data-entry="([^"]+)">', section)
    assert entries == [item["reimbursement"]["journal_entry_id"] for item in seen[2:]]
    assert 'href="/merchant#honoured-platform-vouchers"' in section  # back to the newest
