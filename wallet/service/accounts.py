"""Assets and accounts: open, find, freeze, and read balances."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from tanhui import audit
from tanhui.db import database_kind, new_id, utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, Resident
from wallet.errors import UnknownAccount, UnknownAsset
from wallet.models import Account, Asset, BalanceShard

ASSET_CNY = "CNY"  # integer fen
ASSET_POINTS = "POINTS"  # integer points
ASSET_REDUCTION_G = "RED_G"  # integer grams CO2e
CREDIT_ASSET_PREFIX = "CREDIT:"  # one asset per credit batch, integer tonnes

HOT_SHARDS = 16  # balance rows of a hot account (fees, clearing): ADR 0011
MAX_SHARDS = 64

# Built-in assets: code -> (scale, description). Others are created with ensure_asset.
KNOWN_ASSETS: dict[str, tuple[int, str]] = {
    ASSET_CNY: (2, "Renminbi, in fen"),
    ASSET_POINTS: (0, "Carbon points"),
    ASSET_REDUCTION_G: (0, "Residents' reductions, grams CO2e"),
}

# System accounts: name -> (floor, shards). Issuance and clearing may go negative; the fee and
# clearing accounts are credited by every sale and the issuance accounts debited by every
# carbon-inclusion batch, so they are spread over several rows (ADR 0011, ADR 0073).
SYSTEM_ACCOUNTS: dict[str, tuple[int | None, int]] = {
    "issuance": (None, HOT_SHARDS),
    "points_issuance": (None, HOT_SHARDS),
    "clearing": (None, HOT_SHARDS),
    "fees": (0, HOT_SHARDS),
    "buffer_pool": (0, 1),
    "retirement": (0, 1),
    "compensation_fund": (0, 1),
    "points_redemption": (0, 1),
    "rewards_fund": (0, 1),  # residents' rewards fund: the pool batch's proceeds (ADR 0059)
    "operating": (None, 1),  # the platform's own money: tops up rewards the fund cannot cover
}

OWNER_KINDS = ("org", "resident", "household", "system")
_ASSET_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}(:[A-Za-z0-9][A-Za-z0-9._-]{0,46})?$")
_SYSTEM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_.-]{0,49}$")

_BALANCE = BalanceShard.__table__  # type: ignore[attr-defined]
_ACCOUNT = Account.__table__  # type: ignore[attr-defined]


def credit_asset(serial_prefix: str) -> str:
    """The asset of one credit batch: ``CREDIT:<serial prefix>``, counted in whole tonnes."""
    return CREDIT_ASSET_PREFIX + serial_prefix


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return pg_insert if database_kind(session) == "postgresql" else sqlite_insert


def ensure_asset(session: Session, code: str, *, scale: int = 0, description: str = "") -> Asset:
    """The asset ``code``, created if missing (concurrent callers create it once)."""
    if not _ASSET_CODE.match(code):
        raise InvalidInput(N_("{code} is not a valid asset code."), code=code)
    if not 0 <= scale <= 18:
        raise InvalidInput(N_("An asset's scale must be between 0 and 18."))
    existing = session.get(Asset, code)
    if existing is not None:
        return existing
    session.execute(
        _insert(session)(Asset.__table__)  # type: ignore[attr-defined]
        .values(code=code, scale=scale, description=description[:200], created_at=utcnow())
        .on_conflict_do_nothing()
    )
    asset = session.get(Asset, code)
    assert asset is not None
    return asset


def _known_asset(session: Session, code: str) -> Asset:
    existing = session.get(Asset, code)
    if existing is not None:
        return existing
    if code in KNOWN_ASSETS:
        scale, description = KNOWN_ASSETS[code]
        return ensure_asset(session, code, scale=scale, description=description)
    if code.startswith(CREDIT_ASSET_PREFIX) and _ASSET_CODE.match(code):
        return ensure_asset(session, code, scale=0, description="Carbon credits, tonnes CO2e")
    raise UnknownAsset(N_("There is no asset {asset}."), asset=code)


def check_owner(owner: str) -> str:
    """``owner`` if it is ``org:<uuid>``, ``resident:<uuid>``, ``household:<uuid>`` or
    ``system:<name>``."""
    kind, _, rest = owner.partition(":")
    if kind == "system" and _SYSTEM_NAME.match(rest):
        return owner
    if kind in OWNER_KINDS and kind != "system":
        try:
            return f"{kind}:{uuid.UUID(rest)}"
        except ValueError:
            pass
    raise InvalidInput(
        N_("The owner must be org:<id>, resident:<id>, household:<id> or system:<name>."),
        owner=owner,
    )


def resolve_owner(session: Session, owner: str) -> str:
    """An owner as clients may write it: a prefixed owner, an organisation or resident id, or a
    system account name."""
    if ":" in owner:
        return check_owner(owner)
    try:
        owner_id = uuid.UUID(owner)
    except ValueError:
        return check_owner(f"system:{owner}")
    if session.get(Organisation, owner_id) is not None:
        return f"org:{owner_id}"
    if session.get(Resident, owner_id) is not None:
        return f"resident:{owner_id}"
    raise InvalidInput(N_("There is no organisation or resident {owner}."), owner=owner)


def _check_floor(owner: str, floor: int | None) -> None:
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, int)):
        raise InvalidInput(N_("The floor must be an integer or null."))
    if owner.startswith("system:"):
        return
    if floor is None or floor < 0:
        raise InvalidInput(
            N_(
                "Accounts of organisations and people cannot go below zero: "
                "use a floor of 0 or more."
            ),
            floor=floor,
        )


def open_account(
    session: Session,
    *,
    asset: str,
    owner: str,
    purpose: str = "main",
    floor: int | None = 0,
    shards: int = 1,
    actor: str = "system:wallet",
) -> Account:
    """Open an account; ``floor=None`` for an unbounded (system) account that may go negative.

    ``shards`` > 1 makes a hot account (see ADR 0011). Raises AccountExists if the owner already
    has an account in this asset for this purpose (use :func:`account_for` to get or open).
    """
    account = _open(
        session, asset=asset, owner=owner, purpose=purpose, floor=floor, shards=shards, actor=actor
    )
    if account is None:
        from wallet.errors import AccountExists

        raise AccountExists(
            N_("{owner} already has a {asset} account for {purpose}."),
            owner=owner,
            asset=asset,
            purpose=purpose,
        )
    return account


def _open(
    session: Session,
    *,
    asset: str,
    owner: str,
    purpose: str,
    floor: int | None,
    shards: int,
    actor: str,
) -> Account | None:
    owner = check_owner(owner)
    if not _PURPOSE.match(purpose):
        raise InvalidInput(N_("{purpose} is not a valid account purpose."), purpose=purpose)
    _check_floor(owner, floor)
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput(N_("An account has 1 to {maximum} shards."), maximum=MAX_SHARDS)
    _known_asset(session, asset)
    account_id = new_id()
    inserted = session.execute(
        _insert(session)(Account.__table__)  # type: ignore[attr-defined]
        .values(
            id=account_id,
            asset=asset,
            owner=owner,
            purpose=purpose,
            floor=floor,
            shards=shards,
            frozen=False,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["owner", "asset", "purpose"])
        .returning(Account.__table__.c.id)  # type: ignore[attr-defined]
    ).all()
    if not inserted:
        return None
    session.execute(
        _BALANCE.insert(),
        [{"account_id": account_id, "shard": shard} for shard in range(shards)],
    )
    account = session.get(Account, account_id)
    assert account is not None
    audit.record(
        session,
        actor=actor,
        action="wallet.account.opened",
        subject_type="wallet_account",
        subject_id=account_id,
        payload={"asset": asset, "owner": owner, "purpose": purpose, "floor": floor},
    )
    return account


def find_account(
    session: Session, *, asset: str, owner: str, purpose: str = "main"
) -> Account | None:
    return session.exec(
        select(Account)
        .where(col(Account.owner) == owner)
        .where(col(Account.asset) == asset)
        .where(col(Account.purpose) == purpose)
    ).first()


def account_for(
    session: Session,
    *,
    asset: str,
    owner: str,
    purpose: str = "main",
    floor: int | None = 0,
    shards: int = 1,
) -> Account:
    """The owner's account in ``asset`` for ``purpose``, opened (with ``floor``) if missing."""
    owner = check_owner(owner)
    existing = find_account(session, asset=asset, owner=owner, purpose=purpose)
    if existing is not None:
        return existing
    opened = _open(
        session,
        asset=asset,
        owner=owner,
        purpose=purpose,
        floor=floor,
        shards=shards,
        actor="system:wallet",
    )
    if opened is not None:
        return opened
    found = find_account(session, asset=asset, owner=owner, purpose=purpose)
    assert found is not None  # inserted by a concurrent transaction that has committed
    return found


