"""Hostile sign-in (issue 16): limits that hold under 40 parallel attempts on PostgreSQL, and
identifiers that count as one whatever digits they are typed with.

The parallel tests send real HTTP requests through one TestClient from 40 threads released at
once by a barrier; the app serves them concurrently (its sync routes run in a thread pool, each
request with its own database session and connection).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from tanhui import sms, throttle
from tanhui.app import create_app
from tanhui.db import utcnow
from tanhui.models import OneTimeCode, Resident, Throttle
from tanhui.settings import Settings
from tests import factories
from tests.factories import PASSWORD, run_cli

PARALLEL = 40
WRONG = "not the password 1"


@pytest.fixture
def pg_client(pg_settings: Settings) -> Iterator[TestClient]:
    application = create_app(pg_settings)
    with TestClient(application, base_url="http://testserver") as client:
        yield client
    application.state.engine.dispose()


def in_parallel(calls: list[Callable[[], int]]) -> Counter[int]:
    """Run every call at the same moment (a barrier releases them together); their statuses."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], int]) -> int:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return Counter(pool.map(run, calls))


def password_attempt(client: TestClient, email: str, password: str) -> Callable[[], int]:
    def call() -> int:
        response = client.post(
            "/api/v1/auth/session",
            json={"email": email, "password": password},
        )
        return response.status_code

    return call


def code_for(phone: str) -> str:
    found = re.search(r"(\d{6})", sms.last_message_to(phone) or "")
    assert found is not None, f"no code was sent to {phone}"
    return found.group(1)


# --- password sign-in ------------------------------------------------------------------------


@pytest.mark.postgres
def test_forty_parallel_wrong_passwords_for_one_account_fail_exactly_the_limit(
    pg_client: TestClient, pg_settings: Settings, pg_engine: object
) -> None:
    with Session(pg_engine) as session:  # type: ignore[call-overload]
        user = factories.user(session)
        session.commit()
        email = user.email
    limit = pg_settings.login_max_failures_per_account
    statuses = in_parallel([password_attempt(pg_client, email, WRONG)] * PARALLEL)
    assert statuses == Counter({401: limit, 429: PARALLEL - limit})
    # and the right password, now, is refused too
    assert (
        pg_client.post(
            "/api/v1/auth/session", json={"email": email, "password": PASSWORD}
        ).status_code
        == 429
    )


@pytest.mark.postgres
def test_the_right_password_among_forty_parallel_guesses_gets_in_only_within_the_limit(
    pg_client: TestClient, pg_settings: Settings, pg_engine: object
) -> None:
    with Session(pg_engine) as session:  # type: ignore[call-overload]
        email = factories.user(session).email
        session.commit()
    limit = pg_settings.login_max_failures_per_account
    calls = [password_attempt(pg_client, email, WRONG)] * (PARALLEL - 1)
    calls.insert(PARALLEL // 2, password_attempt(pg_client, email, PASSWORD))
    statuses = in_parallel(calls)
    # whatever the order, exactly `limit` guesses were judged wrong; the right one was judged
    # only if it came before the lock-out
    assert statuses[401] == limit
    assert statuses[200] <= 1
    assert statuses[429] == PARALLEL - limit - statuses[200]


@pytest.mark.postgres
def test_forty_parallel_attempts_on_many_accounts_from_one_address_stop_at_its_limit(
    pg_client: TestClient, pg_settings: Settings
) -> None:
    limit = pg_settings.login_max_failures_per_ip
    statuses = in_parallel(
        [password_attempt(pg_client, f"nobody{n}@example.cn", WRONG) for n in range(PARALLEL)]
    )
    assert statuses == Counter({401: limit, 429: PARALLEL - limit})


def test_an_account_typed_in_full_width_letters_shares_its_limit(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session)
    session.commit()
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in user.email)
    for _ in range(settings.login_max_failures_per_account):
        assert (
            client.post("/api/v1/auth/session", json={"email": wide, "password": WRONG}).status_code
            == 401
        )
    locked = client.post("/api/v1/auth/session", json={"email": user.email, "password": PASSWORD})
    assert locked.status_code == 429


# --- sign-in codes ---------------------------------------------------------------------------


def code_request(client: TestClient, phone: str) -> Callable[[], int]:
    def call() -> int:
        return client.post("/api/v1/auth/residents/code", json={"phone": phone}).status_code

    return call


