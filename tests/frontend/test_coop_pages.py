"""The cooperative portal through its HTML forms: households, parcels, contracts, projects, MRV
runs in the background, settlements and statements, pledges."""

from __future__ import annotations

import io
import re
import time
import zipfile
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from frontend import samples
from registry.models import PriceRule, ProjectStatus
from registry.service import contracts, issuance, pledges, projects
from tanhui.models import OrgKind
from tests import factories
from tests.frontend.conftest import HTML, Faces, as_
from tests.registry import helpers
from wallet import service as wallet

EN = {"Accept": "text/html", "Accept-Language": "en"}


def _wait_for_job(client: TestClient, job_url: str, timeout_s: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"{job_url}/status").json()
        if status["state"] in {"done", "failed"}:
            return dict(status)
        assert time.monotonic() < deadline, f"the MRV run did not finish: {status}"
        time.sleep(0.2)


def _new_project(client: TestClient, csrf: str, code: str = "SP0001") -> str:
    made = client.post(
        "/coop/projects",
        data={
            "csrf_token": csrf,
            "code": code,
            "name": "示例竹林碳汇项目",
            "type": "bamboo",
            "methodology": "bamboo-rate@1.0",
            "crediting_start": "2022-01-01",
            "crediting_end": "2051-12-31",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    return str(made.headers["location"])


def test_households_one_by_one_and_from_csv(
    client: TestClient, session: Session, faces: Faces
) -> None:
    csrf = as_(client, faces.coop)
    bad = client.post(
        "/coop/households",
        data={"csrf_token": csrf, "name": "王建国", "village": "大里村", "national_id": "1234"},
        headers=EN,
    )
    assert bad.status_code == 422
    assert 'id="f-national_id-error"' in bad.text and "must have 18 characters" in bad.text
    assert 'value="王建国"' in bad.text  # what was typed comes back
    good = client.post(
        "/coop/households",
        data={
            "csrf_token": csrf,
            "name": "赵金根",
            "village": "大里村",
            "national_id": helpers.national_id(9001),
            "bank_account": "6228480000000009001",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    file = samples.households_csv() + "坏行,示例村,123,,\n"
    report = client.post(
        "/coop/households/import",
        data={"csrf_token": csrf},
        files={"file": ("households.csv", file.encode("utf-8"), "text/csv")},
        headers=EN,
    )
    assert report.status_code == 200
    assert "7 rows read: 6 imported, 1 refused." in report.text
    assert "坏行" in report.text and "must have 18 characters" in report.text
    for name in ("赵金根", *samples.HOUSEHOLDS):
        assert name in report.text
    assert "…9001" in report.text and helpers.national_id(9001) not in report.text
    broken = client.post(
        "/coop/households/import",
        data={"csrf_token": csrf},
        files={"file": ("x.csv", b"only,a,header\n", "text/csv")},
        headers=EN,
    )
    assert broken.status_code == 422 and 'id="f-households_file-error"' in broken.text


def test_a_cooperative_takes_a_project_from_parcels_to_submission(
    client: TestClient, session: Session, faces: Faces
) -> None:
    csrf = as_(client, faces.coop)
    refused = client.post(
        "/coop/projects",
        data={
            "csrf_token": csrf,
            "code": "1x",
            "name": "x",
            "type": "bamboo",
            "methodology": "bamboo-rate@1.0",
            "crediting_start": "2022-01-01",
            "crediting_end": "2051-12-31",
        },
        headers=EN,
    )
    assert refused.status_code == 422 and 'id="f-code-error"' in refused.text
    project_url = _new_project(client, csrf)
    project_id = project_url.rsplit("/", 1)[1]
    client.post(
        "/coop/households/import",
        data={"csrf_token": csrf},
        files={"file": ("households.csv", samples.households_csv().encode(), "text/csv")},
    )

    # Parcels into the draft project: the seventh overlaps the first and is refused.
    imported = client.post(
        "/coop/parcels/import",
        data={
            "csrf_token": csrf,
            "project_id": project_id,
            "code": "code",
            "land_type": "land_type",
            "default_land_type": "bamboo",
            "village": "village",
            "forest_right_cert": "cert_no",
            "registered_area_mu": "area_mu",
            "household_national_id": "national_id",
        },
        files={
            "file": ("parcels.geojson", samples.parcels_geojson().encode(), "application/geo+json")
        },
        headers=EN,
    )
    assert imported.status_code == 200, imported.text
    assert "7 rows read, 6 parcels imported, 1 rows refused." in imported.text
    assert "overlaps parcel SAMPLE-01 of this file" in imported.text
    assert 'class="refused"' in imported.text and 'class="imported"' in imported.text

    # Contract over the six parcels, then collect.
    contract = client.post(
        "/coop/contracts/import",
        data={"csrf_token": csrf},
        files={"file": ("contracts.csv", samples.contracts_csv().encode(), "text/csv")},
        headers=EN,
    )
    assert "1 rows read: 1 imported, 0 refused." in contract.text
    collected = client.post(
        f"{project_url}/collect", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert collected.status_code == 303
    page = client.get(project_url, headers=EN)
    assert "Collected" in page.text and "Run MRV" in page.text

    # MRV on the synthetic raster, in the background.
    form = client.get(f"{project_url}/mrv", headers=EN)
    assert 'value="2022-01-01"' in form.text and 'value="2024-12-31"' in form.text
    started = client.post(
        f"{project_url}/mrv",
        data={
            "csrf_token": csrf,
            "period_start": "2022-01-01",
            "period_end": "2024-12-31",
            "layer_1": "index",
        },
        files={"raster_1": ("index.tif", samples.index_geotiff(), "image/tiff")},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    job_url = started.headers["location"]
    assert re.fullmatch(r"/coop/mrv/[0-9a-f]{32}", job_url)
    assert _wait_for_job(client, job_url)["state"] == "done"
    report = client.get(job_url, headers=EN)
    assert "Submit for verification" in report.text
    assert "bamboo-rate 1.0" in report.text and "rate_tco2e_per_ha_year" in report.text
    assert "SAMPLE-06" in report.text and 'class="map"' in report.text
    assert "90 % interval" in report.text
    submitted = client.post(f"{job_url}/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert submitted.status_code == 303 and submitted.headers["location"] == project_url
    session.expire_all()
    project = projects.find_by_code(session, "SP0001")
    assert project is not None and project.status == ProjectStatus.submitted
    period = projects.periods(session, project.id)[0]
    assert period.issuable_t > 0
    period_id, report_sha256 = period.id, period.report_sha256
    session.rollback()  # release SQLite's lock before the app writes
    listed = client.get(project_url, headers=EN)
    assert "Recent MRV runs" in listed.text and f'href="{job_url}"' in listed.text
    again = client.post(f"{job_url}/submit", data={"csrf_token": csrf}, headers=EN)
    assert again.status_code == 422  # a report is submitted once
    stored = client.get(f"/coop/periods/{period_id}", headers=EN)
    assert report_sha256 in stored.text and "Awaiting verification" in stored.text


def test_a_failed_mrv_run_says_why(client: TestClient, session: Session, faces: Faces) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    session.commit()
    csrf = as_(client, faces.coop)
    url = f"/coop/projects/{project.id}/mrv"
    missing = client.post(
        url,
        data={"csrf_token": csrf, "period_start": "2022-01-01", "period_end": "2024-12-31"},
        headers=EN,
    )
    assert missing.status_code == 422 and 'id="f-raster_1-error"' in missing.text
    backwards = client.post(
        url,
        data={"csrf_token": csrf, "period_start": "2024-01-01", "period_end": "2022-12-31"},
        headers=EN,
    )
    assert 'id="f-period_end-error"' in backwards.text
    started = client.post(
        url,
        data={
            "csrf_token": csrf,
            "period_start": "2022-01-01",
            "period_end": "2024-12-31",
            "layer_1": "index",
        },
        files={"raster_1": ("broken.tif", b"not a tiff", "image/tiff")},
        headers=EN,
        follow_redirects=False,
    )
    # refused when uploaded, by its content, next to its field (issue 18), not later in the run
    assert started.status_code == 422 and 'id="f-raster_1-error"' in started.text
    assert "The file is not a GeoTIFF" in started.text


def test_settlement_pays_households_and_shows_on_their_statement(
    client: TestClient, session: Session, faces: Faces
) -> None:
    coop = faces.coop.actor
    holder = helpers.household(session, coop, name="钱美珍")
    plot = helpers.parcel(  # 100 mu drawn (a little over), 100 mu registered
        session, coop, side=258.7, holders=[(holder, 10_000)], registered_centimu=10_000
    )
    contract = helpers.contract(
        session,
        coop,
        [plot],
        price_rule=PriceRule.fixed,
        fixed_price_fen_per_t=4_340,
        start_date=contracts.today().replace(year=contracts.today().year - 1),
    )
    session.commit()
    csrf = as_(client, faces.coop)
    page = client.get(f"/coop/contracts/{contract.id}", headers=EN)
    assert "Due for payment" in page.text and "¥5,077.80" in page.text  # 100 mu × 0.39 × 3 × 43.40
    unfunded = client.post(
        f"/coop/contracts/{contract.id}/settle",
        data={"csrf_token": csrf, "sequence": "1"},
        headers=EN,
    )
    assert unfunded.status_code >= 400 and 'role="alert"' in unfunded.text
    cash = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=f"org:{coop.organisation_id}")
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    wallet.post_entry(
        session, code="adjustment", transfers=[wallet.Transfer(clearing.id, cash.id, 1_000_000)]
    )
    session.commit()
    paid = client.post(
        f"/coop/contracts/{contract.id}/settle",
        data={"csrf_token": csrf, "sequence": "1"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    statement = client.get(f"/coop/households/{holder.id}", headers=EN)
    assert "Revenue statement of 钱美珍" in statement.text
    assert statement.text.count("¥5,077.80") >= 2  # the settlement line and the ledger posting
    assert "Collection payment" in statement.text


def test_adding_overlapping_parcels_is_refused_and_drawn(
    client: TestClient, session: Session, faces: Faces
) -> None:
    coop = faces.coop.actor
    claimed = helpers.project(session, faces.roles, status=ProjectStatus.collected, x=40_000)
    draft = helpers.project(session, faces.roles, x=45_000)
    again = helpers.parcel(session, coop, x=40_050, y=0)  # half on the claimed parcel
    session.commit()
    csrf = as_(client, faces.coop)
    response = client.post(
        f"/coop/projects/{draft.id}/parcels",
        data={"csrf_token": csrf, "parcel_id": [str(again.id)]},
        headers=EN,
    )
    assert response.status_code == 409
    assert 'id="f-parcel_id-error"' in response.text
    assert f"of project {claimed.code}" in response.text
    assert "Why the parcels were refused" in response.text
    assert 'class="refused"' in response.text and 'class="claimed"' in response.text
    none = client.post(f"/coop/projects/{draft.id}/parcels", data={"csrf_token": csrf}, headers=EN)
    assert none.status_code == 422 and "Choose at least one parcel." in none.text


TERMS = {
    "interest_rate": "3.85",
    "matures_on": (contracts.today() + timedelta(days=365)).isoformat(),
}


def test_pledges_of_credits_and_of_a_contract(
    client: TestClient, session: Session, faces: Faces
) -> None:
    batch = helpers.issued_batch(session, faces.roles, issuable=500, buffer=100)
    contract = helpers.contract(
        session, faces.coop.actor, [helpers.parcel(session, faces.coop.actor, x=70_000)]
    )
    bank = factories.organisation(session, OrgKind.enterprise, name="安吉农村商业银行（测试）")
    session.commit()
    csrf = as_(client, faces.coop)
    page = client.get("/coop/pledges", headers=EN)
    assert batch.serial_prefix in page.text and "安吉农村商业银行（测试）" in page.text
    too_many = client.post(
        "/coop/pledges/credits",
        data={
            "csrf_token": csrf,
            "batch_id": str(batch.id),
            "quantity_t": "9999",
            "lender_id": str(bank.id),
            "loan_amount": "371900",
            **TERMS,
        },
        headers=EN,
    )
    assert too_many.status_code == 409 and 'role="alert"' in too_many.text
    # Not a number, and numbers Decimal parses that are no amount: each a 422 on its field.
    for odd in ("abc", "NaN", "Infinity", "-inf", "1e30"):
        refused = client.post(
            "/coop/pledges/credits",
            data={
                "csrf_token": csrf,
                "batch_id": str(batch.id),
                "quantity_t": "100",
                "lender_id": str(bank.id),
                "loan_amount": odd,
                **TERMS,
            },
            headers=EN,
        )
        assert refused.status_code == 422 and 'id="f-loan_amount-error"' in refused.text, odd
    for path, data in (
        (
            "/coop/pledges/credits",
            {
                "batch_id": str(batch.id),
                "quantity_t": "100",
                "lender_id": str(bank.id),
                "loan_amount": "371900",
                **TERMS,
            },
        ),
        (
            "/coop/pledges/contract",
            {
                "contract_id": str(contract.id),
                "lender_id": str(bank.id),
                "loan_amount": "371,900.00",
                **TERMS,
            },
        ),
    ):
        done = client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert done.status_code == 303, done.text
    listed = client.get("/coop/pledges", headers=EN)
    assert listed.text.count("¥371,900.00") == 2 and "future proceeds of a contract" in listed.text
    held = {
        (b.serial_prefix, str(s)): q
        for b, s, q in issuance.holdings(session, faces.coop.actor.owner)
    }
    assert held[(batch.serial_prefix, "pledged")] == 100
    assert "3.85 %" in listed.text and "Awaiting the lender" in listed.text
    made = {p.batch_id is None: p.id for p in pledges.pledges_of(session, actor=faces.coop.actor)}
    prefix = batch.serial_prefix
    session.rollback()  # SQLite: free the write lock for the app
    # the lender has not accepted: the cooperative withdraws its offer of credits
    withdrawn = client.post(
        f"/coop/pledges/{made[False]}/withdraw", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert withdrawn.status_code == 303, withdrawn.text
    # the contract's pledge has no default to confirm: refused on the page
    early = client.post(
        f"/coop/pledges/{made[True]}/confirm-default",
        data={"csrf_token": csrf},
        headers=EN,
    )
    assert early.status_code == 409 and 'role="alert"' in early.text
    session.expire_all()
    held = {
        (b.serial_prefix, str(s)): q
        for b, s, q in issuance.holdings(session, faces.coop.actor.owner)
    }
    assert (prefix, "pledged") not in held


def test_dashboard_and_sample_files(client: TestClient, session: Session, faces: Faces) -> None:
    as_(client, faces.coop)
    page = client.get("/coop", headers=EN)
    assert page.status_code == 200 and "Sample files" in page.text
    assert faces.coop.organisation.name in page.text
    raster = client.get("/coop/samples/index-synthetic.tif")
    assert raster.status_code == 200 and raster.content.startswith(b"II*\x00")
    assert b"SYNTHETIC" in raster.content
    assert (
        client.get("/coop/samples/parcels.geojson").json()["features"][0]["properties"]["code"]
        == "SAMPLE-01"
    )
    assert client.get("/coop/samples/nothing.txt", headers=HTML).status_code == 404


def test_parcels_from_a_zipped_shapefile_and_a_geopackage(
    client: TestClient, session: Session, faces: Faces, tmp_path: Path
) -> None:
    import geopandas

    frame = geopandas.read_file(io.StringIO(samples.parcels_geojson()))
    frame = frame.rename(columns={"code": "PARCEL_NO"}).drop(columns=["national_id"])
    shapefile = tmp_path / "shp"
    shapefile.mkdir()
    frame.iloc[:3].to_crs("EPSG:4549").to_file(shapefile / "parcels.shp", engine="pyogrio")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in shapefile.iterdir():
            bundle.write(part, part.name)
    package = tmp_path / "parcels.gpkg"
    frame.iloc[3:6].to_file(package, layer="地块", driver="GPKG", engine="pyogrio")
    csrf = as_(client, faces.coop)
    mapping = {"csrf_token": csrf, "code": "PARCEL_NO", "default_land_type": "bamboo"}
    from_zip = client.post(
        "/coop/parcels/import",
        data=mapping,
        files={"file": ("parcels.zip", archive.getvalue(), "application/zip")},
        headers=EN,
    )
    assert "3 rows read, 3 parcels imported, 0 rows refused." in from_zip.text
    from_package = client.post(
        "/coop/parcels/import",
        data={**mapping, "layer": "地块"},
        files={"file": ("parcels.gpkg", package.read_bytes(), "application/geopackage+sqlite3")},
        headers=EN,
    )
    assert "3 rows read, 3 parcels imported, 0 rows refused." in from_package.text
    unreadable = client.post(
        "/coop/parcels/import",
        data=mapping,
        files={"file": ("parcels.zip", b"not a zip", "application/zip")},
        headers=EN,
    )
    assert unreadable.status_code == 422 and 'id="f-file-error"' in unreadable.text
    wrong_mapping = client.post(
        "/coop/parcels/import",
        data={**mapping, "code": "NO_SUCH_COLUMN"},
        files={"file": ("parcels.gpkg", package.read_bytes(), "application/geopackage+sqlite3")},
        headers=EN,
    )
    assert wrong_mapping.status_code == 422 and "NO_SUCH_COLUMN" in wrong_mapping.text
    page = client.get("/coop/parcels", headers=EN)
    assert all(f"SAMPLE-0{n}" in page.text for n in range(1, 7))
    assert page.text.count('class="parcel"') == 6 and "Anji" in page.text
