"""Farmer households: personal data sealed and blind-indexed through ``tanhui.pii``; each has a
CNY wallet account (``household:<id>``) for collection payments and revenue shares."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from registry import ledger
from registry.errors import DuplicateCode, RegistryNotFound
from registry.models import Household
from registry.service.actors import Actor, ensure_own, require
from tanhui import audit, pii
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role

BANK_CONTEXT = "registry.household.bank_account"
NATIONAL_ID_CONTEXT = "registry.household.national_id"
PHONE_CONTEXT = "registry.household.phone"
_BANK_ACCOUNT = re.compile(r"^\d{12,30}$")
MAX_LIST = 5_000


def household_owner(household_id: uuid.UUID) -> str:
    """The wallet owner of a household's CNY account."""
    return f"household:{household_id}"


def normalise_bank_account(raw: str) -> str:
    value = re.sub(r"[\s\-]", "", raw or "")
    if not _BANK_ACCOUNT.match(value):
        raise InvalidInput(
            N_("A bank account number has 12 to 30 digits."),
            errors=[{"field": "bank_account", "message": "12 to 30 digits"}],
        )
    return value


def create_household(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    name: str,
    village: str,
    national_id: str,
    phone: str | None = None,
    bank_account: str | None = None,
) -> Household:
    require(actor, OrgKind.cooperative, action="Registering a household")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    name, village = name.strip(), village.strip()
    if not name or not village:
        raise InvalidInput(
            N_("A household needs a name and a village."),
            errors=[{"field": "name", "message": "required"}],
        )
    national = pii.normalise_national_id(national_id)
    index = pii.blind_index(national, context=NATIONAL_ID_CONTEXT)
    if find_by_national_id(session, cooperative_id=cooperative_id, national_id=national):
        raise DuplicateCode(N_("This cooperative already registered that household."))
    sealed_phone = None
    if phone:
        sealed_phone = pii.seal(pii.normalise_phone(phone), context=PHONE_CONTEXT)
    account = normalise_bank_account(bank_account) if bank_account else None
    household = Household(
        cooperative_id=cooperative_id,
        name=name[:100],
        village=village[:100],
        national_id_sealed=pii.seal(national, context=NATIONAL_ID_CONTEXT).sealed,
        national_id_index=index,
        phone_sealed=sealed_phone.sealed if sealed_phone else None,
        phone_index=sealed_phone.index if sealed_phone else None,
        bank_account_sealed=(
            pii.seal(account, context=BANK_CONTEXT).sealed if account is not None else None
        ),
        bank_account_last4=account[-4:] if account else None,
    )
    session.add(household)
    session.flush()
    ledger.open_cny_account(session, household_owner(household.id))
    audit.record(
        session,
        actor=actor.ref,
        action="household.registered",
        subject_type="household",
        subject_id=household.id,
        payload={"cooperative_id": str(cooperative_id), "village": household.village},
    )
    return household


def find_by_national_id(
    session: Session, *, cooperative_id: uuid.UUID, national_id: str
) -> Household | None:
    index = pii.blind_index(pii.normalise_national_id(national_id), context=NATIONAL_ID_CONTEXT)
    return session.exec(
        select(Household)
        .where(col(Household.cooperative_id) == cooperative_id)
        .where(col(Household.national_id_index) == index)
    ).one_or_none()


def get_household(session: Session, *, actor: Actor, household_id: uuid.UUID) -> Household:
    household = session.get(Household, household_id)
    if household is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="household", id=str(household_id))
    ensure_own(actor, household.cooperative_id, what="household", object_id=household_id)
    return household


def list_households(
    session: Session, *, actor: Actor, cooperative_id: uuid.UUID, village: str | None = None
) -> list[Household]:
    require(actor, OrgKind.cooperative, minimum=Role.viewer, action="Listing households")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    query = select(Household).where(col(Household.cooperative_id) == cooperative_id)
    if village:
        query = query.where(col(Household.village) == village)
    return list(session.exec(query.order_by(col(Household.village), col(Household.name))).all())


@dataclass(frozen=True)
class HouseholdContact:
    """Unsealed personal data, for the cooperative's own staff only (audited)."""

    national_id: str
    phone: str | None
    bank_account: str | None


def reveal(session: Session, *, actor: Actor, household_id: uuid.UUID) -> HouseholdContact:
    """Unseal a household's personal data; owners of the cooperative only, and audited."""
    household = get_household(session, actor=actor, household_id=household_id)
    require(actor, OrgKind.cooperative, minimum=Role.owner, action="Reading personal data")
    audit.record(
        session,
        actor=actor.ref,
        action="household.personal_data_read",
        subject_type="household",
        subject_id=household.id,
    )
    return HouseholdContact(
        national_id=pii.unseal(household.national_id_sealed, context=NATIONAL_ID_CONTEXT),
        phone=(
            pii.unseal(household.phone_sealed, context=PHONE_CONTEXT)
            if household.phone_sealed
            else None
        ),
        bank_account=(
            pii.unseal(household.bank_account_sealed, context=BANK_CONTEXT)
            if household.bank_account_sealed
            else None
        ),
    )