@pytest.mark.postgres
def test_twenty_parallel_code_requests_for_one_phone_send_one_sms(
    pg_client: TestClient, pg_engine: object
) -> None:
    phone = "+8613957208801"
    before = len(sms.messages_to(phone))
    statuses = in_parallel([code_request(pg_client, "13957208801")] * 20)
    assert statuses == Counter({202: 1, 429: 19})
    assert len(sms.messages_to(phone)) == before + 1
    with Session(pg_engine) as session:  # type: ignore[call-overload]
        assert len(session.exec(select(OneTimeCode)).all()) == 1


@pytest.mark.postgres
def test_forty_parallel_code_requests_from_one_address_send_exactly_its_limit(
    pg_client: TestClient, pg_settings: Settings
) -> None:
    limit = pg_settings.otp_max_sends_per_address
    statuses = in_parallel([code_request(pg_client, f"139572{n:05d}") for n in range(PARALLEL)])
    assert statuses == Counter({202: limit, 429: PARALLEL - limit})


@pytest.mark.postgres
def test_forty_parallel_wrong_codes_use_up_the_code_and_the_addresss_limit(
    pg_client: TestClient, pg_engine: object, pg_settings: Settings
) -> None:
    phone = "13957208802"
    assert code_request(pg_client, phone)() == 202
    code = code_for("+86" + phone)
    wrong = "000000" if code != "000000" else "111111"

    def attempt() -> int:
        return pg_client.post(
            "/api/v1/auth/residents/session", json={"phone": phone, "code": wrong}
        ).status_code

    limit = pg_settings.otp_max_failures_per_address
    assert in_parallel([attempt] * PARALLEL) == Counter({401: limit, 429: PARALLEL - limit})
    with Session(pg_engine) as session:  # type: ignore[call-overload]
        (stored,) = session.exec(select(OneTimeCode)).all()
        assert stored.attempts == 5 and stored.consumed_at is None
    late = pg_client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": code})
    assert late.status_code == 429


def test_wrong_codes_for_many_phones_from_one_address_are_limited(
    client: TestClient, settings: Settings
) -> None:
    for n in range(settings.otp_max_failures_per_address):
        answer = client.post(
            "/api/v1/auth/residents/session",
            json={"phone": f"139572{n:05d}", "code": "123456"},
        )
        assert answer.status_code == 401
    locked = client.post(
        "/api/v1/auth/residents/session", json={"phone": "13957299999", "code": "123456"}
    )
    assert locked.status_code == 429
    assert locked.json()["type"].endswith("/rate-limited")


@pytest.mark.parametrize(
    ("normalised", "typed"),
    [
        ("+8613957208803", "１３９５７２０８８０３"),  # full-width digits
        ("+8613957208803", "＋８６ １３９ ５７２０ ８８０３"),  # full-width plus, digits, spaces
        ("+8613957208803", "+86 ١٣٩٥٧٢٠٨٨٠٣"),  # Arabic-Indic digits
        # an international number in full-width digits used to pass as another resident
        ("+447911123456", "+4４７９１１１２３４５６"),
    ],
)
def test_a_phone_typed_with_other_digits_is_the_same_resident(
    client: TestClient, session: Session, normalised: str, typed: str
) -> None:
    assert code_request(client, normalised)() == 202
    # the same phone in other digits is under the same one-a-minute limit
    again = client.post("/api/v1/auth/residents/code", json={"phone": typed})
    assert again.status_code == 429
    assert again.json()["type"].endswith("/rate-limited")
    # and signs in as the same resident
    code = code_for(normalised)
    signed_in = client.post("/api/v1/auth/residents/session", json={"phone": typed, "code": code})
    assert signed_in.status_code == 200
    residents = session.exec(select(Resident)).all()
    assert [str(resident.id) for resident in residents] == [signed_in.json()["id"]]
    consumed = session.exec(select(OneTimeCode).where(col(OneTimeCode.consumed_at).is_not(None)))
    assert len(consumed.all()) == 1


def test_lapsed_counters_are_pruned_from_the_cli(session: Session, settings: Settings) -> None:
    old = throttle.Limit("test.old", 1, timedelta(minutes=1))
    fresh = throttle.Limit("test.fresh", 1, timedelta(minutes=1))
    throttle.count(session, *throttle.hold(session, (old, "a"), (fresh, "b")))
    session.execute(
        update(Throttle)
        .where(col(Throttle.scope) == "test.old")
        .values(window_started_at=utcnow() - timedelta(days=2))
    )
    session.commit()
    result = run_cli(settings, "db", "prune-limits")
    assert result.returncode == 0, result.stderr
    assert "1 rate-limit counters deleted" in result.stdout
    assert [row.scope for row in session.exec(select(Throttle)).all()] == ["test.fresh"]
