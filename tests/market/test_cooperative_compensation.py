"""A compensation payout is visible on the cooperative's statement, round by round (its own part
and its households' part), in the API and on its sales page, as on each household's."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from market.service import funds, statements
from tanhui.models import Organisation, OrgKind, Role
from tests import factories
from tests.market import helpers
from wallet import service as wallet

HTML = {"Accept": "text/html"}


def test_each_paid_round_is_on_the_cooperatives_statement(
    session: Session, client: TestClient
) -> None:
    world = helpers.issued_world(session, areas=[(90.0, {0: 10_000})])
    fund = helpers.org_actor(session, OrgKind.compensation_fund)
    assert fund.organisation_id is not None and world.project.district_adcode is not None
    assert world.coop.organisation_id is not None
    paid = []
    for year, rate in [(2024, 2_300), (2025, 2_500)]:
        funds.set_standard(
            session,
            actor=fund,
            year=year,
            land_type="bamboo",
            district_adcode=world.project.district_adcode,
            rate_fen_per_mu_year=rate,
        )
        drafted = funds.draft_round(session, actor=fund, year=year)
        funds.record_deposit(
            session,
            actor=world.finance,
            fund_id=fund.organisation_id,
            amount_fen=drafted.total_fen,
            bank_reference=f"FUND-{year}",
        )
        paid.append(funds.pay_round(session, actor=fund, round_id=drafted.id))
    coop_cny = helpers.balance(session, wallet.ASSET_CNY, helpers.owner(world.coop))
    (household,) = world.households
    household_cny = helpers.balance(session, wallet.ASSET_CNY, f"household:{household.id}")

    statement = statements.cooperative_statement(session, actor=world.coop)
    assert [row.year for row in statement.compensation] == [2025, 2024]
    assert {row.round_id for row in statement.compensation} == {item.id for item in paid}
    for row, item in zip(statement.compensation, reversed(paid), strict=True):
        assert row.cooperative_fen + row.households_fen == item.total_fen
        assert row.parcels == 1 and row.cooperative_fen > 0 and row.households_fen > 0
    assert sum(row.cooperative_fen for row in statement.compensation) == coop_cny
    assert sum(row.households_fen for row in statement.compensation) == household_cny
    assert statement.compensation_fen == coop_cny

    user = factories.user(
        session,
        kind=OrgKind.cooperative,
        role=Role.viewer,
        org=session.get(Organisation, world.coop.organisation_id),
    )
    token = factories.token_for(session, user)
    session.commit()
    api = client.get(
        "/api/v1/market/statements/cooperative", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 200, api.text
    rows = api.json()["compensation"]
    assert [row["year"] for row in rows] == [2025, 2024]
    assert sum(row["cooperative_fen"] for row in rows) == coop_cny

    factories.login(client, user.email)
    page = client.get("/market/sales", headers=HTML).text
    section = page.split("收到的生态保护补偿")[1].split("</table>")[0]
    assert section.count("<tr>") == 3  # the head and one row per round
    first = statement.compensation[0]
    assert f"¥{first.cooperative_fen // 100:,}.{first.cooperative_fen % 100:02d}" in section
