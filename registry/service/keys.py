"""Organisations' Ed25519 keys: their own public key, or one the platform keeps for them.

An organisation that registers its own public key signs elsewhere and sends the signature; an
organisation without one gets a key the platform generates and keeps, its private half sealed
with the data key (AES-GCM bound to the organisation), never stored in clear. Every public key
is also remembered in the kernel's ``signing_key`` table, so anyone can verify old signatures.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from sqlmodel import Session, col, select

from registry.errors import InvalidSignature
from registry.models import OrganisationKey
from registry.service.actors import Actor, ensure_own, require
from tanhui import audit, pii
from tanhui.crypto import SigningKey, b64, key_id_for, unb64, verify_signature
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind, Role, SigningKeyRecord

PUBLIC_KEY_BYTES = 32
# What a key may sign, by who holds it: declared in the public key list and checked on use.
USE_PLATFORM = "certificates and log checkpoints"
USE_MRV = "mrv reports"
USE_NONE = "none"


def _seal_context(organisation_id: uuid.UUID) -> str:
    return f"registry.organisation_key:{organisation_id}"


def active_key(session: Session, organisation_id: uuid.UUID) -> OrganisationKey | None:
    return session.exec(
        select(OrganisationKey)
        .where(col(OrganisationKey.organisation_id) == organisation_id)
        .where(col(OrganisationKey.revoked_at).is_(None))
        .order_by(col(OrganisationKey.created_at).desc())
    ).first()


def _remember(session: Session, key_id: str, public_b64: str, organisation_id: uuid.UUID) -> None:
    if session.get(SigningKeyRecord, key_id) is None:
        session.add(
            SigningKeyRecord(
                key_id=key_id, owner=f"organisation:{organisation_id}", public_key=public_b64
            )
        )


def _revoke_active(session: Session, organisation_id: uuid.UUID) -> None:
    for key in session.exec(
        select(OrganisationKey)
        .where(col(OrganisationKey.organisation_id) == organisation_id)
        .where(col(OrganisationKey.revoked_at).is_(None))
    ).all():
        key.revoked_at = utcnow()
        session.add(key)


def register_public_key(
    session: Session, *, actor: Actor, organisation_id: uuid.UUID, public_key: str
) -> OrganisationKey:
    """The organisation will sign with its own key from now on (owners only)."""
    require(actor, *OrgKind, minimum=Role.owner, action="Registering a signing key")
    ensure_own(actor, organisation_id, what="organisation", object_id=organisation_id)
    try:
        raw = base64.b64decode(public_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidInput(
            N_("A public key is the base64 of 32 raw Ed25519 bytes."),
            errors=[{"field": "public_key", "message": "base64 of 32 bytes"}],
        )
    key_id = key_id_for(raw)
    existing = session.get(OrganisationKey, key_id)
    if existing is not None and existing.organisation_id != organisation_id:
        raise InvalidInput(N_("This public key belongs to another organisation."))
    _revoke_active(session, organisation_id)
    session.flush()
    if existing is not None:
        existing.revoked_at = None
        record = existing
    else:
        record = OrganisationKey(
            key_id=key_id, organisation_id=organisation_id, public_key=b64(raw)
        )
    session.add(record)
    _remember(session, key_id, b64(raw), organisation_id)
    organisation = session.get(Organisation, organisation_id)
    if organisation is not None:
        organisation.public_key = b64(raw)
        session.add(organisation)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="organisation.key_registered",
        subject_type="organisation",
        subject_id=organisation_id,
        payload={"key_id": key_id},
    )
    return record


def platform_held_key(session: Session, organisation_id: uuid.UUID) -> SigningKey | None:
    """The key the platform keeps for the organisation: created on first use; None when the
    organisation signs with its own key."""
    current = active_key(session, organisation_id)
    if current is not None:
        if current.private_sealed is None:
            return None
        pem = pii.protector().open(current.private_sealed, context=_seal_context(organisation_id))
        return SigningKey.from_pem(pem.encode("ascii"))
    key = SigningKey.generate()
    record = OrganisationKey(
        key_id=key.key_id,
        organisation_id=organisation_id,
        public_key=b64(key.public_raw),
        private_sealed=pii.protector().seal(
            key.private_pem().decode("ascii"), context=_seal_context(organisation_id)
        ),
    )
    session.add(record)
    _remember(session, key.key_id, b64(key.public_raw), organisation_id)
    session.flush()
    return key


def sign_or_verify(
    session: Session, *, organisation_id: uuid.UUID, message: bytes, signature: str | None
) -> tuple[str, str]:
    """(signature, key_id) for ``message`` by the organisation.

    With its own key the organisation must send ``signature`` and it must verify; otherwise the
    platform signs with the key it keeps for the organisation (a sent signature is then checked
    against that key too).
    """
    held = platform_held_key(session, organisation_id)
    if held is None:
        current = active_key(session, organisation_id)
        assert current is not None
        if not signature:
            raise InvalidSignature(
                N_("Your organisation signs with its own key: send the signature of the message.")
            )
        if not verify_signature(unb64(current.public_key), message, signature):
            raise InvalidSignature(
                N_("The signature does not verify with key {key_id}."), key_id=current.key_id
            )
        return signature, current.key_id
    if signature and not verify_signature(held.public_raw, message, signature):
        raise InvalidSignature(
            N_("The signature does not verify with key {key_id}."), key_id=held.key_id
        )
    return signature or held.sign(message), held.key_id


def public_key_of(session: Session, key_id: str) -> str | None:
    record = session.get(SigningKeyRecord, key_id)
    return record.public_key if record else None


def declared_use(session: Session, record: SigningKeyRecord) -> str:
    """The platform's key signs certificates and checkpoints; a verifier's key signs MRV
    reports; no other organisation's key signs anything a third party relies on."""
    if record.owner == "platform":
        return USE_PLATFORM
    kind, _, organisation_id = record.owner.partition(":")
    if kind == "organisation":
        try:
            organisation = session.get(Organisation, uuid.UUID(organisation_id))
        except ValueError:
            organisation = None
        if organisation is not None and organisation.kind == OrgKind.verifier:
            return USE_MRV
    return USE_NONE


def verify(
    session: Session, *, key_id: str, message: bytes, signature: str, use: str | None = None
) -> bool:
    """True when ``signature`` verifies with key ``key_id`` (declared for ``use``, if given)."""
    record = session.get(SigningKeyRecord, key_id)
    if record is None or (use is not None and declared_use(session, record) != use):
        return False
    public = record.public_key
    try:
        return verify_signature(unb64(public), message, signature)
    except ValueError:
        return False


def organisation_keys(session: Session, organisation_id: uuid.UUID) -> list[OrganisationKey]:
    return list(
        session.exec(
            select(OrganisationKey)
            .where(col(OrganisationKey.organisation_id) == organisation_id)
            .order_by(col(OrganisationKey.created_at))
        ).all()
    )


def all_public_keys(session: Session) -> list[SigningKeyRecord]:
    return list(
        session.exec(select(SigningKeyRecord).order_by(col(SigningKeyRecord.created_at))).all()
    )