def system_account(session: Session, name: str, asset: str) -> Account:
    """The platform's ``name`` account in ``asset`` (see SYSTEM_ACCOUNTS for floors)."""
    floor, shards = SYSTEM_ACCOUNTS.get(name, (0, 1))
    return account_for(
        session, asset=asset, owner=f"system:{name}", purpose="main", floor=floor, shards=shards
    )


def get_account(session: Session, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(N_("No account {account_id}."), account_id=str(account_id))
    return account


@dataclass(frozen=True)
class Balance:
    """An account's balances: ``balance`` = posted credits - posted debits and ``available`` =
    balance - pending debits (what a debit may still take, down to ``floor``)."""

    account_id: uuid.UUID
    asset: str
    posted_debits: int
    posted_credits: int
    pending_debits: int
    pending_credits: int
    floor: int | None
    frozen: bool

    @property
    def balance(self) -> int:
        return self.posted_credits - self.posted_debits

    @property
    def available(self) -> int:
        return self.balance - self.pending_debits


def get_balance(session: Session, account_id: uuid.UUID) -> Balance:
    """The account's balances, summed over its shards (read-only, no locks)."""
    account = get_account(session, account_id)
    return balances_of(session, [account])[account.id]


@dataclass(frozen=True)
class OwnerTotals:
    """Credits received by a class of owners (e.g. every farmer household) in one asset."""

    accounts_credited: int
    posted_credits: int


def owner_totals(session: Session, *, owner_prefix: str, asset: str) -> OwnerTotals:
    """How many accounts of owners starting with ``owner_prefix`` ever received ``asset``, and
    how much in all: one aggregate query, whatever the number of accounts."""
    per_account = (
        sa_select(func.sum(_BALANCE.c.posted_credits).label("credits"))
        .select_from(_BALANCE.join(_ACCOUNT, _ACCOUNT.c.id == _BALANCE.c.account_id))
        .where(_ACCOUNT.c.owner.startswith(owner_prefix, autoescape=True))
        .where(_ACCOUNT.c.asset == asset)
        .group_by(_BALANCE.c.account_id)
        .subquery()
    )
    row = session.execute(
        sa_select(
            func.count().filter(per_account.c.credits > 0),
            func.coalesce(func.sum(per_account.c.credits), 0),
        )
    ).one()
    return OwnerTotals(accounts_credited=int(row[0] or 0), posted_credits=int(row[1] or 0))


def locked_balance(session: Session, account_id: uuid.UUID) -> Balance:
    """The account's balances with its balance rows locked until the transaction ends, so that
    what it reads stays true for an entry posted next in the same transaction (e.g. "debit what
    is there, up to N"). Rows are locked in the engine's order (shard), so this cannot deadlock
    with a posting on the same account."""
    account = get_account(session, account_id)
    session.execute(
        sa_select(_BALANCE.c.shard)
        .where(_BALANCE.c.account_id == account_id)
        .order_by(_BALANCE.c.shard)
        .with_for_update()
    ).all()
    return balances_of(session, [account])[account.id]


def balances_of(session: Session, accounts: list[Account]) -> dict[uuid.UUID, Balance]:
    if not accounts:
        return {}
    rows = session.execute(
        sa_select(
            _BALANCE.c.account_id,
            func.sum(_BALANCE.c.posted_debits),
            func.sum(_BALANCE.c.posted_credits),
            func.sum(_BALANCE.c.pending_debits),
            func.sum(_BALANCE.c.pending_credits),
        )
        .where(_BALANCE.c.account_id.in_([account.id for account in accounts]))
        .group_by(_BALANCE.c.account_id)
    ).all()
    sums = {row[0]: [int(value or 0) for value in row[1:]] for row in rows}
    views = {}
    for account in accounts:
        pd, pc, qd, qc = sums.get(account.id, [0, 0, 0, 0])
        views[account.id] = Balance(
            account_id=account.id,
            asset=account.asset,
            posted_debits=pd,
            posted_credits=pc,
            pending_debits=qd,
            pending_credits=qc,
            floor=account.floor,
            frozen=account.frozen,
        )
    return views


def set_frozen(session: Session, account_id: uuid.UUID, *, frozen: bool, actor: str) -> Account:
    """Freeze (no debits) or unfreeze an account; waits for postings in flight on it."""
    account = get_account(session, account_id)
    session.execute(
        sa_select(_BALANCE.c.shard)
        .where(_BALANCE.c.account_id == account_id)
        .order_by(_BALANCE.c.shard)
        .with_for_update()
    ).all()
    session.execute(
        update(_BALANCE).where(_BALANCE.c.account_id == account_id).values(frozen=frozen)
    )
    account.frozen = frozen
    session.add(account)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="wallet.account.frozen" if frozen else "wallet.account.unfrozen",
        subject_type="wallet_account",
        subject_id=account_id,
    )
    return account
