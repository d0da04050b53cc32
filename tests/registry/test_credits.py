"""Issued credits: serial blocks and wallet balances move together; every tonne has one serial;
retired and pledged tonnes cannot move; reversals cancel buffer credits."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from registry.errors import (
    CaseMandateRefused,
    InsufficientCredits,
    IssuanceBlockedByLoss,
    LossExceedsCreditedStock,
    PledgeConflict,
    PurposeRequiresCase,
    QuantityExceedsIssuable,
    ReversalConflict,
    RoleRefused,
)
from registry.models import (
    Batch,
    BlockState,
    LossCause,
    Pledge,
    ProjectStatus,
    Retirement,
    RetirementPurpose,
    ReversalStatus,
    SerialBlock,
)
from registry.serials import SerialFormatError, batch_prefix, parse
from registry.service import (
    blocks,
    contracts,
    issuance,
    pledges,
    projects,
    public,
    retirements,
    reversals,
    transfers,
)
from registry.service.actors import Actor
from registry.service.retirements import CaseMandate
from tanhui.db import retrying, utcnow
from tanhui.models import OrgKind
from tests.registry import helpers
from wallet import service as wallet


def _balance(session: Session, batch: Batch, owner: str) -> int:
    account = wallet.find_account(session, asset=batch.asset_code, owner=owner)
    return wallet.get_balance(session, account.id).balance if account else 0


def _held(session: Session, batch: Batch) -> Counter[str]:
    held: Counter[str] = Counter()
    for block in blocks.batch_blocks(session, batch.id):
        if block.state not in {BlockState.retired, BlockState.cancelled}:
            held[block.holder] += block.quantity_t
    return held


def test_serial_format_round_trips() -> None:
    prefix = batch_prefix(helpers.ProjectType.bamboo, "AJ0001", 2024, 1)
    assert prefix == "THC-BAM-AJ0001-2024-001"
    parsed = parse("THC-BAM-AJ0001-2024-001-000001-001000")
    assert (parsed.prefix, parsed.first, parsed.last, parsed.quantity_t) == (prefix, 1, 1000, 1000)
    assert parse("thc-wet-dq0001-2022-002-000007").quantity_t == 1
    assert parse("THC-RES-HZ01-2025-010").first is None
    for bad in ("THC-XXX-AJ0001-2024-001", "THC-BAM-AJ0001-24-001", "THC-BAM-AJ0001-2024-001-5-3"):
        with pytest.raises(SerialFormatError):
            parse(bad)


def test_issuance_withholds_the_buffer_and_never_exceeds_the_report(session: Session) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.filed, issuable=900, buffer=100)
    period = helpers.latest_period(session, project.id)
    with pytest.raises(QuantityExceedsIssuable):
        issuance.issue(session, actor=roles.authority, period_id=period.id, quantity_t=901)
    batch = issuance.issue(session, actor=roles.authority, period_id=period.id, quantity_t=450)
    assert (batch.quantity_t, batch.buffer_t) == (450, 50)  # the buffer scales, rounded up
    assert _balance(session, batch, f"org:{roles.coop.organisation_id}") == 450
    assert _balance(session, batch, "system:buffer_pool") == 50
    where = public.locate(session, batch.serial_prefix)
    assert [(p.serial, p.holder) for p in where.parts] == [
        (f"{batch.serial_prefix}-000001-000450", where.parts[0].holder),
        (f"{batch.serial_prefix}-000451-000500", "buffer pool"),
    ]


def test_transfer_gives_the_last_sub_block_and_retirement_the_lowest(session: Session) -> None:
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    buyer = roles.enterprise
    assert buyer.organisation_id is not None
    pairs = transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=buyer.organisation_id,
        quantity_t=100,
    )
    assert pairs == [
        (f"{batch.serial_prefix}-000901-000901", f"{batch.serial_prefix}-001000-001000")
    ]
    retirement = retirements.retire(
        session,
        actor=buyer,
        batch_id=batch.id,
        quantity_t=10,
        beneficiary="2025 年度碳中和",
        purpose=RetirementPurpose.annual_neutrality,
    )
    retired = retirements.retired_blocks(session, retirement.id)
    assert [(b.first, b.last) for b in retired] == [(901, 910)]
    with pytest.raises(InsufficientCredits):
        retirements.retire(
            session,
            actor=buyer,
            batch_id=batch.id,
            quantity_t=91,
            beneficiary="x",
            purpose=RetirementPurpose.event_neutrality,
        )
    where = public.locate(session, f"{batch.serial_prefix}-000905")
    assert where.parts[0].state == BlockState.retired
    assert where.parts[0].certificate_id == retirement.certificate_id
    assert _balance(session, batch, buyer.owner) == 90
    assert _balance(session, batch, "system:retirement") == 10


def test_case_purposes_need_a_case_of_a_court_or_fund_on_its_earmarked_project(
    session: Session,
) -> None:
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    court = helpers.actor(session, OrgKind.court)
    fund = helpers.actor(session, OrgKind.compensation_fund)
    assert court.organisation_id is not None and fund.organisation_id is not None

    def case(purpose: RetirementPurpose, by: Actor, project: uuid.UUID) -> CaseMandate:
        assert by.org_kind is not None and by.organisation_id is not None
        return CaseMandate(
            purpose, by.organisation_id, by.org_kind, "(2023)浙0591民初123号", project
        )

    def retire(purpose: RetirementPurpose, mandate: CaseMandate | None) -> Retirement:
        return retirements.retire(
            session,
            actor=roles.coop,
            batch_id=batch.id,
            quantity_t=5,
            beneficiary="南太湖新区",
            purpose=purpose,
            case=mandate,
        )

    judicial, compensation = (
        RetirementPurpose.judicial_restoration,
        RetirementPurpose.ecological_compensation,
    )
    for purpose in (judicial, compensation):
        with pytest.raises(PurposeRequiresCase):
            retire(purpose, None)
    for purpose, mandate in [
        (judicial, case(judicial, court, uuid.uuid4())),  # another project's case
        (judicial, case(judicial, fund, batch.project_id)),  # a fund orders no restoration
        (judicial, case(compensation, court, batch.project_id)),  # another kind of case
        (RetirementPurpose.annual_neutrality, case(judicial, court, batch.project_id)),
    ]:
        with pytest.raises(CaseMandateRefused):
            retire(purpose, mandate)
    assert _balance(session, batch, "system:retirement") == 0
    done = retire(judicial, case(judicial, court, batch.project_id))
    assert done.case_number == "(2023)浙0591民初123号"
    assert retire(compensation, case(compensation, fund, batch.project_id)).case_number


def loan_terms() -> dict[str, Any]:
    """A year's loan of 371,900 CNY at 3.85 % (the Anji sink-backed loan's size)."""
    return {
        "loan_amount_fen": 37_190_000,
        "interest_rate_bp": 385,
        "matures_on": contracts.today() + timedelta(days=365),
    }


def after_maturity(pledge: Pledge) -> date:
    assert pledge.matures_on is not None
    return pledge.matures_on + timedelta(days=1)


def test_pledged_credits_cannot_move_until_released(session: Session) -> None:
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    bank = helpers.actor(session, OrgKind.enterprise)
    assert bank.organisation_id is not None and roles.enterprise.organisation_id is not None
    pledge = pledges.pledge_credits(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=1000,
        lender_id=bank.organisation_id,
        **loan_terms(),
    )
    for attempt in (
        lambda: transfers.transfer(
            session,
            actor=roles.coop,
            batch_id=batch.id,
            to_organisation_id=roles.enterprise.organisation_id,
            quantity_t=1,
        ),
        lambda: retirements.retire(
            session,
            actor=roles.coop,
            batch_id=batch.id,
            quantity_t=1,
            beneficiary="x",
            purpose=RetirementPurpose.annual_neutrality,
        ),
        lambda: transfers.list_credits(
            session, batch_id=batch.id, owner=roles.coop.owner, quantity_t=1, listing_ref="L1"
        ),
    ):
        with pytest.raises(InsufficientCredits):
            attempt()
    owner = roles.coop.owner
    assert (
        wallet.get_balance(
            session,
            wallet.find_account(session, asset=batch.asset_code, owner=owner).id,  # type: ignore[union-attr]
        ).available
        == 0
    )
    where = public.locate(
        session, f"{batch.serial_prefix}-000001", viewer=roles.coop.organisation_id
    )
    assert where.parts[0].state == BlockState.pledged and where.parts[0].pledged_to
    pledges.accept(session, actor=bank, pledge_id=pledge.id)
    with pytest.raises(PledgeConflict):  # accepted: only the lender releases
        pledges.release(session, actor=roles.coop, pledge_id=pledge.id)
    pledges.release(session, actor=bank, pledge_id=pledge.id)
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=roles.enterprise.organisation_id,
        quantity_t=1,
    )
    second = pledges.pledge_credits(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=200,
        lender_id=bank.organisation_id,
        **loan_terms(),
    )
    pledges.accept(session, actor=bank, pledge_id=second.id)
    pledges.enforce(session, actor=bank, pledge_id=second.id, today=after_maturity(second))
    assert _balance(session, batch, bank.owner) == 200
    assert _held(session, batch)[bank.owner] == 200
    assert blocks.tiles(batch, blocks.batch_blocks(session, batch.id))


def test_a_confirmed_loss_cancels_its_own_buffer_and_the_excess_blocks_issuance(
    session: Session,
) -> None:
    roles = helpers.Roles.make(session)
    other = helpers.issued_batch(session, roles, issuable=500, buffer=300)
    batch = helpers.issued_batch(session, roles, issuable=1000, buffer=200)
    project = issuance.project_of(session, batch)
    parcel = projects.project_parcels(session, project.id)[0]

    def propose(loss: int, actor: Actor) -> uuid.UUID:
        return reversals.propose_reversal(
            session,
            actor=actor,
            project_id=project.id,
            parcel_ids=[parcel.id],
            cause=LossCause.fire,
            occurred_on=date(2025, 3, 1),
            estimated_loss_t=loss,
        ).id

    with pytest.raises(RoleRefused):  # the authority confirms; it does not propose
        propose(10, roles.authority)
    first = propose(150, roles.coop)
    assert _balance(session, batch, "system:buffer_pool") == 200  # nothing before confirmation
    with pytest.raises(RoleRefused):
        reversals.confirm_reversal(session, actor=roles.coop, reversal_id=first)
    done = reversals.confirm_reversal(session, actor=roles.authority, reversal_id=first)
    assert (done.cancelled_own_buffer_t, done.cancelled_pool_t, done.shortfall_t) == (150, 0, 0)
    assert done.status == ReversalStatus.confirmed
    with pytest.raises(ReversalConflict):
        reversals.confirm_reversal(session, actor=roles.authority, reversal_id=first)
    assert issuance.project_of(session, batch).reversal_debt_t == 0
    with pytest.raises(LossExceedsCreditedStock):  # 1,200 t credited, 150 t already lost
        propose(1_051, roles.verifier)
    second = reversals.confirm_reversal(
        session, actor=roles.authority, reversal_id=propose(400, roles.verifier)
    )
    # 50 t left in its own buffer; the other 350 t are owed, not taken from the other project
    assert (second.cancelled_own_buffer_t, second.cancelled_pool_t, second.shortfall_t) == (
        50,
        0,
        350,
    )
    assert issuance.project_of(session, batch).buffer_exceeded
    assert _balance(session, batch, "system:buffer_pool") == 0
    assert _balance(session, other, "system:buffer_pool") == 300
    assert _balance(session, batch, "system:cancelled_credits") == 200
    # the project owes 350 t: issued nothing until it cancels 350 t it holds
    period = helpers.measured_period(
        session,
        roles.coop,
        project.id,
        helpers.report(100, 20, start="2025-01-01", end="2025-12-31"),
    )
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    with pytest.raises(IssuanceBlockedByLoss):
        issuance.issue(session, actor=roles.authority, period_id=period.id)
    reversals.make_good(
        session, actor=roles.coop, project_id=project.id, batch_id=batch.id, quantity_t=300
    )
    with pytest.raises(IssuanceBlockedByLoss):
        issuance.issue(session, actor=roles.authority, period_id=period.id)
    owed = reversals.make_good(
        session, actor=roles.coop, project_id=project.id, batch_id=other.id, quantity_t=50
    )
    assert owed.reversal_debt_t == 0 and not owed.buffer_exceeded
    assert _balance(session, batch, "system:cancelled_credits") == 500
    assert issuance.issue(session, actor=roles.authority, period_id=period.id).quantity_t == 100
    for item in (batch, other):
        assert blocks.tiles(item, blocks.batch_blocks(session, item.id))


# --- conservation, by property -------------------------------------------------------------

HOLDERS = ("coop", "buyer", "court")
operation = st.one_of(
    st.tuples(st.just("issue"), st.integers(1, 300), st.integers(0, 80)),
    st.tuples(
        st.just("transfer"),
        st.integers(0, 9),
        st.sampled_from(HOLDERS),
        st.sampled_from(HOLDERS),
        st.integers(1, 400),
    ),
    st.tuples(st.just("retire"), st.integers(0, 9), st.sampled_from(HOLDERS), st.integers(1, 400)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=12))
def test_serials_stay_unique_and_complete(
    session: Session, operations: list[tuple[object, ...]]
) -> None:
    roles = helpers.Roles.make(session)
    actors: dict[str, Actor] = {
        "coop": roles.coop,
        "buyer": roles.enterprise,
        "court": helpers.actor(session, OrgKind.court),
    }
    batches: list[Batch] = [helpers.issued_batch(session, roles, issuable=200, buffer=25)]
    held: Counter[tuple[uuid.UUID, str]] = Counter({(batches[0].id, "coop"): 200})
    retired: Counter[uuid.UUID] = Counter()
    for op in operations:
        kind = op[0]
        savepoint = session.begin_nested()
        try:
            if kind == "issue":
                _, quantity, buffer = op
                # at least the 10 % minimum share of quantity + buffer (invariant 5)
                withheld = max(int(buffer), -(-int(quantity) // 9))
                made = helpers.issued_batch(session, roles, issuable=int(quantity), buffer=withheld)
                batches.append(made)
                held[(made.id, "coop")] += int(quantity)
            elif kind == "transfer":
                _, index, source, target, quantity = op
                batch = batches[int(index) % len(batches)]
                target_org = actors[str(target)].organisation_id
                assert target_org is not None
                transfers.transfer(
                    session,
                    actor=actors[str(source)],
                    batch_id=batch.id,
                    to_organisation_id=target_org,
                    quantity_t=int(quantity),
                )
                held[(batch.id, str(source))] -= int(quantity)
                held[(batch.id, str(target))] += int(quantity)
            else:
                _, index, holder, quantity = op
                batch = batches[int(index) % len(batches)]
                retirements.retire(
                    session,
                    actor=actors[str(holder)],
                    batch_id=batch.id,
                    quantity_t=int(quantity),
                    beneficiary="b",
                    purpose=RetirementPurpose.product_footprint,
                )
                held[(batch.id, str(holder))] -= int(quantity)
                retired[batch.id] += int(quantity)
            savepoint.commit()
        except InsufficientCredits:
            savepoint.rollback()
            if kind == "transfer":
                assert op[2] == op[3] or held[
                    (batches[int(op[1]) % len(batches)].id, str(op[2]))
                ] < int(op[4])  # type: ignore[arg-type]
            else:
                assert held[(batches[int(op[1]) % len(batches)].id, str(op[2]))] < int(op[3])  # type: ignore[arg-type]
    for batch in batches:
        rows = blocks.batch_blocks(session, batch.id)
        assert blocks.tiles(batch, rows), [(b.first, b.last) for b in rows]
        in_blocks = _held(session, batch)
        for name, who in actors.items():
            assert in_blocks[who.owner] == held[(batch.id, name)]
            assert _balance(session, batch, who.owner) == held[(batch.id, name)]
        assert sum(b.quantity_t for b in rows if b.state == BlockState.retired) == retired[batch.id]
        assert _balance(session, batch, "system:retirement") == retired[batch.id]
        assert _balance(session, batch, "system:buffer_pool") == batch.buffer_t
    session.rollback()


# --- concurrency on PostgreSQL -------------------------------------------------------------


@pytest.mark.postgres
def test_concurrent_retirements_of_the_same_tonnes_retire_each_serial_once(
    pg_engine: Engine,
) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        roles = helpers.Roles.make(session)
        batch = helpers.issued_batch(session, roles, issuable=100, buffer=12)
        session.commit()
    holder = roles.coop
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        try:
            retrying(
                pg_engine,
                lambda s: retirements.retire(
                    s,
                    actor=holder,
                    batch_id=batch.id,
                    quantity_t=30,
                    beneficiary="并发测试",
                    purpose=RetirementPurpose.event_neutrality,
                ),
            )
            result = "retired"
        except InsufficientCredits:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["refused"] * 5 + ["retired"] * 3
    with Session(pg_engine) as session:
        rows = session.exec(select(SerialBlock).where(col(SerialBlock.batch_id) == batch.id)).all()
        assert blocks.tiles(batch, rows)
        retired = sorted((b.first, b.last) for b in rows if b.state == BlockState.retired)
        covered = [n for first, last in retired for n in range(first, last + 1)]
        assert len(covered) == len(set(covered)) == 90
        assert _balance(session, batch, "system:retirement") == 90
        assert _balance(session, batch, holder.owner) == 10


def _lapse_wallet_hold(session: Session, hold_id: uuid.UUID | None) -> None:
    """Time passes beyond the wallet hold's expiry (the pledge itself has no end date)."""
    assert hold_id is not None
    record = wallet.get_hold(session, hold_id)
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.flush()


