"""Data partners: organisations that report residents' behaviours, and the keys they sign with.

A partner signs every batch with an HMAC secret (shown once, stored sealed with the platform's
data key because verifying an HMAC needs the secret itself) or with an Ed25519 key whose public
half it registers. Several keys may be active at once, so a partner rotates without downtime:
add a key, switch, revoke the old one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from mrv.inclusive import SPECS
from registry.inclusion.errors import (
    LastKey,
    PartnerExists,
    UnknownKey,
    UnknownPartner,
    UnknownScenario,
)
from registry.inclusion.models import InclusionPartner, InclusionPartnerKey, PartnerKeyKind
from tanhui import audit, identity, pii
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind

SECRET_PREFIX = "thsk_"  # noqa: S105 - a public prefix that makes leaked secrets recognisable
SECRET_CONTEXT = "inclusion.partner_secret"  # noqa: S105 - an encryption context, not a secret
MAX_ACTIVE_KEYS = 5


@dataclass(frozen=True)
class NewPartner:
    partner: InclusionPartner
    key: InclusionPartnerKey
    secret: str


@dataclass(frozen=True)
class NewKey:
    key: InclusionPartnerKey
    secret: str | None


def check_scenarios(names: list[str]) -> str:
    """The scenario names, checked and normalised to a sorted comma-separated list."""
    cleaned = sorted({name.strip().lower() for name in names if name.strip()})
    if not cleaned:
        raise UnknownScenario(
            N_("Name at least one scenario."),
            errors=[{"field": "scenarios", "message": "required"}],
        )
    known = {scenario.value for scenario in SPECS}
    unknown = [name for name in cleaned if name not in known]
    if unknown:
        raise UnknownScenario(
            N_("Unknown scenario {names}; known: {known}."),
            names=", ".join(unknown),
            known=", ".join(sorted(known)),
            errors=[{"field": "scenarios", "message": "unknown scenario"}],
        )
    return ",".join(cleaned)


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _hmac_key(partner_id: uuid.UUID) -> tuple[InclusionPartnerKey, str]:
    secret = _new_secret()
    key = InclusionPartnerKey(
        partner_id=partner_id,
        kind=PartnerKeyKind.hmac,
        secret_sealed=pii.protector().seal(secret, context=SECRET_CONTEXT),
        prefix=secret[:12],
    )
    return key, secret


def create_partner(
    session: Session, *, name: str, scenarios: list[str], actor: str = "system:cli"
) -> NewPartner:
    """Make the organisation ``name`` (a data partner, created if new) a partner for
    ``scenarios`` and give it a first signing secret."""
    allowed = check_scenarios(scenarios)
    organisation = session.exec(
        select(Organisation).where(col(Organisation.name) == name.strip())
    ).one_or_none()
    if organisation is None:
        organisation = identity.create_organisation(
            session, name=name, kind=OrgKind.data_partner, actor=actor
        )
    existing = session.exec(
        select(InclusionPartner).where(col(InclusionPartner.organisation_id) == organisation.id)
    ).one_or_none()
    if existing is not None:
        raise PartnerExists(
            N_("{name} is already a data partner ({partner_id})."),
            name=organisation.name,
            partner_id=str(existing.id),
        )
    partner = InclusionPartner(organisation_id=organisation.id, scenarios=allowed)
    session.add(partner)
    session.flush()
    key, secret = _hmac_key(partner.id)
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.partner.created",
        subject_type="inclusion_partner",
        subject_id=partner.id,
        payload={"organisation": organisation.name, "scenarios": allowed, "key": key.prefix},
    )
    return NewPartner(partner=partner, key=key, secret=secret)


def get_partner(session: Session, partner_id: uuid.UUID) -> InclusionPartner:
    partner = session.get(InclusionPartner, partner_id)
    if partner is None:
        raise UnknownPartner(N_("No data partner {partner_id}."), partner_id=str(partner_id))
    return partner


def partner_of_organisation(session: Session, organisation_id: uuid.UUID) -> InclusionPartner:
    partner = session.exec(
        select(InclusionPartner).where(col(InclusionPartner.organisation_id) == organisation_id)
    ).one_or_none()
    if partner is None:
        raise UnknownPartner(N_("This organisation is not a data partner."))
    return partner


def list_partners(session: Session) -> list[tuple[InclusionPartner, Organisation]]:
    rows = session.exec(
        select(InclusionPartner, Organisation)
        .join(Organisation, col(Organisation.id) == col(InclusionPartner.organisation_id))
        .order_by(col(Organisation.name))
    ).all()
    return [(partner, organisation) for partner, organisation in rows]


def organisation_of(session: Session, partner: InclusionPartner) -> Organisation:
    organisation = session.get(Organisation, partner.organisation_id)
    assert organisation is not None  # a foreign key
    return organisation


def keys_of(
    session: Session, partner_id: uuid.UUID, *, active_only: bool = False
) -> list[InclusionPartnerKey]:
    query = (
        select(InclusionPartnerKey)
        .where(col(InclusionPartnerKey.partner_id) == partner_id)
        .order_by(col(InclusionPartnerKey.created_at))
    )
    if active_only:
        query = query.where(col(InclusionPartnerKey.revoked_at).is_(None))
    return list(session.exec(query).all())


def update_partner(
    session: Session,
    partner: InclusionPartner,
    *,
    scenarios: list[str] | None = None,
    active: bool | None = None,
    issues_citizen_cards: bool | None = None,
    actor: str,
) -> InclusionPartner:
    changes: dict[str, object] = {}
    if issues_citizen_cards is not None:
        partner.issues_citizen_cards = issues_citizen_cards
        changes["issues_citizen_cards"] = issues_citizen_cards
    if scenarios is not None:
        partner.scenarios = check_scenarios(scenarios)
        changes["scenarios"] = partner.scenarios
    if active is not None:
        partner.active = active
        changes["active"] = active
    session.add(partner)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.partner.updated",
        subject_type="inclusion_partner",
        subject_id=partner.id,
        payload=changes,
    )
    return partner


def add_key(
    session: Session,
    partner: InclusionPartner,
    *,
    kind: PartnerKeyKind = PartnerKeyKind.hmac,
    public_key: str | None = None,
    actor: str,
) -> NewKey:
    """A new HMAC secret (returned once) or a registered Ed25519 public key."""
    if len(keys_of(session, partner.id, active_only=True)) >= MAX_ACTIVE_KEYS:
        raise InvalidInput(
            N_("A partner has at most {maximum} active keys; revoke one first."),
            maximum=MAX_ACTIVE_KEYS,
        )
    secret: str | None = None
    if kind == PartnerKeyKind.hmac:
        key, secret = _hmac_key(partner.id)
    else:
        raw = _public_key_bytes(public_key)
        encoded = base64.b64encode(raw).decode("ascii")
        key = InclusionPartnerKey(
            partner_id=partner.id,
            kind=PartnerKeyKind.ed25519,
            public_key=encoded,
            prefix=encoded[:12],
        )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.partner.key_added",
        subject_type="inclusion_partner",
        subject_id=partner.id,
        payload={"key_id": str(key.id), "kind": str(key.kind), "prefix": key.prefix},
    )
    return NewKey(key=key, secret=secret)


def _public_key_bytes(public_key: str | None) -> bytes:
    try:
        raw = base64.b64decode(public_key or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(
            N_("An Ed25519 public key is 32 bytes, base64-encoded."),
            errors=[{"field": "public_key", "message": "invalid"}],
        )
    return raw


def revoke_key(
    session: Session, partner: InclusionPartner, key_id: uuid.UUID, *, actor: str
) -> InclusionPartnerKey:
    key = session.get(InclusionPartnerKey, key_id)
    if key is None or key.partner_id != partner.id:
        raise UnknownKey(N_("No key {key_id} for this partner."), key_id=str(key_id))
    if key.revoked_at is not None:
        return key
    if len(keys_of(session, partner.id, active_only=True)) <= 1:
        raise LastKey(N_("Add a new key before revoking the last one."))
    key.revoked_at = utcnow()
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="points.partner.key_revoked",
        subject_type="inclusion_partner",
        subject_id=partner.id,
        payload={"key_id": str(key.id), "prefix": key.prefix},
    )
    return key


def secret_of(key: InclusionPartnerKey) -> bytes:
    """The HMAC secret of a key, unsealed."""
    assert key.secret_sealed is not None
    return pii.protector().open(key.secret_sealed, context=SECRET_CONTEXT).encode("utf-8")
