"""Crash safety: ``tanhui serve`` on PostgreSQL under purchases, partners' signed behaviours and
residents' redemptions from five clients with idempotency keys; the server is SIGKILLed mid-load
(then restarted), and in a second round its database connections are cut mid-load with
``pg_terminate_backend``. Afterwards:

- every request a client saw succeed is in the database, whole;
- clients retrying with their keys get the first answer again (the same order, payment,
  voucher, receipts);
- nothing is half-applied: listings, orders, payments, holds, vouchers and serial blocks agree
  with the ledger, no idempotency claim is left unanswered, and ``tanhui wallet verify`` and
  ``tanhui audit verify`` pass.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlmodel import Session, col, select

from market.models import Listing, ListingStatus
from market.rewards.models import Reward
from registry.inclusion.demo import PARTNERS_FILE
from tanhui import demo, identity
from tanhui.db import create_engine as tanhui_engine
from tanhui.db import unit_of_work
from tanhui.migrate import upgrade
from tanhui.models import Organisation, OrgKind, Role
from tanhui.settings import Settings, use_settings
from tests.conftest import create_pg_database, drop_pg_database
from tests.faults.harness import (
    Load,
    Partner,
    Scenario,
    Server,
    acknowledged_effects_are_stored,
    cookie_for,
    finish,
    invariants_hold,
    replay_gives_the_first_answers,
    run_clients,
    terminate_backends,
    verify_commands,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
LOAD_BEFORE_S = 4.0  # load before the fault
LOAD_AFTER_S = 3.0  # load after the restart


@dataclass
class Platform:
    settings: Settings
    database: str
    scenario: Scenario
    engine: Engine  # a plain engine for the checks (not the server's application_name)
    folder: Path


@pytest.fixture(scope="module")
def platform(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory, pg_server_url: str
) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("faults")
    name = f"tanhui_faults_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:6]}"
    url = create_pg_database(pg_server_url, name)
    settings = base_settings.model_copy(
        update={"database_url": url, "state_dir": folder, "signing_key_file": folder / "key.pem"}
    )
    use_settings(settings)
    engine = tanhui_engine(settings)
    upgrade(engine)
    with unit_of_work(engine) as session:
        demo.seed(session, lambda _message: None)
    with unit_of_work(engine) as session:
        scenario = _scenario(session, folder)
    engine.dispose()
    checks = create_engine(make_url(url))
    yield Platform(settings, name, scenario, checks, folder)
    checks.dispose()
    drop_pg_database(pg_server_url, name)


def _scenario(session: Session, folder: Path) -> Scenario:
    """Three buyers with tokens, the Anji listing, three residents signed in, the meal voucher
    (no stock limit) and the bus group's signing secret."""
    tokens = []
    for number in range(3):
        buyer = identity.create_organisation(
            session, name=f"Crash buyer {number}", kind=OrgKind.enterprise
        )
        user = identity.create_user(
            session,
            email=f"crash{number}@buyers.example.cn",
            password="crash buyer password",
            organisation=buyer,
            role=Role.member,
        )
        tokens.append(identity.create_api_token(session, user=user, name="crash").token)
    listing = session.exec(
        select(Listing)
        .where(col(Listing.status) == ListingStatus.active)
        .where(col(Listing.min_order_t) == 1)
        .order_by(col(Listing.listed_t).desc())
    ).first()
    assert listing is not None
    cookies, resident_ids = [], []
    for phone, _name in [("+8613800000002", ""), ("+8613800000003", ""), ("+8613800000004", "")]:
        resident = identity.find_resident_by_phone(session, phone)
        assert resident is not None
        started = identity.start_web_session(session, resident=resident)
        cookies.append((cookie_for(started.key), started.record.csrf_token))
        resident_ids.append(str(resident.id))
    reward = session.exec(
        select(Reward)
        .where(col(Reward.stock).is_(None))
        .where(col(Reward.active).is_(True))
        .where(col(Reward.kind) == "voucher")
        .order_by(col(Reward.points_price))
    ).first()
    assert reward is not None
    partners = json.loads((folder / PARTNERS_FILE).read_text(encoding="utf-8"))
    bus = next(value for name, value in partners.items() if "公交" in name)
    assert session.get(Organisation, reward.sponsor_id) is not None
    return Scenario(
        buyer_tokens=tokens,
        listing_id=str(listing.id),
        quantity_t=1,
        resident_cookies=cookies,
        resident_ids=resident_ids,
        reward_id=str(reward.id),
        partner=Partner(id=bus["id"], secret=bus["secret"]),
    )


