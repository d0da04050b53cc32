"""Ecological compensation: a judicial case end to end (API), and a fund's payout round."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from market import presenters
from market.errors import (
    CaseConflict,
    InvalidCase,
    InvalidStandard,
    MarketRoleRefused,
    RoundConflict,
)
from market.models import PayoutKind, PayoutRoundLine, RoundStatus
from market.service import compensation, funds
from registry import geo
from registry.models import Certificate, Retirement, RetirementPurpose
from registry.pricing import round_half_up
from registry.service.actors import Actor
from tanhui.models import OrgKind, Role
from tests import factories
from tests.market import helpers
from wallet import service as wallet
from wallet.errors import InsufficientFunds

JUDGMENT = "（2024）浙0591民初1234号 民事判决书".encode()


def person(session: Session, kind: OrgKind) -> tuple[Actor, dict[str, str]]:
    user = factories.user(session, kind=kind, role=Role.member)
    actor = Actor(
        ref=f"user:{user.id}", organisation_id=user.organisation_id, org_kind=kind, role=Role.member
    )
    token = factories.token_for(session, user)
    return actor, {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


def test_judicial_case_end_to_end(
    session: Session, world: helpers.World, client: TestClient
) -> None:
    _court, court_headers = person(session, OrgKind.court)
    defendant, defendant_headers = person(session, OrgKind.enterprise)
    helpers.listing(session, world, quantity_t=40, price_fen_per_t=6_000)
    helpers.listing(session, world, quantity_t=40, price_fen_per_t=5_000)
    session.commit()
    case_number = "（2024）浙0591民初1234号"
    created = client.post(
        "/api/v1/market/compensation/cases",
        json={
            "case_number": case_number,
            "judgment_sha256": hashlib.sha256(JUDGMENT).hexdigest(),
            "defendant_id": str(defendant.organisation_id),
            "project_id": str(world.project.id),
            "required_t": 50,
        },
        headers=court_headers,
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["status"] == "open" and case["defendant_id"] == str(defendant.organisation_id)
    # the defendant sees its case; another enterprise does not
    _other, other_headers = person(session, OrgKind.enterprise)
    session.commit()
    assert (
        client.get(
            f"/api/v1/market/compensation/cases/{case['id']}", headers=other_headers
        ).status_code
        == 404
    )
    ordered = client.post(
        f"/api/v1/market/compensation/cases/{case['id']}/orders",
        json={"provider": "sandbox"},
        headers={**defendant_headers, "Idempotency-Key": "case-order-1"},
    )
    assert ordered.status_code == 201, ordered.text
    order = ordered.json()
    # the cheapest tonnes first
    assert sorted((line["price_fen_per_t"], line["quantity_t"]) for line in order["lines"]) == [
        (5_000, 40),
        (6_000, 10),
    ]
    assert order["purpose"] == "judicial_restoration"
    assert order["total_fen"] == 40 * 5_000 + 10 * 6_000
    checkout = client.post(
        f"/api/v1/market/orders/{order['id']}/checkout", headers=defendant_headers
    )
    assert checkout.status_code == 200, checkout.text
    payment_id = checkout.json()["payment"]["id"]
    paid = client.post(
        f"/api/v1/market/sandbox/payments/{payment_id}/complete", headers=defendant_headers
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["outcome"] == "settled"
    # the court sees the case fulfilled, with certificates naming the case
    seen = client.get(f"/api/v1/market/compensation/cases/{case['id']}", headers=court_headers)
    assert seen.json()["status"] == "fulfilled"
    certificates = seen.json()["certificates"]
    assert len(certificates) == 2
    checks = client.get(
        f"/api/v1/market/compensation/cases/{case['id']}/verification", headers=court_headers
    ).json()
    assert [check["ok"] for check in checks] == [True, True]
    assert sum(check["quantity_t"] for check in checks) == 50
    assert {check["case_number"] for check in checks} == {case_number}
    for certificate_id in certificates:
        public = client.get(f"/api/v1/public/certificates/{certificate_id}")
        assert public.status_code == 200
        assert public.json()["payload"]["case_number"] == case_number
        assert public.json()["payload"]["purpose"] == "judicial_restoration"
    # a fulfilled case takes no more orders
    again = client.post(
        f"/api/v1/market/compensation/cases/{case['id']}/orders",
        json={},
        headers=defendant_headers,
    )
    assert again.status_code == 409


def test_case_rules(session: Session, world: helpers.World) -> None:
    court = helpers.org_actor(session, OrgKind.court)
    defendant = helpers.org_actor(session, OrgKind.enterprise)
    assert defendant.organisation_id is not None
    digest = hashlib.sha256(JUDGMENT).hexdigest()
    with pytest.raises(MarketRoleRefused):
        compensation.create_case(
            session,
            actor=defendant,
            case_number="x",
            judgment_sha256=digest,
            defendant_id=defendant.organisation_id,
            project_id=world.project.id,
            required_t=1,
        )
    with pytest.raises(InvalidCase) as caught:
        compensation.create_case(
            session,
            actor=court,
            case_number="",
            judgment_sha256="abc",
            defendant_id=defendant.organisation_id,
            project_id=world.project.id,
            required_t=1,
            required_amount_fen=1,
        )
    assert {e["field"] for e in caught.value.errors} == {
        "case_number",
        "judgment_sha256",
        "required_t",
    }
    case = compensation.create_case(
        session,
        actor=court,
        case_number="A1",
        judgment_sha256=digest.upper(),
        defendant_id=defendant.organisation_id,
        project_id=world.project.id,
        required_amount_fen=13_000_00,
    )
    assert case.judgment_sha256 == digest
    with pytest.raises(CaseConflict):
        compensation.create_case(
            session,
            actor=court,
            case_number="A1",
            judgment_sha256=digest,
            defendant_id=defendant.organisation_id,
            project_id=world.project.id,
            required_t=1,
        )
    # an amount is met with the fewest whole tonnes that cost at least that much
    helpers.listing(session, world, quantity_t=1_000, price_fen_per_t=5_883)
    order = compensation.order_for_case(session, actor=defendant, case_id=case.id)
    assert order.total_fen >= 13_000_00 > order.total_fen - 5_883
    assert order.beneficiary is not None and "A1" in order.beneficiary


def test_fund_standards_round_and_payout(session: Session) -> None:
    world = helpers.issued_world(session, areas=[(97.0, {0: 5_000, 1: 5_000}), (83.0, {2: 10_000})])
    fund = helpers.org_actor(session, OrgKind.compensation_fund)
    assert fund.organisation_id is not None
    district = world.project.district_adcode
    assert district is not None and geo.district_by_adcode(district) is not None
    with pytest.raises(InvalidStandard):
        funds.set_standard(
            session,
            actor=fund,
            year=2025,
            land_type="bamboo",
            district_adcode="999999",
            rate_fen_per_mu_year=0,
        )
    funds.set_standard(
        session,
        actor=fund,
        year=2025,
        land_type="bamboo",
        district_adcode=district,
        rate_fen_per_mu_year=2_500,  # 25 CNY per mu per year
    )
    drafted = funds.draft_round(session, actor=fund, year=2025)
    assert drafted.status == RoundStatus.draft and drafted.parcels == 2
    lines = funds.round_lines(session, drafted.id)
    assert sum(line.amount_fen for line in lines) == drafted.total_fen
    for line in lines:
        if line.kind == PayoutKind.household:
            assert line.household_id is not None
    # each parcel: rate × area, households 80 % of it
    by_parcel: dict[object, list[PayoutRoundLine]] = {}
    for line in lines:
        by_parcel.setdefault(line.parcel_id, []).append(line)
    for parcel_lines in by_parcel.values():
        area = Fraction(parcel_lines[0].area_mu)
        amount = round_half_up(2_500 * area)
        assert sum(line.amount_fen for line in parcel_lines) == amount
        households = sum(
            item.amount_fen for item in parcel_lines if item.kind == PayoutKind.household
        )
        assert households == round_half_up(Fraction(amount * 8, 10))
    # the fund must have the money
    with pytest.raises(InsufficientFunds):
        funds.pay_round(session, actor=fund, round_id=drafted.id)
    session.rollback()
    fund = helpers.org_actor(session, OrgKind.compensation_fund)
    world = helpers.issued_world(session, areas=[(90.0, {0: 10_000})])
    assert fund.organisation_id is not None and world.project.district_adcode is not None
    funds.set_standard(
        session,
        actor=fund,
        year=2025,
        land_type="bamboo",
        district_adcode=world.project.district_adcode,
        rate_fen_per_mu_year=2_500,
    )
    drafted = funds.draft_round(session, actor=fund, year=2025)
    funds.record_deposit(
        session,
        actor=world.finance,
        fund_id=fund.organisation_id,
        amount_fen=drafted.total_fen + 100,
        bank_reference="ICBC-FUND-1",
    )
    paid = funds.pay_round(session, actor=fund, round_id=drafted.id)
    assert paid.status == RoundStatus.paid and paid.journal_entry_id is not None
    assert funds.fund_balance_fen(session, fund.organisation_id) == 100
    (household,) = world.households
    household_paid = helpers.balance(session, wallet.ASSET_CNY, f"household:{household.id}")
    coop_paid = helpers.balance(session, wallet.ASSET_CNY, helpers.owner(world.coop))
    assert household_paid + coop_paid == drafted.total_fen
    assert household_paid > coop_paid > 0
    with pytest.raises(RoundConflict):
        funds.pay_round(session, actor=fund, round_id=drafted.id)
    with pytest.raises(RoundConflict):
        funds.draft_round(session, actor=fund, year=2025)
    from market.service import statements

    statement = statements.household_statement(session, household.id)
    assert [entry.kind for entry in statement.entries] == ["compensation"]
    assert statement.total_fen == household_paid == statement.balance_fen
    assert session.exec(select(Certificate).where(col(Certificate.id) == "none")).first() is None
    assert json.dumps(statement.total_fen)


def test_a_funds_case_is_the_only_way_to_an_ecological_compensation_retirement(
    session: Session, world: helpers.World
) -> None:
    """Issue 15, hole 5: a compensation fund's case, earmarked to a project, paid by its
    defendant, retires the tonnes as ecological compensation under the case's number; a court's
    case is a judicial restoration."""
    fund = helpers.org_actor(session, OrgKind.compensation_fund)
    defendant = helpers.org_actor(session, OrgKind.enterprise)
    assert defendant.organisation_id is not None
    helpers.listing(session, world, quantity_t=100, price_fen_per_t=5_000)
    case = compensation.create_case(
        session,
        actor=fund,
        case_number="湖生补〔2025〕7号",
        judgment_sha256=hashlib.sha256(b"decision").hexdigest(),
        defendant_id=defendant.organisation_id,
        project_id=world.project.id,
        required_t=12,
    )
    assert compensation.case_purpose(session, case) == RetirementPurpose.ecological_compensation
    assert presenters.case_public(session, case).purpose == "ecological_compensation"
    placed = compensation.order_for_case(session, actor=defendant, case_id=case.id)
    assert placed.purpose == RetirementPurpose.ecological_compensation
    helpers.pay_in_sandbox(session, defendant, placed)
    checks = compensation.verify_case_certificates(session, actor=fund, case_id=case.id)
    assert [(check.ok, check.quantity_t, check.case_number) for check in checks] == [
        (True, 12, "湖生补〔2025〕7号")
    ]
    retired = session.exec(
        select(Retirement).where(col(Retirement.holder) == f"org:{defendant.organisation_id}")
    ).one()
    assert retired.purpose == RetirementPurpose.ecological_compensation
