"""The price index: daily VWAP per credit type from settled orders, as JSON, SVG and CSV."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session

from market.service import price_index
from tanhui.settings import Settings
from tests import factories
from tests.market import helpers

SHANGHAI = ZoneInfo("Asia/Shanghai")


def settle(session: Session, world: helpers.World, item, quantity: int):  # type: ignore[no-untyped-def]
    buyer = helpers.org_actor(session, helpers.OrgKind.enterprise)
    placed = helpers.order(session, buyer, item, quantity)
    helpers.pay_in_sandbox(session, buyer, placed)
    return placed


def test_daily_vwap_per_type(session: Session, world: helpers.World) -> None:
    cheap = helpers.listing(session, world, quantity_t=100, price_fen_per_t=5_900)
    dear = helpers.listing(session, world, quantity_t=100, price_fen_per_t=7_341)
    settle(session, world, cheap, 3)
    settle(session, world, dear, 2)
    unsettled = helpers.order(session, world.enterprise, dear, 50)  # not paid: not counted
    assert unsettled.settled_at is None
    today = datetime.now(SHANGHAI).date()
    points = price_index.price_index(session, credit_type="bamboo", start=today, end=today)
    (point,) = points
    assert point.volume_t == 5
    assert point.amount_fen == 3 * 5_900 + 2 * 7_341
    # (17,700 + 14,682) / 5 = 6,476.4 -> 6,476 fen/t
    assert point.vwap_fen_per_t == 6_476
    assert point.orders == 2
    assert price_index.price_index(session, credit_type="wetland", start=today, end=today) == []


def test_days_are_counted_in_shanghai_time(session: Session, world: helpers.World) -> None:
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=6_000)
    placed = settle(session, world, item, 1)
    # 17:30 UTC is 01:30 the next day in Huzhou
    placed.settled_at = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    session.add(placed)
    session.flush()
    points = price_index.price_index(
        session, credit_type=None, start=date(2026, 3, 1), end=date(2026, 3, 2)
    )
    assert [(p.day, p.vwap_fen_per_t) for p in points] == [(date(2026, 3, 2), 6_000)]


def test_api_json_svg_and_errors(
    session: Session, world: helpers.World, client: TestClient
) -> None:
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=7_341)
    settle(session, world, item, 4)
    session.commit()
    today = datetime.now(SHANGHAI).date()
    answer = client.get(
        "/api/v1/market/price-index",
        params={"type": "bamboo", "from": str(today - timedelta(days=7)), "to": str(today)},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["from"] == str(today - timedelta(days=7)) and body["to"] == str(today)
    assert body["points"] == [
        {
            "day": str(today),
            "credit_type": "bamboo",
            "vwap_fen_per_t": 7_341,
            "volume_t": 4,
            "amount_fen": 4 * 7_341,
            "orders": 1,
        }
    ]
    chart = client.get("/api/v1/market/price-index.svg", headers={"Accept-Language": "en"})
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith("image/svg+xml")
    tree = ET.fromstring(chart.text)  # noqa: S314 - our own output
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert tree.find("svg:title", ns) is not None
    assert "73.41 CNY/t" in chart.text
    assert tree.findall(".//svg:polyline", ns)
    bad = client.get(
        "/api/v1/market/price-index", params={"from": "2026-02-01", "to": "2026-01-01"}
    )
    assert bad.status_code == 422 and bad.json()["type"] == "/problems/market/invalid-range"
    unknown = client.get("/api/v1/market/price-index", params={"type": "coal"})
    assert unknown.status_code == 422


def test_empty_chart_says_so() -> None:
    svg = price_index.chart_svg([], start=date(2026, 1, 1), end=date(2026, 1, 31), locale="en")
    assert "No settled sales in this period." in svg
    ET.fromstring(svg)  # noqa: S314 - our own output


def test_cli_prints_csv(session: Session, world: helpers.World, settings: Settings) -> None:
    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=5_883)
    settle(session, world, item, 2)
    session.commit()
    result = factories.run_cli(settings, "market", "price-index", "--type", "bamboo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "day,credit_type,vwap_cny_per_t,volume_t,amount_cny,orders"
    assert lines[1].endswith(",bamboo,58.83,2,117.66,1")
    expired = factories.run_cli(settings, "market", "expire")
    assert expired.returncode == 0 and "expired 0 orders" in expired.stdout
    wrong = factories.run_cli(settings, "market", "price-index", "--from", "yesterday")
    assert wrong.returncode == 2


def test_a_terminated_projects_trades_and_listings_leave_the_market(
    session: Session, world: helpers.World
) -> None:
    """Issue 15, hole 2: a terminated project's credits counted in the price index and stayed
    on offer; now they leave both until the authority reinstates them."""
    import pytest

    from market.service import listings
    from registry.errors import CreditsSuspended
    from registry.service import projects, suspension

    item = helpers.listing(session, world, quantity_t=10, price_fen_per_t=6_000)
    settle(session, world, item, 2)
    today = datetime.now(SHANGHAI).date()
    assert price_index.price_index(session, credit_type=None, start=today, end=today)
    query = listings.ListingQuery(project_id=world.project.id)
    assert [found.id for found in listings.search(session, query)] == [item.id]
    projects.terminate(session, actor=world.authority, project_id=world.project.id, reason="撤销")
    assert price_index.price_index(session, credit_type=None, start=today, end=today) == []
    assert listings.search(session, query) == []
    buyer = helpers.org_actor(session, helpers.OrgKind.enterprise)
    with pytest.raises(CreditsSuspended):
        helpers.order(session, buyer, item, 1)
    suspension.decide(
        session,
        actor=world.authority,
        project_id=world.project.id,
        decision="reinstated",
        reason="复核",
    )
    assert price_index.price_index(session, credit_type=None, start=today, end=today)
    assert [found.id for found in listings.search(session, query)] == [item.id]
