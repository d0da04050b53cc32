"""Ingesting signed batches: every rejection reason refused on its own while the rest of the
batch is accepted; grams and points land in the ledger exactly; receipts keep the version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

import wallet.service as wallet
from registry.inclusion.models import (
    InclusionActivityKey,
    InclusionBatch,
    InclusionEvent,
    InclusionRejection,
)
from registry.inclusion.service import ingest, residents
from registry.inclusion.service.signatures import sign
from tanhui.db import utcnow
from tests.inclusion import helpers


def run(
    session: Session,
    partner_id: uuid.UUID,
    secret: str,
    events: list[dict[str, Any]],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    moment = now or utcnow()
    raw = helpers.body(events)
    result = ingest.ingest(
        session,
        partner_ref=str(partner_id),
        signature=sign(secret, raw, timestamp=int(moment.timestamp())),
        body=raw,
        now=moment,
    )
    return {
        outcome.partner_event_id: (outcome.reason, outcome.grams, outcome.points)
        for outcome in result.outcomes
    }


def test_each_reason_is_refused_while_the_rest_is_accepted(session: Session) -> None:
    bus_operator, bus_secret = helpers.partner(session, ["bus", "walk"])
    maas_app, maas_secret = helpers.partner(session, ["bus"])
    alice = helpers.resident(session)
    bob = helpers.resident(session)
    now = utcnow()
    ride_at = now - timedelta(hours=2)
    # Another partner reported Bob's ride first: the operator's report is the same act.
    first = run(
        session, maas_app, maas_secret, [helpers.event(bob, event_id="m1", occurred_at=ride_at)]
    )
    assert first == {"m1": (None, 269, 26)}
    run(session, bus_operator, bus_secret, [helpers.event(alice, event_id="old-1")])
    events = [
        helpers.event(alice, event_id="ok-1", quantity=12.5),
        helpers.event(alice, event_id="ok-1", quantity=3),  # the same id twice in one batch
        helpers.event(alice, event_id="old-1"),  # already sent in an earlier batch
        helpers.event(bob, event_id="dup-act", occurred_at=ride_at + timedelta(minutes=2)),
        helpers.event(alice, event_id="stale", occurred_at=now - timedelta(days=7, minutes=1)),
        helpers.event(alice, event_id="future", occurred_at=now + timedelta(minutes=10)),
        helpers.event(alice, event_id="walk-1", scenario="walk", quantity=15_000),
        helpers.event(alice, event_id="walk-cap", scenario="walk", quantity=6_000),
        helpers.event("13900000000", event_id="nobody"),
        helpers.event(alice, event_id="not-allowed", scenario="metro"),
        helpers.event(alice, event_id="too-far", quantity=400),
        helpers.event(alice, event_id="sprint", scenario="walk", quantity=3_000, duration_s=60),
        helpers.event(bob, event_id="ok-2", quantity="7.25", occurred_at=now - timedelta(days=6)),
    ]
    raw = helpers.body(events)
    result = ingest.ingest(
        session,
        partner_ref=str(bus_operator),
        signature=sign(bus_secret, raw, timestamp=int(now.timestamp())),
        body=raw,
        now=now,
    )
    assert [(o.partner_event_id, o.reason, o.grams, o.points) for o in result.outcomes] == [
        ("ok-1", None, 336, 33),  # 12.5 km × 26.9 g = 336.25 g, rounded down
        ("ok-1", "duplicate", 0, 0),  # in the order received
        ("old-1", "duplicate", 0, 0),
        ("dup-act", "duplicate_activity", 0, 0),
        ("stale", "too_old", 0, 0),
        ("future", "in_future", 0, 0),
        ("walk-1", None, 246, 24),  # 15,000 steps × 0.0164 g
        ("walk-cap", "cap_exceeded", 0, 0),  # 21,000 steps > 20,000 a day
        ("nobody", "unknown_resident", 0, 0),
        ("not-allowed", "scenario_not_allowed", 0, 0),
        ("too-far", "implausible", 0, 0),
        ("sprint", "implausible", 0, 0),  # 3,000 steps a minute
        ("ok-2", None, 195, 19),
    ]
    raw = helpers.body(events[:2])
    again = ingest.ingest(
        session,
        partner_ref=str(bus_operator),
        signature=sign(bus_secret, raw, timestamp=int(now.timestamp())),
        body=raw,
        now=now,
    )
    assert [(o.partner_event_id, o.reason) for o in again.outcomes] == [
        ("ok-1", "duplicate"),
        ("ok-1", "duplicate"),
    ]
    assert again.outcomes[0].receipt_id is not None  # the receipt made the first time

    alice_view = residents.balances(session, alice)
    # old-1 (10 km = 269 g, 26 points) + ok-1 + walk-1
    assert alice_view.reductions_g == 269 + 336 + 246
    assert alice_view.points_balance == 26 + 33 + 24
    assert residents.balances(session, bob).reductions_g == 269 + 195
    rejected = session.exec(select(func.count()).select_from(InclusionRejection)).one()
    assert rejected == 10 + 2
    assert wallet.verify_ledger(session).ok


def test_receipts_keep_the_version_in_force_when_the_act_happened(session: Session) -> None:
    metro, secret = helpers.partner(session, ["metro"])
    rider = helpers.resident(session)
    # 2026-07-01 00:00 in Huzhou is 2026-06-30 16:00 UTC: metro 2.0 takes effect then.
    before = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    after = datetime(2026, 6, 30, 16, 0, 0, tzinfo=UTC)
    now = datetime(2026, 7, 2, 9, 0, tzinfo=UTC)
    results = run(
        session,
        metro,
        secret,
        [
            helpers.event(rider, scenario="metro", event_id="before", occurred_at=before),
            helpers.event(rider, scenario="metro", event_id="after", occurred_at=after),
        ],
        now=now,
    )
    assert results == {"before": (None, 467, 46), "after": (None, 784, 78)}
    versions = dict(
        session.exec(select(InclusionEvent.partner_event_id, InclusionEvent.factor_version)).all()
    )
    assert versions == {"before": "1.0", "after": "2.0"}


def test_the_same_act_from_two_partners_counts_once(session: Session) -> None:
    operator, operator_secret = helpers.partner(session, ["bus"])
    app, app_secret = helpers.partner(session, ["bus"])
    rider = helpers.resident(session)
    at = utcnow() - timedelta(hours=3)
    assert (
        run(
            session, operator, operator_secret, [helpers.event(rider, event_id="a", occurred_at=at)]
        )["a"][0]
        is None
    )
    # Within 3 minutes: the same act. 12 minutes (4 radii) or more from any ride: another ride.
    results = run(
        session,
        app,
        app_secret,
        [
            helpers.event(rider, event_id="b", occurred_at=at + timedelta(minutes=2, seconds=50)),
            helpers.event(rider, event_id="c", occurred_at=at + timedelta(minutes=16)),
        ],
    )
    assert results["b"][0] == "duplicate_activity" and results["c"][0] is None
    # One partner reporting two rides close together is two rides (its event ids differ).
    results = run(
        session,
        operator,
        operator_secret,
        [helpers.event(rider, event_id="d", occurred_at=at + timedelta(minutes=2))],
    )
    assert results["d"][0] is None


def test_a_capped_event_releases_its_activity_keys(session: Session) -> None:
    health_a, secret_a = helpers.partner(session, ["walk"])
    health_b, secret_b = helpers.partner(session, ["walk"])
    walker = helpers.resident(session)
    run(session, health_a, secret_a, [helpers.event(walker, scenario="walk", quantity=20_000)])
    tomorrow = utcnow() - timedelta(days=2)
    capped = run(
        session,
        health_a,
        secret_a,
        [helpers.event(walker, event_id="x", scenario="walk", quantity=500)],
    )
    assert capped["x"][0] == "cap_exceeded"
    keys_before = session.exec(select(func.count()).select_from(InclusionActivityKey)).one()
    assert keys_before == 1
    # Another day's walk from the other partner is accepted.
    other_day = run(
        session,
        health_b,
        secret_b,
        [helpers.event(walker, event_id="y", scenario="walk", quantity=500, occurred_at=tomorrow)],
    )
    assert other_day["y"][0] is None


def test_participation_scenarios_earn_points_but_claim_no_grams(session: Session) -> None:
    site, secret = helpers.partner(session, ["tourism", "recycling", "second_hand"])
    visitor = helpers.resident(session)
    results = run(
        session,
        site,
        secret,
        [
            helpers.event(visitor, event_id="t", scenario="tourism", quantity=1),
            helpers.event(
                visitor, event_id="r", scenario="recycling", variant="textile", quantity=2.5
            ),
            helpers.event(
                visitor, event_id="r2", scenario="recycling", variant="paper", quantity=1
            ),
            helpers.event(visitor, event_id="r3", scenario="recycling", quantity=1),
            helpers.event(
                visitor, event_id="p", scenario="second_hand", variant="phone", quantity=1
            ),
            helpers.event(
                visitor, event_id="half", scenario="second_hand", variant="phone", quantity=0.5
            ),
        ],
    )
    assert results == {
        "t": (None, 0, 20),
        "r": (None, 3200, 320),
        "r2": ("scenario_not_allowed", 0, 0),  # no factor for paper
        "r3": ("scenario_not_allowed", 0, 0),  # recycling needs its material
        "p": (None, 51_900, 5190),
        "half": ("implausible", 0, 0),  # half a phone
    }


def test_citizen_card_reports_reach_the_resident(session: Session) -> None:
    station, secret = helpers.partner(session, ["recycling"])
    holder = helpers.resident(session)
    helpers.link_card(session, holder, "hz 3305 0012 3456")
    results = run(
        session,
        station,
        secret,
        [
            helpers.event(
                holder,
                event_id="card",
                scenario="recycling",
                variant="textile",
                quantity=1,
                resident={"citizen_card": "HZ330500123456"},
            ),
            helpers.event(
                holder,
                event_id="wrong-card",
                scenario="recycling",
                variant="textile",
                quantity=1,
                resident={"citizen_card": "HZ330500999999"},
            ),
        ],
    )
    assert results["card"] == (None, 1280, 128)
    assert results["wrong-card"][0] == "unknown_resident"
    # A card links to one resident only: a proven new holder takes it over.
    other = helpers.resident(session)
    helpers.link_card(session, other, "HZ330500123456")
    session.refresh(holder)
    assert holder.citizen_card_index is None and other.citizen_card_index is not None


def test_receipt_links_to_its_journal_entry(session: Session) -> None:
    operator, secret = helpers.partner(session, ["bus"])
    rider = helpers.resident(session)
    run(session, operator, secret, [helpers.event(rider, event_id="r")])
    event = session.exec(select(InclusionEvent)).one()
    assert event.journal_entry_id is not None
    postings = wallet.entry_postings(session, event.journal_entry_id)
    assert {p.asset for p in postings} == {"RED_G", "POINTS"}
    batch = session.exec(select(InclusionBatch)).one()
    assert (batch.events, batch.accepted, batch.rejected) == (1, 1, 0)
    assert (
        session.exec(
            select(func.count()).select_from(InclusionEvent).where(col(InclusionEvent.grams) > 0)
        ).one()
        == 1
    )
