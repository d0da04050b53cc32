"""Personal data is sealed at rest and found through the blind index."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from tanhui import identity, pii
from tanhui.crypto import DataProtector, DecryptionError
from tanhui.errors import InvalidInput

PHONE = "138 0013 8000"
NATIONAL_ID = "11010519491231002X"


def test_resident_phone_is_not_stored_in_plain_text(session: Session) -> None:
    resident = identity.create_resident(session, phone=PHONE)
    session.commit()
    rows = session.execute(text("SELECT * FROM resident")).mappings().all()
    dump = repr([dict(row) for row in rows]).encode()
    for needle in (b"13800138000", b"138 0013 8000", b"8613800138000"):
        assert needle not in dump
    raw_phone = rows[0]["phone_sealed"]
    assert b"13800138000" not in bytes(raw_phone)
    assert identity.resident_phone(resident) == "+8613800138000"


def test_lookup_by_any_spelling_of_the_phone(session: Session) -> None:
    resident = identity.create_resident(session, phone=PHONE)
    for spelling in ("+86 138-0013-8000", "008613800138000", "13800138000"):
        found = identity.find_resident_by_phone(session, spelling)
        assert found is not None and found.id == resident.id
    assert identity.find_resident_by_phone(session, "13800138001") is None


def test_ciphertext_is_bound_to_its_column() -> None:
    protector = DataProtector(b"k" * 32)
    sealed = protector.seal("+8613800138000", context=pii.PHONE)
    assert protector.open(sealed, context=pii.PHONE) == "+8613800138000"
    with pytest.raises(DecryptionError):
        protector.open(sealed, context=pii.NATIONAL_ID)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(DecryptionError):
        protector.open(tampered, context=pii.PHONE)


def test_blind_index_depends_on_the_key() -> None:
    one = DataProtector(b"a" * 32).blind_index("+8613800138000", context=pii.PHONE)
    two = DataProtector(b"b" * 32).blind_index("+8613800138000", context=pii.PHONE)
    assert one != two and len(one) == 64


def test_national_id_check_digit() -> None:
    assert pii.normalise_national_id(NATIONAL_ID.lower()) == NATIONAL_ID
    with pytest.raises(InvalidInput):
        pii.normalise_national_id("110105194912310021")
    with pytest.raises(InvalidInput):
        pii.normalise_national_id("12345")


@pytest.mark.parametrize("bad", ["", "12345", "2380013800", "+0123", "phone"])
def test_bad_phone_numbers_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        pii.normalise_phone(bad)
