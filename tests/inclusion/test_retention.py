"""Pruning fingerprints and daily-cap counters: what can still decide an event is kept, what
cannot is deleted, receipts and the ledger are untouched; the cron command."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from registry.inclusion.models import InclusionActivityKey, InclusionDailyUsage, InclusionEvent
from registry.inclusion.service import retention
from tanhui.db import utcnow
from tanhui.settings import Settings
from tests.factories import run_cli
from tests.inclusion import helpers
from tests.inclusion.test_ingest import run


def _count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_pruning_keeps_what_can_still_decide_and_drops_the_rest(session: Session) -> None:
    operator, operator_secret = helpers.partner(session, ["bus", "walk"])
    app, app_secret = helpers.partner(session, ["bus", "walk"])
    rider = helpers.resident(session)
    start = utcnow()
    ride = helpers.event(rider, event_id="ride", occurred_at=start - timedelta(minutes=1))
    walk = helpers.event(rider, event_id="walk", scenario="walk", quantity=3000)
    first = run(session, operator, operator_secret, [ride, walk], now=start)
    assert first["ride"][0] is None and first["walk"][0] is None
    keys, counters = _count(session, InclusionActivityKey), _count(session, InclusionDailyUsage)
    assert keys == 3 and counters == 2  # two buckets for the ride, one day for the walk

    # Six days later the ride can still be reported (it is within the 7-day window): pruning
    # keeps its fingerprints, so the other partner's report of it is a duplicate activity.
    later = start + timedelta(days=6, hours=23)
    assert retention.prune(session, now=later) == retention.Pruned(keys=0, counters=0)
    again = helpers.event(rider, event_id="again", occurred_at=start - timedelta(minutes=1))
    assert run(session, app, app_secret, [again], now=later)["again"][0] == "duplicate_activity"

    # Just before the retention ends nothing goes; just after, the fingerprints do.
    edge = start + retention.KEY_RETENTION
    assert retention.prune(session, now=edge - timedelta(seconds=5)).keys == 0
    assert retention.prune(session, now=edge + timedelta(seconds=5)).keys == 3
    assert _count(session, InclusionActivityKey) == 0
    # The act itself can no longer be reported: it is too old.
    assert run(session, app, app_secret, [again], now=edge)["again"][0] == "too_old"

    # Counters go once their day is past the window and the margin, in chunks of ``limit``.
    assert retention.prune(session, now=edge).counters == 0
    much_later = start + timedelta(days=retention.COUNTER_RETENTION_DAYS + 2)
    assert retention.prune(session, now=much_later, limit=1) == retention.Pruned(0, 1)
    assert retention.prune(session, now=much_later, limit=1) == retention.Pruned(0, 1)
    assert _count(session, InclusionDailyUsage) == 0
    # Receipts stay: they are the record of what was credited.
    assert _count(session, InclusionEvent) == 2


def test_prune_command(settings: Settings, session: Session) -> None:
    partner, secret = helpers.partner(session, ["bus"])
    rider = helpers.resident(session)
    long_ago = utcnow() - timedelta(days=12)
    ride = helpers.event(rider, event_id="old", occurred_at=long_ago - timedelta(minutes=5))
    assert run(session, partner, secret, [ride], now=long_ago)["old"][0] is None
    session.commit()
    pruned = run_cli(settings, "points", "prune", "--batch", "100")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.strip() == "pruned 2 activity fingerprints and 1 daily-cap counters"
    bad = run_cli(settings, "points", "prune", "--batch", "5")
    assert bad.returncode == 2


def test_the_retention_outlasts_every_window_a_fingerprint_spans() -> None:
    """A stored act and a new one share a key only within two buckets (4 radii) or one day; the
    retention must cover the acceptance window, the clock tolerance and that span."""
    from mrv.inclusive import FUTURE_TOLERANCE, MAX_AGE
    from mrv.inclusive.scenarios import DAY_WINDOW, SPECS

    widest = max(
        timedelta(days=1)
        if spec.dedup_window_s == DAY_WINDOW
        else 4 * timedelta(seconds=spec.dedup_window_s)
        for spec in SPECS.values()
    )
    assert MAX_AGE + FUTURE_TOLERANCE + widest < retention.KEY_RETENTION
    assert timedelta(days=retention.COUNTER_RETENTION_DAYS) > MAX_AGE + timedelta(days=1)
