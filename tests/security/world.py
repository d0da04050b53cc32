"""A populated platform for the hostile-input tests: the Huzhou demo plus a caller for every role.

The demo (``tanhui.demo.seed``) gives every kind of object the routes reach: projects, periods,
batches, listings, orders, payments, certificates, pledges, judicial cases, payout rounds,
partners, rewards and vouchers. On top of it this module adds, for every organisation kind, an
owner, a member and a viewer of the demo's organisation of that kind ("A"), the owner of a second
organisation of the same kind ("B", who must not reach A's objects), a platform administrator, the
demo resident and a second resident. Every user gets an API token and a browser session.

Building it takes the demo's ~10 s once per test process; tests copy the SQLite file.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Response
from sqlmodel import Session, col, select

from market.models import (
    CompensationStandard,
    JudicialCase,
    Listing,
    ListingStatus,
    Order,
    OrderStatus,
    Payment,
    PayoutRound,
    Provider,
)
from market.rewards.models import Redemption, RedemptionStatus, Reward
from market.rewards.service.redemptions import code_of
from registry.inclusion.models import InclusionEvent, InclusionPartner, InclusionPartnerKey
from registry.models import (
    Batch,
    Certificate,
    Contract,
    Household,
    MonitoringPeriod,
    Parcel,
    Pledge,
    Project,
    Retirement,
    SerialBlock,
)
from tanhui import demo, identity
from tanhui.auth import SESSION_COOKIE, set_session_cookie
from tanhui.db import create_engine, unit_of_work
from tanhui.models import Organisation, OrgKind, Resident, Role
from tanhui.settings import Settings, use_settings
from wallet.models import Account, Hold, JournalEntry

ROLES = (Role.owner, Role.member, Role.viewer)
PASSWORD = "matrix password 2026"
OTHER_RESIDENT_PHONE = "+8613900000099"


@dataclass(frozen=True)
class Caller:
    """Who sends a request: how to authenticate as them, and what they are."""

    name: str
    kind: OrgKind | None = None
    role: Role | None = None
    other: bool = False  # the second organisation of its kind, or the second resident
    resident: bool = False
    admin: bool = False
    token: str | None = None
    cookie: str | None = None
    csrf: str | None = None
    email: str | None = None

    @property
    def anonymous(self) -> bool:
        return not (self.resident or self.admin or self.kind)

    def headers(self, *, browser: bool) -> dict[str, str]:
        """Bearer token for API clients; session cookie (and its CSRF token) in a browser."""
        if self.anonymous:
            return {}
        if self.token and not browser:
            return {"Authorization": f"Bearer {self.token}"}
        assert self.cookie and self.csrf
        return {"Cookie": f"{SESSION_COOKIE}={self.cookie}", "X-CSRF-Token": self.csrf}


@dataclass
class World:
    database_path: Path
    callers: dict[str, Caller]
    organisations: dict[str, uuid.UUID]  # "A:cooperative", "B:cooperative", ...
    objects: dict[str, str]  # path parameter name (or a label) → a value owned by the A side
    extra: dict[str, Any] = field(default_factory=dict)

    def caller(self, name: str) -> Caller:
        return self.callers[name]


def caller_name(kind: OrgKind, role: Role, *, other: bool = False) -> str:
    return f"{'other ' if other else ''}{kind.value}:{role.value}"


def _cookie_for(key: str) -> str:
    response = Response()
    set_session_cookie(response, key)
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def _first(session: Session, query: Any) -> Any:
    found = session.exec(query).first()
    assert found is not None, f"the demo has no row for {query}"
    return found


def _demo_organisation(session: Session, kind: OrgKind) -> Organisation:
    names = [name for org_kind, name, _email, _label in demo.DEMO_ORGANISATIONS if org_kind == kind]
    return _first(session, select(Organisation).where(col(Organisation.name) == names[0]))


def _user_caller(
    session: Session,
    name: str,
    *,
    organisation: Organisation | None,
    role: Role | None,
    admin: bool = False,
    other: bool = False,
) -> Caller:
    email = f"{name.replace(' ', '-').replace(':', '-')}@matrix.example.cn"
    user = identity.create_user(
        session,
        email=email,
        password=PASSWORD,
        organisation=organisation,
        role=role,
        is_platform_admin=admin,
        actor="system:matrix",
    )
    token = identity.create_api_token(session, user=user, name="matrix").token
    started = identity.start_web_session(session, user=user)
    return Caller(
        name=name,
        kind=organisation.kind if organisation else None,
        role=role,
        other=other,
        admin=admin,
        token=token,
        cookie=_cookie_for(started.key),
        csrf=started.record.csrf_token,
        email=email,
    )


def _resident_caller(session: Session, resident: Resident, name: str, *, other: bool) -> Caller:
    started = identity.start_web_session(session, resident=resident)
    return Caller(
        name=name,
        resident=True,
        other=other,
        cookie=_cookie_for(started.key),
        csrf=started.record.csrf_token,
    )


def seed_template(settings: Settings, path: Path) -> dict[str, Any]:
    """Seed the demo and the callers into the migrated SQLite file ``path``; returns the
    callers, organisations and object ids as plain data (kept beside the file)."""
    configured = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    use_settings(configured)
    engine = create_engine(configured)
    with unit_of_work(engine) as session:
        demo.seed(session, lambda _message: None)
    callers: dict[str, Caller] = {"anonymous": Caller(name="anonymous")}
    organisations: dict[str, uuid.UUID] = {}
    with unit_of_work(engine) as session:
        for kind in OrgKind:
            first = _demo_organisation(session, kind)
            organisations[f"A:{kind.value}"] = first.id
            for role in ROLES:
                name = caller_name(kind, role)
                callers[name] = _user_caller(session, name, organisation=first, role=role)
            second = identity.create_organisation(
                session, name=f"Matrix second {kind.value}", kind=kind, actor="system:matrix"
            )
            organisations[f"B:{kind.value}"] = second.id
            name = caller_name(kind, Role.owner, other=True)
            callers[name] = _user_caller(
                session, name, organisation=second, role=Role.owner, other=True
            )
        callers["admin"] = _user_caller(session, "admin", organisation=None, role=None, admin=True)
        resident = identity.find_resident_by_phone(session, demo.DEMO_RESIDENT_PHONE)
        assert resident is not None
        callers["resident"] = _resident_caller(session, resident, "resident", other=False)
        second_resident = identity.create_resident(
            session, phone=OTHER_RESIDENT_PHONE, actor="system:matrix"
        )
        callers["other resident"] = _resident_caller(
            session, second_resident, "other resident", other=True
        )
        objects = _objects(session, organisations, resident)
        objects["reversal_id"] = str(_proposed_loss(session, organisations))
        # A spare token of the enterprise owner: revoking it is allowed to its owner and admins.
        owner = identity.find_user_by_email(
            session, callers[caller_name(OrgKind.enterprise, Role.owner)].email or ""
        )
        assert owner is not None
        spare = identity.create_api_token(session, user=owner, name="spare")
        objects["token_id"] = str(spare.record.id)
        # A login whose password the public sign-in route may use.
        identity.create_user(
            session,
            email="signin@matrix.example.cn",
            password=PASSWORD,
            organisation=session.get(Organisation, organisations["A:enterprise"]),
            role=Role.viewer,
            actor="system:matrix",
        )
    engine.dispose()
    data = {
        "callers": {name: caller.__dict__ for name, caller in callers.items()},
        "organisations": {name: str(value) for name, value in organisations.items()},
        "objects": objects,
    }
    return json.loads(json.dumps(data, default=str))


def _proposed_loss(session: Session, organisations: dict[str, uuid.UUID]) -> uuid.UUID:
    """A loss the A cooperative proposed on its project, for the authority to decide."""
    from datetime import date

    from registry.models import LossCause
    from registry.service import projects, reversals
    from registry.service.actors import Actor

    coop = organisations["A:cooperative"]
    project = _first(
        session,
        select(Project)
        .where(col(Project.cooperative_id) == coop)
        .where(col(Project.code) == "AJ0001"),
    )
    proposer = Actor(
        ref="system:matrix", organisation_id=coop, org_kind=OrgKind.cooperative, role=Role.owner
    )
    return reversals.propose_reversal(
        session,
        actor=proposer,
        project_id=project.id,
        parcel_ids=[projects.project_parcels(session, project.id)[0].id],
        cause=LossCause.pest,
        occurred_on=date(2025, 6, 1),
        estimated_loss_t=1,
    ).id


def _objects(
    session: Session, organisations: dict[str, uuid.UUID], resident: Resident
) -> dict[str, str]:
    """Ids of objects on the A side, by the path parameter that names them."""
    coop = organisations["A:cooperative"]
    enterprise = organisations["A:enterprise"]
    objects: dict[str, Any] = {}
    project = _first(
        session,
        select(Project)
        .where(col(Project.cooperative_id) == coop)
        .where(col(Project.code) == "AJ0001"),
    )
    objects["project_id"] = project.id
    objects["project_code"] = project.code
    objects["household_id"] = _first(
        session, select(Household).where(col(Household.cooperative_id) == coop)
    ).id
    objects["parcel_id"] = _first(
        session, select(Parcel).where(col(Parcel.cooperative_id) == coop)
    ).id
    objects["contract_id"] = _first(
        session, select(Contract).where(col(Contract.cooperative_id) == coop)
    ).id
    objects["period_id"] = _first(
        session,
        select(MonitoringPeriod).where(col(MonitoringPeriod.project_id) == project.id),
    ).id
    batch = _first(session, select(Batch).where(col(Batch.project_id) == project.id))
    objects["batch_id"] = batch.id
    objects["batch"] = batch.serial_prefix
    objects["serial"] = _first(
        session, select(SerialBlock).where(col(SerialBlock.batch_id) == batch.id)
    ).first
    retirement = _first(
        session, select(Retirement).where(col(Retirement.holder) == f"org:{enterprise}")
    )
    objects["certificate_id"] = _first(
        session, select(Certificate).where(col(Certificate.retirement_id) == retirement.id)
    ).id
    objects["pledge_id"] = _first(session, select(Pledge)).id
    objects["account_id"] = _first(
        session, select(Account).where(col(Account.owner) == f"org:{coop}")
    ).id
    objects["entry_id"] = _first(session, select(JournalEntry)).id
    objects["hold_id"] = _first(session, select(Hold)).id
    listing = _first(
        session,
        select(Listing)
        .where(col(Listing.seller_id) == coop)
        .where(col(Listing.status) == ListingStatus.active),
    )
    objects["listing_id"] = listing.id
    objects["listing_minimum_t"] = listing.min_order_t
    order = _first(
        session,
        select(Order)
        .where(col(Order.buyer_id) == enterprise)
        .where(col(Order.status) == OrderStatus.settled),
    )
    objects["order_id"] = order.id
    objects["payment_id"] = _first(
        session, select(Payment).where(col(Payment.provider) == Provider.sandbox)
    ).id
    objects["case_id"] = _first(
        session,
        select(JudicialCase).where(col(JudicialCase.court_id) == organisations["A:court"]),
    ).id
    objects["round_id"] = _first(
        session,
        select(PayoutRound).where(col(PayoutRound.fund_id) == organisations["A:compensation_fund"]),
    ).id
    objects["standard_id"] = _first(session, select(CompensationStandard)).id
    objects["resident_id"] = resident.id
    objects["receipt_id"] = _first(
        session,
        select(InclusionEvent).where(col(InclusionEvent.resident_id) == resident.id),
    ).id
    partner = _first(
        session,
        select(InclusionPartner).where(
            col(InclusionPartner.organisation_id) == organisations["A:data_partner"]
        ),
    )
    objects["partner_id"] = partner.id
    objects["key_id"] = _first(
        session,
        select(InclusionPartnerKey).where(col(InclusionPartnerKey.partner_id) == partner.id),
    ).id
    objects["reward_id"] = _first(
        session,
        select(Reward).where(col(Reward.sponsor_id) == organisations["A:merchant"]),
    ).id
    redemption = _first(
        session,
        select(Redemption)
        .where(col(Redemption.resident_id) == resident.id)
        .where(col(Redemption.status) == RedemptionStatus.issued),
    )
    objects["redemption_id"] = redemption.id
    objects["voucher_code"] = code_of(redemption)
    return {name: str(value) for name, value in objects.items()}


def load_world(template: Path, data: dict[str, Any], folder: Path) -> World:
    """A private copy of the seeded template."""
    path = folder / "world.db"
    shutil.copyfile(template, path)
    callers = {
        name: Caller(
            **{
                **values,
                "kind": OrgKind(values["kind"]) if values["kind"] else None,
                "role": Role(values["role"]) if values["role"] else None,
            }
        )
        for name, values in data["callers"].items()
    }
    return World(
        database_path=path,
        callers=callers,
        organisations={name: uuid.UUID(value) for name, value in data["organisations"].items()},
        objects=dict(data["objects"]),
    )
