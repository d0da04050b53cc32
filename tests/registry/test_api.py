"""The registry's HTTP API end to end: households, parcels, contracts, prices, settlements, a
verifier with its own key, issuance, transfers, idempotent retirements, pledges, reversals; and
the CLI commands operators script."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import PriceRule
from registry.service import contracts
from tanhui.crypto import SigningKey
from tanhui.settings import Settings
from tests.factories import run_cli
from tests.registry import helpers
from tests.registry.conftest import People

API = "/api/v1/registry"


def _ok(answer: object, status: int = 200) -> dict:  # type: ignore[type-arg]
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    return answer.json()  # type: ignore[attr-defined,no-any-return]


def test_from_households_to_retirement_over_http(
    client: TestClient, session: Session, people: People
) -> None:
    coop, verifier, authority, buyer = (
        people.coop.headers,
        people.verifier.headers,
        people.authority.headers,
        people.enterprise.headers,
    )
    members = [
        _ok(
            client.post(
                f"{API}/households",
                headers=coop,
                json={
                    "name": f"农户{i}",
                    "village": "大里村",
                    "national_id": helpers.national_id(500 + i),
                    "phone": "13800001111",
                    "bank_account": "6222000011112222",
                },
            ),
            201,
        )
        for i in range(2)
    ]
    assert "national_id" not in members[0] and members[0]["bank_account_last4"] == "2222"
    listed = _ok(client.get(f"{API}/households", headers=people.coop_viewer.headers))
    assert len(listed) == 2
    assert client.get(f"{API}/households", headers=people.other_coop.headers).json() == []
    assert (
        client.get(
            f"{API}/households/{members[0]['id']}", headers=people.other_coop.headers
        ).status_code
        == 404
    )
    assert (
        client.post(f"{API}/households/{members[0]['id']}/personal-data", headers=coop).status_code
        == 403
    )  # members may not unseal; owners may
    parcel = _ok(
        client.post(
            f"{API}/parcels",
            headers=coop,
            json={
                "code": "DL-001",
                "geometry": helpers.square(-30_000, -10_000, 300),
                "land_type": "bamboo",
                "village": "大里村",
                "forest_right_cert": "LQ-9",
                "registered_area_mu": "135.00",
                "holdings": [
                    {"household_id": members[0]["id"], "share_bp": 7000},
                    {"household_id": members[1]["id"], "share_bp": 3000},
                ],
            },
        ),
        201,
    )
    assert parcel["area_mu"] == "135.0000" and abs(parcel["area_m2"] - 90_000) <= 2
    contract = _ok(
        client.post(
            f"{API}/contracts",
            headers=coop,
            json={
                "code": "C-1",
                "counterparty": "大里村股份经济合作社",
                "start_date": "2021-12-28",
                "term_years": 30,
                "rate_g_per_mu_year": 390000,
                "settlement_period_years": 3,
                "household_share_bp": 8000,
                "parcel_ids": [parcel["id"]],
            },
        ),
        201,
    )
    assert (contract["area_mu"], contract["household_count"]) == ("135", 2)
    assert contract["end_date"] == "2051-12-28" and contract["rate_t_per_mu_year"] == "0.39"
    days = [date(2021, 11, 28) + timedelta(days=n) for n in range(30)]
    prices = "date,close\n" + "\n".join(f"{d.isoformat()},43.40" for d in days)
    assert (
        client.post(
            f"{API}/ets-prices", headers=coop, files={"file": ("p.csv", prices.encode())}
        ).status_code
        == 403
    )
    _ok(
        client.post(
            f"{API}/ets-prices", headers=authority, files={"file": ("p.csv", prices.encode())}
        )
    )
    average = _ok(client.get(f"{API}/ets-prices/average?before=2021-12-28", headers=coop))
    assert average["price_fen_per_t"] == 4340
    refused = client.post(
        f"{API}/contracts/{contract['id']}/settlements", headers=coop, json={"sequence": 1}
    )
    assert refused.status_code == 409  # the cooperative has no cash yet
    assert refused.json()["type"].endswith("insufficient-funds")

    project = _ok(
        client.post(
            f"{API}/projects",
            headers=coop,
            json={
                "code": "DL0001",
                "name": "大里村竹林碳汇",
                "type": "bamboo",
                "methodology_name": "bamboo-rate",
                "methodology_version": "1.0",
                "crediting_start": "2022-01-01",
                "crediting_end": "2051-12-31",
            },
        ),
        201,
    )
    _ok(
        client.post(
            f"{API}/projects/{project['id']}/parcels",
            headers=coop,
            json={"parcel_ids": [parcel["id"]]},
        )
    )
    assert (
        _ok(client.post(f"{API}/projects/{project['id']}/collect", headers=coop))["status"]
        == "collected"
    )
    # the period comes from an MRV run of the platform over the registered parcel (an uploaded
    # report is evidence only: tests/registry/test_measured_issuance.py)
    measured = helpers.measured_period(
        session, people.coop.actor, uuid.UUID(project["id"]), helpers.report(100, 20)
    )
    session.commit()
    period = _ok(client.get(f"{API}/periods/{measured.id}", headers=verifier))
    stored = client.get(f"{API}/periods/{period['id']}/report", headers=verifier)
    assert hashlib.sha256(stored.content).hexdigest() == period["report_sha256"]

    # the verifier registers its own key: the platform no longer signs for it
    own = SigningKey.generate()
    owner = helpers.colleague(people.verifier.actor, helpers.Role.owner)
    assert owner.organisation_id is not None
    from registry.service import keys as key_service

    key_service.register_public_key(
        session,
        actor=owner,
        organisation_id=owner.organisation_id,
        public_key=base64.b64encode(own.public_raw).decode(),
    )
    session.commit()
    unsigned = client.post(f"{API}/periods/{period['id']}/certify", headers=verifier, json={})
    assert unsigned.status_code == 422
    forged = SigningKey.generate().sign(period["certification_message"].encode())
    assert (
        client.post(
            f"{API}/periods/{period['id']}/certify", headers=verifier, json={"signature": forged}
        ).status_code
        == 422
    )
    signature = own.sign(period["certification_message"].encode())
    certified = _ok(
        client.post(
            f"{API}/periods/{period['id']}/certify", headers=verifier, json={"signature": signature}
        )
    )
    assert certified["signature_valid"] and certified["certification_key_id"] == own.key_id
    _ok(client.post(f"{API}/periods/{period['id']}/file", headers=authority))
    too_many = client.post(
        f"{API}/periods/{period['id']}/issue", headers=authority, json={"quantity_t": 101}
    )
    assert too_many.status_code == 409
    batch = _ok(client.post(f"{API}/periods/{period['id']}/issue", headers=authority, json={}), 201)
    assert batch["serial_prefix"] == "THC-BAM-DL0001-2024-001"
    assert batch["serial_last"] == "THC-BAM-DL0001-2024-001-000120-000120"

    buyer_org = people.enterprise.user.organisation_id
    moved = _ok(
        client.post(
            f"{API}/transfers",
            headers=coop,
            json={"batch_id": batch["id"], "to_organisation_id": str(buyer_org), "quantity_t": 40},
        ),
        201,
    )
    assert moved["serial_blocks"] == [
        ["THC-BAM-DL0001-2024-001-000061-000061", "THC-BAM-DL0001-2024-001-000100-000100"]
    ]
    body = {
        "batch_id": batch["id"],
        "quantity_t": 15,
        "beneficiary": "湖州绿能",
        "purpose": "event_neutrality",
    }
    key = {"Idempotency-Key": "retire-2025-expo"}
    first = _ok(client.post(f"{API}/retirements", headers={**buyer, **key}, json=body), 201)
    again = _ok(client.post(f"{API}/retirements", headers={**buyer, **key}, json=body), 201)
    assert again == first
    other = client.post(
        f"{API}/retirements", headers={**buyer, **key}, json={**body, "quantity_t": 16}
    )
    assert other.status_code == 409
    holdings = _ok(client.get(f"{API}/holdings", headers=buyer))
    assert {(h["state"], h["quantity_t"]) for h in holdings} == {("held", 25), ("retired", 15)}
    assert len(_ok(client.get(f"{API}/retirements", headers=buyer))) == 1
    document = _ok(client.get(f"{API}/certificates/{first['certificate_id']}", headers=buyer))
    assert document["payload"]["quantity_t"] == 15
    pdf = client.get(f"{API}/certificates/{first['certificate_id']}/pdf", headers=buyer)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    pledge = _ok(
        client.post(
            f"{API}/pledges",
            headers=coop,
            json={
                "lender_id": str(buyer_org),
                "batch_id": batch["id"],
                "quantity_t": 60,
                "loan_amount_fen": 37_190_000,
                "interest_rate_bp": 385,
                "matures_on": (contracts.today() + timedelta(days=365)).isoformat(),
            },
        ),
        201,
    )
    assert pledge["status"] == "proposed"
    accepted = _ok(client.post(f"{API}/pledges/{pledge['id']}/accept", headers=buyer))
    assert accepted["status"] == "active" and accepted["interest_rate_bp"] == 385
    assert (
        client.post(
            f"{API}/transfers",
            headers=coop,
            json={"batch_id": batch["id"], "to_organisation_id": str(buyer_org), "quantity_t": 1},
        ).status_code
        == 409
    )
    assert client.post(f"{API}/pledges/{pledge['id']}/release", headers=coop).status_code == 409
    assert (
        _ok(client.post(f"{API}/pledges/{pledge['id']}/release", headers=buyer))["status"]
        == "released"
    )

    reversal = _ok(
        client.post(
            f"{API}/projects/{project['id']}/reversals",
            headers=coop,
            json={
                "parcel_ids": [parcel["id"]],
                "cause": "pest",
                "occurred_on": "2025-05-01",
                "estimated_loss_t": 25,
            },
        ),
        201,
    )
    assert reversal["status"] == "proposed" and reversal["cancelled_own_buffer_t"] == 0
    reversal = _ok(client.post(f"{API}/reversals/{reversal['id']}/confirm", headers=authority))
    assert (reversal["cancelled_own_buffer_t"], reversal["shortfall_t"]) == (20, 5)
    assert reversal["project_buffer_exceeded"] is True
    assert reversal["project_reversal_debt_t"] == 5


def test_cli_import_and_settle(settings: Settings, session: Session, tmp_path: Path) -> None:
    coop = helpers.actor(session, helpers.OrgKind.cooperative)
    assert coop.organisation_id is not None
    from tanhui.models import Organisation

    name = session.get(Organisation, coop.organisation_id).name  # type: ignore[union-attr]
    member = helpers.household(session, coop)
    session.commit()
    features = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"NO": f"Q{i}", "MU": "100"},
                "geometry": helpers.square(-25_000 + i * 500, -15_000, 260),
            }
            for i in range(3)
        ]
        + [
            {
                "type": "Feature",
                "properties": {"NO": "Q9", "MU": "x"},
                "geometry": helpers.square(-20_000, -15_000, 100),
            }
        ],
    }
    (tmp_path / "p.geojson").write_text(json.dumps(features), "utf-8")
    mapping = json.dumps({"code": "NO", "registered_area_mu": "MU", "default_land_type": "bamboo"})
    result = run_cli(
        settings,
        "registry",
        "import-parcels",
        str(tmp_path / "p.geojson"),
        "--org",
        name,
        "--mapping",
        mapping,
    )
    assert result.returncode == 0, result.stderr
    assert "imported 3 of 4 rows" in result.stdout and "row 4 (Q9)" in result.stdout
    from registry.service import parcels as parcel_service

    imported = parcel_service.list_parcels(session, actor=coop, cooperative_id=coop.organisation_id)
    for plot in imported:
        parcel_service.set_holdings(
            session, actor=coop, parcel_id=plot.id, holdings=[(member.id, 10_000)]
        )
    helpers.contract(
        session,
        coop,
        imported,
        start_date=date(2022, 3, 1),
        price_rule=PriceRule.fixed,
        fixed_price_fen_per_t=5_000,
    )
    from wallet import service as wallet

    cash = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=f"org:{coop.organisation_id}")
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    wallet.post_entry(
        session, code="adjustment", transfers=[wallet.Transfer(clearing.id, cash.id, 10_000_000)]
    )
    session.commit()
    settled = run_cli(settings, "registry", "settle-contracts", "--date", "2025-03-01")
    assert settled.returncode == 0, settled.stderr
    # two periods begun (2022-03-01, 2025-03-01): 300 mu × 0.39 × 50 CNY × 3 = 17,550.00 each
    assert settled.stdout.count("→ 17,550.00 CNY") == 2 and "settled 2 periods" in settled.stdout
    again = run_cli(settings, "registry", "settle-contracts", "--date", "2025-03-01")
    assert again.returncode == 0 and "settled 0 periods" in again.stdout
    bad = run_cli(settings, "registry", "settle-contracts", "--date", "tomorrow")
    assert bad.returncode == 2
