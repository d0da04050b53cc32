"""Citizen cards (issue 16): linked only on the card issuer's signed attestation, answers that
say nothing about other residents' cards, attempts limited (also under 40 parallel requests)."""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from registry.inclusion.service import partners
from tanhui import identity, sms
from tanhui.app import create_app
from tanhui.db import utcnow
from tanhui.models import AuditRecord, Resident
from tanhui.settings import Settings
from tests.inclusion import helpers

CARD = "HZ330500778899"
URL = "/api/v1/points/me/citizen-card"


def sign_in(client: TestClient, phone: str) -> dict[str, str]:
    """Sign ``phone`` in through the API; the CSRF header for its writes."""
    assert client.post("/api/v1/auth/residents/code", json={"phone": phone}).status_code == 202
    code = re.search(r"(\d{6})", sms.last_message_to("+86" + phone) or "")
    assert code is not None
    done = client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": code[1]})
    assert done.status_code == 200
    return {"X-CSRF-Token": done.json()["csrf_token"]}


def link(client: TestClient, headers: dict[str, str], *, issuer: object, attestation: str) -> Any:
    return client.put(
        URL,
        json={"number": "hz 3305 0077 8899", "issuer": str(issuer), "attestation": attestation},
        headers=headers,
    )


def linked(session: Session, phone: str) -> bool:
    """Whether the resident with ``phone`` holds a card now (read afresh)."""
    session.expire_all()
    holders = session.exec(
        select(Resident).where(col(Resident.citizen_card_index).is_not(None))
    ).all()
    found = any(identity.resident_phone(holder) == "+86" + phone for holder in holders)
    session.rollback()  # on SQLite, leave the write lock to the app
    return found


@pytest.fixture
def issuer(session: Session) -> tuple[uuid.UUID, str]:
    found = helpers.card_issuer(session)
    session.commit()
    return found


def test_a_card_is_linked_only_with_its_issuers_proof(
    client: TestClient, session: Session, issuer: tuple[uuid.UUID, str]
) -> None:
    issuer_id, secret = issuer
    phone = "13957301001"
    headers = sign_in(client, phone)
    refused = link(client, headers, issuer=issuer_id, attestation="t=1,v1=00")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/points/citizen-card-not-proven")
    assert not linked(session, phone)
    proof = helpers.card_attestation(secret, CARD, "+86" + phone)
    done = link(client, headers, issuer=issuer_id, attestation=proof)
    assert done.status_code == 200 and done.json()["citizen_card_linked"] is True
    assert linked(session, phone)


@pytest.mark.parametrize(
    "case", ["another phone", "expired", "not an issuer", "suspended issuer", "unknown issuer"]
)
def test_proofs_that_do_not_hold_are_refused_alike(
    client: TestClient, session: Session, issuer: tuple[uuid.UUID, str], case: str
) -> None:
    issuer_id, secret = issuer
    phone = "13957301002"
    headers = sign_in(client, phone)
    proof = helpers.card_attestation(secret, CARD, "+86" + phone)
    if case == "another phone":
        proof = helpers.card_attestation(secret, CARD, "+8613957309999")
    elif case == "expired":
        proof = helpers.card_attestation(
            secret, CARD, "+86" + phone, at=utcnow() - timedelta(minutes=20)
        )
    elif case == "not an issuer":
        issuer_id, secret = helpers.partner(session, ["bus"])
        session.commit()
        proof = helpers.card_attestation(secret, CARD, "+86" + phone)
    elif case == "suspended issuer":
        partners.update_partner(
            session, partners.get_partner(session, issuer_id), active=False, actor="test"
        )
        session.commit()
    elif case == "unknown issuer":
        issuer_id = uuid.uuid4()
    refused = link(client, headers, issuer=issuer_id, attestation=proof)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/points/citizen-card-not-proven")
    assert not linked(session, phone)


