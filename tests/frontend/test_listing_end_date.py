"""A listing's optional end date through the cooperative's page: chosen as a last day (Asia/
Shanghai), refused next to the field when malformed or past, shown on the listing's page and the
cooperative's table, and an ended listing reads as ended; districts are named in the reader's
language."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from market.models import Listing
from market.service import listings
from tanhui.models import Organisation, OrgKind, Role, User
from tests import factories
from tests.market import helpers

HTML = {"Accept": "text/html"}


def _coop_user(session: Session, world: helpers.World) -> User:
    assert world.coop.organisation_id is not None
    org = session.get(Organisation, world.coop.organisation_id)
    return factories.user(session, kind=OrgKind.cooperative, role=Role.member, org=org)


def _list(client: TestClient, csrf: str, world: helpers.World, ends_on: str) -> object:
    return client.post(
        "/market/sales/listings",
        data={
            "csrf_token": csrf,
            "batch_id": str(world.batch.id),
            "quantity_t": "40",
            "price": "61.50",
            "ends_on": ends_on,
        },
        headers=HTML,
        follow_redirects=False,
    )


def test_a_cooperative_lists_until_a_last_day(session: Session, client: TestClient) -> None:
    world = helpers.issued_world(session)
    user = _coop_user(session, world)
    session.commit()
    csrf = factories.login(client, user.email)
    page = client.get("/market/sales", headers=HTML)
    assert '<label for="l-ends">' in page.text and 'name="ends_on"' in page.text

    for bad in ["31/12/2030", "2020-01-01"]:
        refused = _list(client, csrf, world, bad)
        assert refused.status_code == 422, bad  # type: ignore[attr-defined]
        text = refused.text  # type: ignore[attr-defined]
        assert 'id="l-ends"' in text and 'aria-describedby="l-ends-error"' in text, bad
        assert re.search(r'<p class="error" id="l-ends-error">[^<]+</p>', text), bad

    made = _list(client, csrf, world, "2030-12-31")
    assert made.status_code == 303  # type: ignore[attr-defined]
    session.expire_all()
    (item,) = listings.listings_of_seller(session, world.coop.organisation_id)  # type: ignore[arg-type]
    # the sale ends at midnight after 31 December in Huzhou: 16:00 UTC that day
    assert item.ends_at == datetime(2030, 12, 31, 16, 0, tzinfo=UTC)
    listing_id = item.id
    session.rollback()
    table = client.get("/market/sales", headers=HTML).text
    assert "2030-12-31" in table
    shown = client.get(f"/market/listings/{listing_id}", headers=HTML).text
    assert "销售截止日" in shown and "<dd>2030-12-31</dd>" in shown


def test_an_ended_listing_reads_as_ended_and_districts_follow_the_language(
    session: Session, client: TestClient
) -> None:
    world = helpers.issued_world(session)
    item = helpers.listing(session, world, quantity_t=10)
    session.commit()
    listing_id = item.id
    assert item.district_adcode is not None
    client.cookies.set("tanhui_lang", "en")
    browse = client.get("/market", headers=HTML).text
    assert f'href="/market/listings/{listing_id}"' in browse
    row = browse.split(f'href="/market/listings/{listing_id}"')[1].split("</tr>")[0]
    assert not re.search(r"[\u4e00-\u9fff]", row.split("<td>", 2)[2]), row  # district in English
    # the end date passes (before any sweep has run)
    stored = session.get(Listing, listing_id)
    assert stored is not None
    stored.ends_at = datetime.now(UTC) - timedelta(minutes=1)
    session.add(stored)
    session.commit()
    page = client.get(f"/market/listings/{listing_id}", headers=HTML).text
    assert "Ended" in page and "Add to cart" not in page
    assert f'href="/market/listings/{listing_id}"' not in client.get("/market", headers=HTML).text
    api = client.get(f"/api/v1/market/listings/{uuid.UUID(str(listing_id))}")
    assert api.json()["status"] == "ended" and api.json()["open_t"] == 0
