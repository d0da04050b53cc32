"""What the market's use cases share: who may act, the money accounts, small helpers."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from market.errors import MarketNotFound, MarketRoleRefused
from market.models import Provider
from registry.service.actors import Actor
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, Organisation, OrgKind, Role
from wallet import service as wallet

CNY = wallet.ASSET_CNY
CLEARING = "clearing"
FEES = "fees"
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a bank
SELLER_KINDS = (OrgKind.cooperative, OrgKind.platform)  # the platform operates the residents' pool
FINANCE_KINDS = (OrgKind.platform,)
BASIS_POINTS = 10_000


def now_or(moment: datetime | None) -> datetime:
    return moment if moment is not None else utcnow()


def require(
    actor: Actor,
    *kinds: OrgKind,
    minimum: Role = Role.member,
    admin: bool = True,
    action: str = "",
) -> None:
    """The actor belongs to an organisation of one of ``kinds`` with at least ``minimum``;
    platform administrators (and system jobs) pass when ``admin`` is true."""
    if admin and actor.is_platform_admin:
        return
    if (
        actor.org_kind is None
        or actor.org_kind not in kinds
        or actor.role is None
        or ROLE_RANK[actor.role] < ROLE_RANK[minimum]
    ):
        raise MarketRoleRefused(
            N_("{action} needs the role {role} in an organisation of kind {kinds}."),
            action=action or "this",
            role=minimum.value,
            kinds=", ".join(kind.value for kind in kinds),
        )


def require_member(actor: Actor, action: str) -> uuid.UUID:
    """Any organisation's member (buyers may be of any kind); returns the organisation id."""
    if actor.organisation_id is None or actor.role is None:
        raise MarketRoleRefused(N_("{action} needs an organisation account."), action=action)
    if ROLE_RANK[actor.role] < ROLE_RANK[Role.member]:
        raise MarketRoleRefused(
            N_("{action} needs the role {role} in an organisation of kind {kinds}."),
            action=action,
            role=Role.member.value,
            kinds="any",
        )
    return actor.organisation_id


def can_see(actor: Actor, *organisation_ids: uuid.UUID | None) -> bool:
    return actor.is_platform_admin or (
        actor.organisation_id is not None and actor.organisation_id in organisation_ids
    )


def not_found(what: str, object_id: object) -> MarketNotFound:
    return MarketNotFound(N_("No {what} {id}."), what=what, id=str(object_id))


def organisation(session: Session, organisation_id: uuid.UUID) -> Organisation:
    found = session.get(Organisation, organisation_id)
    if found is None:
        raise not_found("organisation", organisation_id)
    return found


def org_owner(organisation_id: uuid.UUID) -> str:
    return f"org:{organisation_id}"


def household_owner(household_id: uuid.UUID) -> str:
    return f"household:{household_id}"


def gateway_account(session: Session, provider: Provider) -> uuid.UUID:
    """Where money comes from and goes back to, outside the platform: one unbounded system
    account per provider (the money at Stripe, in the platform's bank account, in the sandbox)."""
    return wallet.account_for(
        session, asset=CNY, owner=f"system:gateway_{provider!s}", floor=None
    ).id


def clearing_account(session: Session) -> uuid.UUID:
    return wallet.system_account(session, CLEARING, CNY).id


def fees_account(session: Session) -> uuid.UUID:
    return wallet.system_account(session, FEES, CNY).id


def cny_account(session: Session, owner: str) -> uuid.UUID:
    return wallet.account_for(session, asset=CNY, owner=owner).id


def credit_account(session: Session, asset: str, owner: str) -> uuid.UUID:
    kind, _, name = owner.partition(":")
    if kind == "system":
        return wallet.system_account(session, name, asset).id
    return wallet.account_for(session, asset=asset, owner=owner).id


def random_code(length: int) -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(length))


def cny_text(fen: int) -> str:
    """``7341`` → ``"73.41"`` (for messages; pages format with their own filter)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


MARKET_TZ = ZoneInfo("Asia/Shanghai")  # months and days of the platform's figures
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


def month_span(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as [its first instant, the next month's first instant) in Asia/Shanghai."""
    match = _MONTH.match(month)
    if not match or not 2000 <= int(match.group(1)) <= 2999 or not 1 <= int(match.group(2)) <= 12:
        raise InvalidInput(N_("A month is written YYYY-MM, e.g. 2026-10."), month=month)
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=MARKET_TZ)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=MARKET_TZ)
    return start, end
