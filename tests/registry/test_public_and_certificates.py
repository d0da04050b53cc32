"""The public explorer's exact shapes, CSV, no personal data; certificates that verify offline
(and fail when altered); the CLI commands scripts rely on."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from registry import certificates
from registry.models import ProjectStatus, RetirementPurpose
from registry.service import projects as projects_service
from registry.service import public as public_service
from registry.service import retirements, transfers
from tanhui.crypto import SigningKey, canonical_json, unb64, verify_signature
from tanhui.settings import Settings
from tests.factories import run_cli
from tests.registry import helpers
from tests.registry.conftest import People

PUBLIC = "/api/v1/public"


def _retire(session: Session, people: People, quantity: int = 120) -> tuple[str, str]:
    roles = people.roles
    batch = helpers.issued_batch(session, roles)
    assert roles.enterprise.organisation_id is not None
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=roles.enterprise.organisation_id,
        quantity_t=300,
    )
    retirement = retirements.retire(
        session,
        actor=roles.enterprise,
        batch_id=batch.id,
        quantity_t=quantity,
        beneficiary="湖州绿能制造有限公司",
        purpose=RetirementPurpose.annual_neutrality,
    )
    session.commit()
    return retirement.certificate_id, batch.serial_prefix


def test_public_shapes_hold_exactly(client: TestClient, session: Session, people: People) -> None:
    certificate_id, prefix = _retire(session, people)
    helpers.project(session, people.roles, status=ProjectStatus.draft)  # drafts are not public
    session.commit()

    projects = client.get(f"{PUBLIC}/projects")
    assert projects.status_code == 200
    collection = projects.json()
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    properties = feature["properties"]
    assert {"code", "type", "status", "district", "issued_t", "retired_t"} <= set(properties)
    assert (properties["type"], properties["status"], properties["district"]) == (
        "bamboo",
        "issued",
        "安吉县",
    )
    assert (properties["issued_t"], properties["retired_t"]) == (1000, 120)

    batches = client.get(f"{PUBLIC}/batches").json()
    assert batches["next_cursor"] is None
    (item,) = batches["items"]
    assert {
        k: item[k]
        for k in ("project_code", "type", "vintage", "serial_first", "serial_last", "quantity_t")
    } == {
        "project_code": prefix.split("-")[2],
        "type": "bamboo",
        "vintage": 2024,
        "serial_first": f"{prefix}-000001-000001",
        "serial_last": f"{prefix}-001200-001200",
        "quantity_t": 1200,
    }

    page = client.get(f"{PUBLIC}/retirements").json()
    (retired,) = page["items"]
    assert page["next_cursor"] is None
    assert retired["certificate_id"] == certificate_id
    assert retired["quantity_t"] == 120 and retired["purpose"] == "annual_neutrality"
    assert retired["serial_blocks"] == [[f"{prefix}-000701-000701", f"{prefix}-000820-000820"]]
    assert retired["beneficiary"] == "湖州绿能制造有限公司" and retired["retired_at"]

    document = client.get(f"{PUBLIC}/certificates/{certificate_id}").json()
    assert set(document) >= {"payload", "signature", "key_id"}
    keys = client.get(f"{PUBLIC}/keys").json()["keys"]
    key = next(k for k in keys if k["key_id"] == document["key_id"])
    assert key["algorithm"] == "Ed25519" and len(base64.b64decode(key["public_key"])) == 32
    assert verify_signature(
        unb64(key["public_key"]), canonical_json(document["payload"]), document["signature"]
    )
    assert document["payload"]["serial_blocks"] == retired["serial_blocks"]
    assert document["payload"]["verify_url"].endswith(f"/verify/{certificate_id}")


def test_public_lists_page_by_cursor_and_answer_csv(
    client: TestClient, session: Session, people: People
) -> None:
    for _ in range(3):
        _retire(session, people, quantity=10)
    first = client.get(f"{PUBLIC}/batches?limit=2").json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(f"{PUBLIC}/batches", params={"cursor": first["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {i["serial_first"] for i in first["items"]}.isdisjoint(
        {i["serial_first"] for i in rest["items"]}
    )
    assert client.get(f"{PUBLIC}/batches?cursor=garbage").status_code == 422

    csv_batches = client.get(f"{PUBLIC}/batches", headers={"Accept": "text/csv"})
    assert csv_batches.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_batches.text)))
    assert len(rows) == 3 and rows[0]["quantity_t"] == "1200"
    csv_retired = client.get(f"{PUBLIC}/retirements", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(csv_retired.text)))
    assert len(rows) == 3 and ".." in rows[0]["serial_blocks"]
    csv_projects = client.get(f"{PUBLIC}/projects", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(csv_projects.text)))
    assert {row["district"] for row in rows} == {"安吉县"}


def test_no_personal_data_on_public_routes(
    client: TestClient, session: Session, people: People
) -> None:
    coop = people.coop.actor
    assert coop.organisation_id is not None
    household = helpers.households.create_household(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        name="张秘密",
        village="大里村",
        national_id=helpers.national_id(77_777),
        phone="13700001111",
        bank_account="622200009999888877",
    )
    project = helpers.project(session, people.roles, status=ProjectStatus.issued)
    parcel = projects_service.project_parcels(session, project.id)[0]
    helpers.parcels.set_holdings(
        session, actor=coop, parcel_id=parcel.id, holdings=[(household.id, 10_000)]
    )
    certificate_id, prefix = _retire(session, people)
    bodies = [
        client.get(f"{PUBLIC}/projects").text,
        client.get(f"{PUBLIC}/batches").text,
        client.get(f"{PUBLIC}/retirements").text,
        client.get(f"{PUBLIC}/certificates/{certificate_id}").text,
        client.get(f"/api/v1/registry/serials/{prefix}").text,
    ]
    for secret in (
        "张秘密",
        helpers.national_id(77_777),
        "13700001111",
        "622200009999888877",
        "household",
        "农户",
    ):
        assert all(secret not in body for body in bodies), secret


def test_an_altered_certificate_fails_verification(session: Session, people: People) -> None:
    certificate_id, _ = _retire(session, people)
    found = retirements.get_certificate(session, certificate_id)
    document = retirements.certificate_document(session, found)
    key = {document["key_id"]: unb64(document["public_key"])}
    assert certificates.verify_document(document, key).ok
    for change in (
        lambda d: d["payload"].update(quantity_t=1200),
        lambda d: d["payload"].update(beneficiary="别人"),
        lambda d: d["payload"]["serial_blocks"][0].__setitem__(0, "THC-BAM-X-2024-001-000001"),
        lambda d: d.update(signature=base64.b64encode(bytes(64)).decode()),
    ):
        altered = json.loads(json.dumps(document))
        change(altered)
        result = certificates.verify_document(altered, key)
        assert not result.ok and result.reason
    # a document signed by another key does not pass for the platform's
    other = certificates.sign(document["payload"], SigningKey.generate())
    assert not certificates.verify_document(other, key).ok


def test_certificate_pdf_embeds_the_signed_json(
    client: TestClient, session: Session, people: People
) -> None:
    certificate_id, _ = _retire(session, people)
    pdf = client.get(f"{PUBLIC}/certificates/{certificate_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    document = certificates.parse_document(pdf.content)
    assert document["payload"]["certificate_id"] == certificate_id
    pinned = certificates.embedded_key(document)
    assert pinned is not None and not certificates.verify_document(document, {}).ok
    assert certificates.verify_document(document, {document["key_id"]: pinned}).ok
    assert b"STSong-Light" in pdf.content  # the CID font for the Chinese text


def test_certificate_verify_cli_offline(
    settings: Settings, client: TestClient, session: Session, people: People, tmp_path: Path
) -> None:
    certificate_id, _ = _retire(session, people)
    (tmp_path / "c.json").write_bytes(client.get(f"{PUBLIC}/certificates/{certificate_id}").content)
    (tmp_path / "c.pdf").write_bytes(
        client.get(f"{PUBLIC}/certificates/{certificate_id}/pdf").content
    )
    (tmp_path / "keys.json").write_bytes(client.get(f"{PUBLIC}/keys").content)
    for name in ("c.json", "c.pdf"):
        ok = run_cli(
            settings,
            "certificate",
            "verify",
            str(tmp_path / name),
            "--keys",
            str(tmp_path / "keys.json"),
        )
        assert ok.returncode == 0, ok.stderr
        assert certificate_id in ok.stdout and "valid" in ok.stdout
    document = json.loads((tmp_path / "c.json").read_text("utf-8"))
    document["payload"]["quantity_t"] += 1
    (tmp_path / "altered.json").write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    altered = run_cli(settings, "certificate", "verify", str(tmp_path / "altered.json"))
    assert altered.returncode == 1 and "INVALID" in altered.stderr
    pdf = (tmp_path / "c.pdf").read_bytes()
    tampered = pdf.replace(b"tanhui-certificate:", b"tanhui-certificate:AAAA", 1)
    (tmp_path / "tampered.pdf").write_bytes(tampered)
    assert run_cli(
        settings, "certificate", "verify", str(tmp_path / "tampered.pdf")
    ).returncode in {1, 2}
    (tmp_path / "junk.txt").write_text("hello")
    assert run_cli(settings, "certificate", "verify", str(tmp_path / "junk.txt")).returncode == 2


def test_serial_lookup_over_http(client: TestClient, session: Session, people: People) -> None:
    certificate_id, prefix = _retire(session, people)
    answer = client.get(f"/api/v1/registry/serials/{prefix}-000690-000710")
    assert answer.status_code == 200, answer.text
    parts = answer.json()["parts"]
    assert [(p["serial"], p["state"]) for p in parts] == [
        (f"{prefix}-000690-000700", "held"),
        (f"{prefix}-000701-000710", "retired"),
    ]
    assert parts[1]["certificate_id"] == certificate_id
    assert client.get(f"/api/v1/registry/serials/{prefix}-009999").status_code == 404
    assert client.get("/api/v1/registry/serials/THC-BAM").status_code == 422


def test_serial_lookup_says_when_it_lists_only_part_of_a_range(
    client: TestClient, session: Session, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    _certificate_id, prefix = _retire(session, people)
    monkeypatch.setattr(public_service, "MAX_SERIAL_PARTS", 2)
    whole = client.get(f"/api/v1/registry/serials/{prefix}").json()
    assert len(whole["parts"]) == 2 and whole["truncated"] is True
    assert whole["quantity_t"] == 1200  # the range asked for, not what the parts cover
    last = whole["parts"][-1]["serial"].rsplit("-", 1)[1]
    rest = client.get(f"/api/v1/registry/serials/{prefix}-{int(last) + 1:06d}-001200").json()
    assert rest["parts"] and rest["parts"][0]["serial"].startswith(f"{prefix}-{int(last) + 1:06d}")
    small = client.get(f"/api/v1/registry/serials/{prefix}-000690-000710").json()
    assert len(small["parts"]) == 2 and small["truncated"] is False
