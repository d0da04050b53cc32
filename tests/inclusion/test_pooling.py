"""Pooling residents' reductions: grams are conserved (the residents' grams = tonnes issued ×
10⁶ + the carried remainder), month after month, in the pools and in the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

import wallet.service as wallet
from registry.inclusion.errors import PoolingError
from registry.inclusion.models import InclusionPoolShare, PoolStatus
from registry.inclusion.service import ingest, pooling, residents
from registry.inclusion.service.signatures import sign
from tests.inclusion import helpers


@settings(deadline=None)
@given(
    pooled=st.integers(min_value=0, max_value=10**12),
    carried=st.integers(min_value=0, max_value=999_999),
)
def test_split_conserves_grams(pooled: int, carried: int) -> None:
    figures = pooling.split(pooled, carried)
    assert figures.tonnes * 1_000_000 + figures.carried_out_g == pooled + carried
    assert 0 <= figures.carried_out_g < 1_000_000


def _phones_sold(
    session: Session, partner: tuple[object, str], people: list[object], day: date, phones: int
) -> None:
    """Each resident buys ``phones`` second-hand phones on ``day`` (51,900 g each)."""
    partner_id, secret = partner
    moment = datetime(day.year, day.month, day.day, 4, 0, tzinfo=UTC)
    events = [
        helpers.event(
            who,  # type: ignore[arg-type]
            scenario="second_hand",
            variant="phone",
            quantity=1,
            occurred_at=moment + timedelta(minutes=index * 20 + n),
        )
        for n, who in enumerate(people)
        for index in range(phones)
    ]
    raw = helpers.body(events)
    now = moment + timedelta(hours=2)
    result = ingest.ingest(
        session,
        partner_ref=str(partner_id),
        signature=sign(secret, raw, timestamp=int(now.timestamp())),
        body=raw,
        now=now,
    )
    assert result.rejected == 0, [o.reason for o in result.outcomes if o.reason]


def test_pooling_conserves_grams_month_after_month(session: Session) -> None:
    market = helpers.partner(session, ["second_hand"])
    people = [helpers.resident(session) for _ in range(7)]
    _phones_sold(session, market, people, date(2026, 9, 3), 2)  # 14 × 51.9 kg = 726.6 kg
    _phones_sold(session, market, people[:3], date(2026, 9, 20), 1)  # + 155.7 kg
    _phones_sold(session, market, people, date(2026, 10, 5), 2)  # 726.6 kg in October
    with pytest.raises(PoolingError):  # October's late events may still arrive
        pooling.pool_month(session, month="2026-10", today=date(2026, 11, 5))
    september = pooling.pool_month(session, month="2026-09", today=date(2026, 10, 9))
    assert (september.pooled_g, september.carried_in_g) == (882_300, 0)
    assert (september.tonnes, september.carried_out_g) == (0, 882_300)
    assert september.status == PoolStatus.issued  # nothing to issue: all carried over
    with pytest.raises(PoolingError):
        pooling.pool_month(session, month="2026-09", today=date(2026, 10, 9))
    october = pooling.pool_month(session, month="2026-10", today=date(2026, 11, 9))
    assert (october.pooled_g, october.carried_in_g) == (726_600, 882_300)
    assert (october.tonnes, october.carried_out_g) == (1, 608_900)
    assert october.status == PoolStatus.pooled  # one tonne claimed, awaiting the registry

    shares = session.exec(select(InclusionPoolShare)).all()
    residents_grams = sum(share.grams for share in shares)
    assert residents_grams == september.pooled_g + october.pooled_g
    assert residents_grams == october.tonnes * 1_000_000 + october.carried_out_g
    pool_account = wallet.system_account(session, pooling.POOL_ACCOUNT, "RED_G")
    assert wallet.get_balance(session, pool_account.id).balance == residents_grams
    for who in people:
        view = residents.balances(session, who)  # type: ignore[arg-type]
        assert view.pooled_g == view.reductions_g  # every gram went into a pool
    assert wallet.verify_ledger(session).ok


def test_a_pool_waits_for_the_registry_without_writing_half(session: Session) -> None:
    from registry.models import ProjectType
    from registry.service import projects
    from tests.registry import helpers as registry_helpers

    roles = registry_helpers.Roles.make(session)
    assert roles.coop.organisation_id is not None
    project = projects.create_project(
        session,
        actor=roles.coop,
        cooperative_id=roles.coop.organisation_id,
        code="RES0001",
        name="湖州居民低碳行为减排量归集",
        type=ProjectType.residents,
        methodology_name=pooling.METHODOLOGY_NAME,
        methodology_version=pooling.METHODOLOGY_VERSION,
        crediting_start=date(2026, 1, 1),
        crediting_end=date(2035, 12, 31),
    )
    market = helpers.partner(session, ["second_hand"])
    people = [helpers.resident(session) for _ in range(10)]
    _phones_sold(session, market, people, date(2026, 9, 3), 2)  # 1.038 t
    pool = pooling.pool_month(session, month="2026-09", today=date(2026, 10, 9))
    assert (pool.tonnes, pool.carried_out_g) == (1, 38_000)
    assert pooling.submit_pool(session, pool) == "submitted"  # a RES project needs no parcels
    period = registry_helpers.latest_period(session, project.id)
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    from registry.service import issuance

    batch = issuance.issue(session, actor=roles.authority, period_id=period.id)
    assert pooling.settle_pools(session) == 1
    assert pool.status == PoolStatus.issued and pool.batch_id == batch.id
    assert pool.pooled_g + pool.carried_in_g == pool.tonnes * 1_000_000 + pool.carried_out_g

    # The batch is sold like any credit; each contributor then sees who bought it.
    assert [
        buyer for item in pooling.contributions_of(session, people[0].id) for buyer in item.buyers
    ] == []
    from market.models import Provider
    from market.service import listings, orders, payments
    from registry.service.transfers import organisation_name

    lot = listings.create_listing(
        session, actor=roles.coop, batch_id=batch.id, quantity_t=1, price_fen_per_t=2_400
    )
    placed = orders.create_order(
        session,
        actor=roles.enterprise,
        lines=[orders.LineRequest(listing_id=lot.id, quantity_t=1)],
        provider=Provider.sandbox,
    )
    payment = payments.start_checkout(session, actor=roles.enterprise, order_id=placed.id)
    payments.sandbox_complete(session, actor=roles.enterprise, payment_id=payment.id)
    buyer_name = organisation_name(session, f"org:{roles.enterprise.organisation_id}")
    assert buyer_name
    for who in people:
        (contribution,) = pooling.contributions_of(session, who.id)
        assert contribution.grams == 2 * 51_900
        assert [(b.name, b.tonnes, b.retired) for b in contribution.buyers] == [
            (buyer_name, 1, False)
        ]