def test_a_pledge_outlives_its_wallet_hold(session: Session) -> None:
    """The wallet hold behind a pledge carries an expiry; once it has lapsed (swept by
    ``tanhui wallet expire-holds`` or not) the lender can still release or enforce the pledge,
    and blocks and balances still agree."""
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    bank = helpers.actor(session, OrgKind.enterprise)
    assert bank.organisation_id is not None and roles.enterprise.organisation_id is not None
    coop = roles.coop.owner

    swept = pledges.pledge_credits(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=300,
        lender_id=bank.organisation_id,
        **loan_terms(),
    )
    _lapse_wallet_hold(session, swept.wallet_hold_id)
    assert wallet.expire_holds(session) == 1  # the cron released the wallet reservation
    with pytest.raises(InsufficientCredits):  # the pledged blocks still cannot move
        transfers.transfer(
            session,
            actor=roles.coop,
            batch_id=batch.id,
            to_organisation_id=roles.enterprise.organisation_id,
            quantity_t=batch.total_t - batch.buffer_t,
        )
    assert pledges.release(session, actor=bank, pledge_id=swept.id).status == "released"
    assert _held(session, batch)[coop] == _balance(session, batch, coop)

    lapsed = pledges.pledge_credits(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=200,
        lender_id=bank.organisation_id,
        **loan_terms(),
    )
    pledges.accept(session, actor=bank, pledge_id=lapsed.id)
    _lapse_wallet_hold(session, lapsed.wallet_hold_id)  # expired, not yet swept
    held_before = _balance(session, batch, coop)
    enforced = pledges.enforce(
        session, actor=bank, pledge_id=lapsed.id, today=after_maturity(lapsed)
    )
    assert enforced.status == "enforced"
    assert _balance(session, batch, bank.owner) == 200
    assert _balance(session, batch, coop) == held_before - 200
    held = _held(session, batch)
    assert held[bank.owner] == 200 and held[coop] == _balance(session, batch, coop)
    coop_account = wallet.find_account(session, asset=batch.asset_code, owner=coop)
    assert coop_account is not None
    balance = wallet.get_balance(session, coop_account.id)
    assert balance.available == balance.balance  # nothing left reserved
    assert blocks.tiles(batch, blocks.batch_blocks(session, batch.id))
    assert wallet.verify_ledger(session).ok