def test_the_answer_does_not_tell_whether_another_resident_holds_the_card(
    client: TestClient, session: Session, issuer: tuple[uuid.UUID, str]
) -> None:
    issuer_id, secret = issuer
    owner, prober = "13957301003", "13957301004"
    owner_headers = sign_in(client, owner)
    proof = helpers.card_attestation(secret, CARD, "+86" + owner)
    assert link(client, owner_headers, issuer=issuer_id, attestation=proof).status_code == 200
    client.cookies.clear()
    prober_headers = sign_in(client, prober)
    forged = helpers.card_attestation("not the issuer's secret", CARD, "+86" + prober)
    taken = link(client, prober_headers, issuer=issuer_id, attestation=forged)
    free = client.put(
        URL,
        json={"number": "HZ330500000001", "issuer": str(issuer_id), "attestation": forged},
        headers=prober_headers,
    )
    assert taken.status_code == free.status_code == 422
    assert taken.json() == free.json()
    assert linked(session, owner) and not linked(session, prober)
    # the issuer saying the card is now the prober's (a new holder) moves it, audited
    moved = link(
        client,
        prober_headers,
        issuer=issuer_id,
        attestation=helpers.card_attestation(secret, CARD, "+86" + prober),
    )
    assert moved.status_code == 200
    assert linked(session, prober) and not linked(session, owner)
    actions = session.exec(select(AuditRecord.action)).all()
    assert actions.count("points.citizen_card.unlinked") == 1


def test_link_attempts_are_limited_per_resident(
    client: TestClient, session: Session, issuer: tuple[uuid.UUID, str]
) -> None:
    issuer_id, secret = issuer
    phone = "13957301005"
    headers = sign_in(client, phone)
    for _ in range(5):
        assert link(client, headers, issuer=issuer_id, attestation="t=1,v1=00").status_code == 422
    proof = helpers.card_attestation(secret, CARD, "+86" + phone)
    locked = link(client, headers, issuer=issuer_id, attestation=proof)
    assert locked.status_code == 429
    assert locked.json()["type"].endswith("/points/citizen-card-too-many-attempts")
    assert not linked(session, phone)


def test_the_card_page_links_on_the_proof_the_issuers_app_brings(
    client: TestClient, session: Session, issuer: tuple[uuid.UUID, str]
) -> None:
    issuer_id, secret = issuer
    phone = "13957301006"
    sign_in(client, phone)
    empty = client.get("/app/card")
    assert empty.status_code == 200 and 'name="attestation"' not in empty.text
    proof = helpers.card_attestation(secret, CARD, "+86" + phone)
    page = client.get(
        "/app/card", params={"number": CARD, "issuer": str(issuer_id), "attestation": proof}
    )
    assert page.status_code == 200 and 'name="attestation"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf_token": csrf[1], "number": CARD, "issuer": str(issuer_id)}
    refused = client.post("/app/card", data={**form, "attestation": "t=1,v1=00"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    done = client.post("/app/card", data={**form, "attestation": proof})
    assert done.status_code == 200 and "HZ**********99" in done.text


# --- 40 parallel attempts on PostgreSQL ------------------------------------------------------


@pytest.fixture
def pg_client(pg_settings: Settings) -> Iterator[TestClient]:
    application = create_app(pg_settings)
    with TestClient(application, base_url="http://testserver") as client:
        yield client
    application.state.engine.dispose()


@pytest.mark.postgres
def test_forty_parallel_link_attempts_count_exactly_the_limit(
    pg_client: TestClient, pg_engine: object
) -> None:
    with Session(pg_engine) as session:  # type: ignore[call-overload]
        issuer_id, _secret = helpers.card_issuer(session)
        session.commit()
    headers = sign_in(pg_client, "13957301007")
    barrier = threading.Barrier(40)

    def attempt(_: int) -> int:
        barrier.wait()
        return int(link(pg_client, headers, issuer=issuer_id, attestation="t=1,v1=00").status_code)

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = Counter(pool.map(attempt, range(40)))
    assert statuses == Counter({422: 5, 429: 35})