def _check(platform: Platform, server: Server, load: Load) -> None:
    assert len(load.calls) > 20, "the clients made too few requests to prove anything"
    started = time.monotonic()
    finish(server.url, load, platform.scenario)
    unanswered = [c for c in load.calls if not any(s < 500 for s, _ in c.answers)]
    assert not unanswered, [(c.kind, c.path, c.answers, c.errors) for c in unanswered][:5]
    problems = acknowledged_effects_are_stored(platform.engine, load)
    problems += replay_gives_the_first_answers(server.url, load, platform.scenario)
    replayed = time.monotonic()
    problems += invariants_hold(platform.engine)
    problems += verify_commands(platform.settings)
    print(
        f"{len(load.calls)} calls, errors {Counter(e for c in load.calls for e in c.errors)},"
        f" answers {Counter(s for c in load.calls for s, _ in c.answers)};"
        f" retries and replays {replayed - started:.1f} s,"
        f" checks {time.monotonic() - replayed:.1f} s"
    )
    assert not problems, "\n".join(problems)
    settled = [c for c in load.of("complete") if c.first_success]
    assert settled, "no purchase was completed"
    assert any(c.first_success for c in load.of("redemption"))
    assert any(c.first_success for c in load.of("events"))


def test_sigkill_mid_load_loses_nothing_acknowledged(platform: Platform) -> None:
    server = Server(platform.settings, platform.folder / "server-kill.log")
    began = time.monotonic()
    server.start()
    print(f"server ready in {time.monotonic() - began:.1f} s")
    load, stop = Load(), threading.Event()
    try:
        threads = run_clients(server.url, platform.scenario, load, stop)
        time.sleep(LOAD_BEFORE_S)
        in_flight = len(load.calls)
        server.kill()
        time.sleep(0.5)
        server.start()
        time.sleep(LOAD_AFTER_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert in_flight > 5
        interrupted = [c for c in load.calls if c.errors]
        assert interrupted, "the kill interrupted no request: the test proved nothing"
        _check(platform, server, load)
        # no database fault here: concurrent buyers, partners and residents never get a 5xx
        failed = [(c.kind, s, b) for c in load.calls for s, b in c.answers if s >= 500]
        assert not failed, failed[:3]
    finally:
        stop.set()
        server.stop()


def test_cut_database_connections_mid_load_lose_nothing_acknowledged(platform: Platform) -> None:
    server = Server(platform.settings, platform.folder / "server-cut.log")
    server.start()
    load, stop = Load(), threading.Event()
    try:
        threads = run_clients(server.url, platform.scenario, load, stop)
        time.sleep(LOAD_BEFORE_S / 2)
        cut = 0
        for _ in range(6):
            cut += terminate_backends(platform.engine, platform.database)
            time.sleep(0.3)
        time.sleep(LOAD_AFTER_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert cut > 0, "no connection was cut: the test proved nothing"
        _check(platform, server, load)
        # a request whose connection was cut is told so (503, retry with the key), never a 500
        failed = [
            (c.kind, s, b)
            for c in load.calls
            for s, b in c.answers
            if s >= 500
            and not (
                s == 503
                and isinstance(b, dict)
                and b.get("type") in {"/problems/database-unavailable", "/problems/database-busy"}
            )
        ]
        assert not failed, failed[:3]
    finally:
        stop.set()
        server.stop()


def test_a_payment_and_a_new_order_on_one_listing_do_not_deadlock(platform: Platform) -> None:
    """Found by the SIGKILL test's load (500s with DeadlockDetected): an order locks its listing
    and then the audit head; a payment took the audit head and then locked the listing. Here one
    transaction holds the listing and takes the head a second after a payment started."""
    from market.models import Provider
    from market.service import listings, orders, payments
    from registry.service.actors import Actor
    from tanhui import audit

    settings = platform.settings
    use_settings(settings)
    engine = tanhui_engine(settings)
    listing_id = uuid.UUID(platform.scenario.listing_id)
    with unit_of_work(engine) as session:
        buyer_org = identity.create_organisation(
            session, name=f"Deadlock buyer {uuid.uuid4().hex[:6]}", kind=OrgKind.enterprise
        )
        buyer = Actor(
            ref="system:test",
            organisation_id=buyer_org.id,
            org_kind=OrgKind.enterprise,
            role=Role.owner,
        )
        line = orders.LineRequest(listing_id=listing_id, quantity_t=1)
        placed = orders.create_order(session, actor=buyer, lines=[line], provider=Provider.sandbox)
        payment_id = payments.start_checkout(session, actor=buyer, order_id=placed.id).id
    holding, errors = threading.Event(), []

    def order_side() -> None:
        try:
            with unit_of_work(engine) as session:
                listings.lock_listings(session, [listing_id])
                holding.set()
                time.sleep(1.5)  # the payment is now waiting for us, holding what it holds
                audit.record(
                    session,
                    actor="system:test",
                    action="test.locked",
                    subject_type="listing",
                    subject_id=listing_id,
                )
        except Exception as error:  # a deadlock is reported, not raised in the thread
            errors.append(f"order side: {error}")

    def payment_side() -> None:
        holding.wait(timeout=30)
        try:
            with unit_of_work(engine) as session:
                payments.sandbox_complete(session, actor=buyer, payment_id=payment_id)
        except Exception as error:
            errors.append(f"payment side: {error}")

    threads = [threading.Thread(target=order_side), threading.Thread(target=payment_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert not errors, errors
