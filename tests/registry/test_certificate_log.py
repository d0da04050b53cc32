"""Issue 17: certificates verify only against pinned platform keys, carry their log index, and
prove their inclusion against a checkpoint offline."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry import certificates
from registry.models import RetirementPurpose
from registry.service import retirements, transfers
from tanhui import audit
from tanhui.crypto import SigningKey
from tanhui.models import Role
from tanhui.settings import Settings
from tanhui.translog import note
from tanhui.translog import service as log
from tests.factories import run_cli
from tests.registry import helpers
from tests.registry.conftest import People, person

PUBLIC = "/api/v1/public"


def _retire(session: Session, people: People) -> str:
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
        quantity_t=120,
        beneficiary="湖州绿能制造有限公司",
        purpose=RetirementPurpose.annual_neutrality,
    )
    session.commit()
    log.sequence(session)
    session.commit()
    return retirement.certificate_id


def test_a_certificate_forged_with_an_organisation_key_is_refused(
    settings: Settings, client: TestClient, session: Session, people: People, tmp_path: Path
) -> None:
    certificate_id = _retire(session, people)
    # an organisation owner registers its own key: it is listed among the public keys
    forger = SigningKey.generate()
    owner = person(session, people.enterprise.actor.org_kind, Role.owner)
    session.commit()
    registered = client.post(
        "/api/v1/registry/keys",
        headers=owner.headers,
        json={"public_key": base64.b64encode(forger.public_raw).decode()},
    )
    assert registered.status_code in {200, 201}, registered.text
    listed = client.get(f"{PUBLIC}/keys").json()["keys"]
    mine = [k for k in listed if k["key_id"] == forger.key_id]
    assert mine and mine[0]["use"] == "none" and mine[0]["owner"] != "platform"
    (tmp_path / "keys.json").write_bytes(client.get(f"{PUBLIC}/keys").content)

    real = client.get(f"{PUBLIC}/certificates/{certificate_id}").json()
    payload = dict(real["payload"], quantity_t=1_000_000, certificate_id="THC-RC-2026-FORGED0001")
    forged = certificates.sign(payload, forger)
    forged["public_key"] = base64.b64encode(forger.public_raw).decode()
    (tmp_path / "forged.json").write_text(json.dumps(forged, ensure_ascii=False), "utf-8")

    with_keys = run_cli(
        settings,
        "certificate",
        "verify",
        str(tmp_path / "forged.json"),
        "--keys",
        str(tmp_path / "keys.json"),
    )
    assert with_keys.returncode == 1, with_keys.stdout
    assert "INVALID" in with_keys.stderr and "not a pinned platform key" in with_keys.stderr
    without_keys = run_cli(settings, "certificate", "verify", str(tmp_path / "forged.json"))
    assert without_keys.returncode == 1 and "INVALID" in without_keys.stderr
    # the real one still verifies with the same key file
    (tmp_path / "real.json").write_text(json.dumps(real, ensure_ascii=False), "utf-8")
    ok = run_cli(
        settings,
        "certificate",
        "verify",
        str(tmp_path / "real.json"),
        "--keys",
        str(tmp_path / "keys.json"),
    )
    assert ok.returncode == 0, ok.stderr


def test_only_a_pinned_key_validates_and_an_embedded_one_never_alone() -> None:
    key = SigningKey.generate()
    document = certificates.sign({"certificate_id": "X", "quantity_t": 1}, key)
    document["public_key"] = base64.b64encode(key.public_raw).decode()
    assert not certificates.verify_document(document, {}).ok
    assert certificates.verify_document(document, {key.key_id: key.public_raw}).ok
    keys_json = json.dumps(
        {"keys": [{"key_id": key.key_id, "public_key": document["public_key"], "owner": "x"}]}
    ).encode()
    assert certificates.keys_from_json(keys_json) == {}


def test_certificate_carries_its_log_index_and_proves_inclusion_offline(
    settings: Settings, client: TestClient, session: Session, people: People, tmp_path: Path
) -> None:
    certificate_id = _retire(session, people)
    document = client.get(f"{PUBLIC}/certificates/{certificate_id}").json()
    logged = document["log"]
    assert isinstance(logged["index"], int) and logged["tree_size"] > logged["index"]
    entry = client.get(
        f"{PUBLIC}/log/entries", params={"start": logged["index"], "end": logged["index"] + 1}
    ).json()["entries"][0]["entry"]
    assert entry.encode() == certificates.log_entry(document)
    (tmp_path / "c.json").write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    (tmp_path / "key.txt").write_text(client.get(f"{PUBLIC}/log/key").text, "utf-8")
    (tmp_path / "cp.txt").write_text(client.get(f"{PUBLIC}/log/checkpoint").text, "utf-8")
    args = ["certificate", "verify", str(tmp_path / "c.json"), "--keys", str(tmp_path / "key.txt")]
    proven = run_cli(settings, *args, "--checkpoint", str(tmp_path / "cp.txt"))
    assert proven.returncode == 0, proven.stderr
    assert f"in the log at index {logged['index']}" in proven.stdout

    # the log grows: the old proof does not fit the new checkpoint; the one for it does
    audit.record(
        session,
        actor="user:test",
        action="project.filed",
        subject_type="project",
        subject_id="p-next",
        payload={},
    )
    session.commit()
    log.sequence(session)
    session.commit()
    (tmp_path / "cp2.txt").write_text(client.get(f"{PUBLIC}/log/checkpoint").text, "utf-8")
    stale = run_cli(settings, *args, "--checkpoint", str(tmp_path / "cp2.txt"))
    assert stale.returncode == 1 and "--proof" in stale.stderr
    size = int((tmp_path / "cp2.txt").read_text("utf-8").splitlines()[1])
    (tmp_path / "proof.json").write_bytes(
        client.get(
            f"{PUBLIC}/log/proofs/inclusion",
            params={"index": logged["index"], "tree_size": size},
        ).content
    )
    fresh = run_cli(
        settings,
        *args,
        "--checkpoint",
        str(tmp_path / "cp2.txt"),
        "--proof",
        str(tmp_path / "proof.json"),
    )
    assert fresh.returncode == 0, fresh.stderr
    # a checkpoint signed by anyone else proves nothing
    other = note.sign_checkpoint(
        note.Checkpoint.parse((tmp_path / "cp.txt").read_text("utf-8").split("\n\n")[0] + "\n"),
        log.origin(),
        SigningKey.generate(),
    )
    (tmp_path / "other.txt").write_text(other, "utf-8")
    refused = run_cli(settings, *args, "--checkpoint", str(tmp_path / "other.txt"))
    assert refused.returncode == 1 and "pinned" in refused.stderr
