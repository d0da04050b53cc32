"""Every mutating request of the market API accepts an ``Idempotency-Key`` (the Stripe webhook
is idempotent by its event id instead), and a retried delisting or cancellation with the same key
gets the first answer instead of a conflict."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from tanhui.models import Organisation
from tests import factories
from tests.market import helpers

PREFIX = "/api/v1/market"
BY_EVENT_ID = {f"{PREFIX}/webhooks/stripe"}


def test_every_mutating_market_route_declares_the_header(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    missing, seen = [], 0
    for path, operations in spec["paths"].items():
        if not path.startswith(PREFIX) or path in BY_EVENT_ID:
            continue
        for method, operation in operations.items():
            if method not in {"post", "put", "patch", "delete"}:
                continue
            seen += 1
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "Idempotency-Key" not in headers:
                missing.append(f"{method.upper()} {path}")
    assert seen >= 15
    assert missing == []


def test_a_retried_delist_and_cancel_get_the_first_answer(
    session: Session, world: helpers.World, client: TestClient
) -> None:
    item = helpers.listing(session, world, quantity_t=50)
    placed = helpers.order(session, world.enterprise, item, 5)
    coop = factories.user(session, org=session.get(Organisation, world.coop.organisation_id))
    buyer = factories.user(session, org=session.get(Organisation, world.enterprise.organisation_id))
    coop_token = factories.token_for(session, coop)
    buyer_token = factories.token_for(session, buyer)
    session.commit()
    for path, token in [
        (f"{PREFIX}/orders/{placed.id}/cancel", buyer_token),
        (f"{PREFIX}/listings/{item.id}/delist", coop_token),
    ]:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"retry-{path}"}
        first = client.post(path, headers=headers)
        assert first.status_code == 200, first.text
        again = client.post(path, headers=headers)
        assert again.status_code == first.status_code and again.json() == first.json()
        fresh = client.post(path, headers={"Authorization": f"Bearer {token}"})
        assert fresh.status_code == 409, fresh.text  # without the key it is a new request
