"""The authorisation matrix: every route of the app × every kind of caller → the expected outcome.

``RULES`` below is the specification: for each (method, path template) of the route table (API
and pages) who may call it. The test sends each route a request that passes validation (so that
services, which check roles themselves, get to answer) as: anonymous, the demo resident and a
second resident, a platform administrator, the owner, member and viewer of the demo's
organisation of every kind ("A"), and the owner of a second organisation of the same kind ("B")
reaching for A's objects. Outcomes are classes:

- ``UNAUTH``: 401, or a 303 to a sign-in page (``/login``, the residents' ``/app``);
- ``FORBIDDEN``: 403;
- ``HIDDEN``: 404 (objects of another organisation or resident do not exist for the caller);
- ``ALLOWED``: anything else (on a route that names an object in its path, also not 404);

and no request may answer 5xx. A route without an entry fails :func:`test_every_route_has_a_rule`:
add one here, with the rule the route is meant to enforce.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tanhui import identity, sms
from tanhui.app import create_app
from tanhui.auth import ANON_CSRF_COOKIE
from tanhui.db import create_engine, unit_of_work
from tanhui.models import OrgKind, Role
from tanhui.settings import Settings
from tests.security.probes import (
    Prepared,
    RouteKey,
    Schemas,
    fill_path,
    minimal_request,
    path_parameters,
    route_table,
)
from tests.security.world import PASSWORD, Caller, World, caller_name


class Outcome(StrEnum):
    UNAUTH = "401/sign-in"
    FORBIDDEN = "403"
    HIDDEN = "404"
    ALLOWED = "allowed"


UNAUTH, FORBIDDEN, HIDDEN, ALLOWED = Outcome
K = OrgKind
ALL_KINDS = tuple(OrgKind)
ANY_ROLE = Role.viewer
SIGN_IN_LOCATIONS = ("/login", "/app")


@dataclass(frozen=True)
class Rule:
    """Who may call a route.

    ``kinds`` maps each organisation kind allowed to the lowest role allowed; users of a kind
    below that role get ``below``, users of other kinds ``others``. ``hidden_from`` lists the
    kinds whose *other* organisation ("B") must get 404 for A's object in the path.
    """

    kinds: dict[OrgKind, Role] = field(default_factory=dict)
    anonymous: Outcome = UNAUTH
    resident: Outcome = FORBIDDEN
    other_resident: Outcome | None = None  # None: as ``resident``
    admin: Outcome = FORBIDDEN
    others: Outcome = FORBIDDEN
    below: Outcome = FORBIDDEN
    hidden_from: tuple[OrgKind, ...] = ()
    # outcome for users of these kinds whose role passes (the object is not theirs, say)
    kind_outcome: dict[OrgKind, Outcome] = field(default_factory=dict)
    strict: bool | None = None  # ALLOWED excludes 404 (default: when the path names an object)
    note: str = ""

    def expected(self, caller: Caller) -> Outcome:
        if caller.anonymous:
            return self.anonymous
        if caller.resident:
            if caller.other and self.other_resident is not None:
                return self.other_resident
            return self.resident
        if caller.admin:
            return self.admin
        assert caller.kind is not None and caller.role is not None
        minimum = self.kinds.get(caller.kind)
        if minimum is None:
            return self.kind_outcome.get(caller.kind, self.others)
        if _rank(caller.role) < _rank(minimum):
            return self.below
        if caller.other and caller.kind in self.hidden_from:
            return HIDDEN
        return self.kind_outcome.get(caller.kind, ALLOWED)


def _rank(role: Role) -> int:
    return {Role.viewer: 1, Role.member: 2, Role.owner: 3}[role]


def kinds(*allowed: OrgKind, minimum: Role = Role.member) -> dict[OrgKind, Role]:
    return dict.fromkeys(allowed, minimum)


def org(
    *allowed: OrgKind,
    minimum: Role = Role.member,
    admin: Outcome = ALLOWED,
    hidden: bool = False,
    **options: Any,
) -> Rule:
    """Users of organisations of ``allowed`` kinds with at least ``minimum``; with ``hidden``
    the path names an object of the A organisation of the first kind, which B must not see."""
    return Rule(
        kinds=kinds(*allowed, minimum=minimum),
        admin=admin,
        hidden_from=(allowed[0],) if hidden else (),
        **options,
    )


PUBLIC = Rule(
    kinds=dict.fromkeys(ALL_KINDS, ANY_ROLE), anonymous=ALLOWED, resident=ALLOWED, admin=ALLOWED
)
SIGNED_IN = replace(PUBLIC, anonymous=UNAUTH)
ANY_USER = Rule(kinds=dict.fromkeys(ALL_KINDS, ANY_ROLE), admin=ALLOWED)
ANY_ORG_USER = replace(ANY_USER, admin=FORBIDDEN, note="needs an organisation account")
ANY_ORG_MEMBER = Rule(kinds=dict.fromkeys(ALL_KINDS, Role.member), note="any organisation")
ADMIN_ONLY = Rule(admin=ALLOWED)
RESIDENT_ONLY = Rule(resident=ALLOWED)
# The resident's own objects: another resident and every user are told they do not exist.
RESIDENT_OWN = Rule(resident=ALLOWED, other_resident=HIDDEN, admin=FORBIDDEN)
# Residents' app pages: anyone who is not a signed-in resident is sent to the phone sign-in.
APP_PAGE = Rule(resident=ALLOWED, admin=UNAUTH, others=UNAUTH)
APP_OWN_PAGE = replace(APP_PAGE, other_resident=HIDDEN)
LEDGER_OPERATOR = org(K.platform, note="platform admins and platform services")
SELLER = (K.cooperative, K.platform)
SPONSORS = (K.merchant, K.data_partner, K.platform, K.enterprise)  # who offers rewards
NOT_THEIR_VOUCHER = {K.merchant: HIDDEN, K.enterprise: HIDDEN, K.platform: HIDDEN}
FACE_ANY_ORG = replace(ANY_ORG_USER, note="market pages: any organisation, admins need one")


@dataclass(frozen=True)
class Signed:
    """Machine-to-machine routes authenticated by a signature over the body, not a principal:
    every caller without the signature gets ``status``."""

    status: int


RuleLike = Rule | Signed

# Reading a project and what hangs off it: its cooperative, and the verifiers and the authority
# who review every project.
SAME_AS_PROJECT = Rule(
    kinds={K.cooperative: ANY_ROLE, K.verifier: ANY_ROLE, K.authority: ANY_ROLE},
    admin=ALLOWED,
    others=HIDDEN,
    hidden_from=(K.cooperative,),
)

# --- the table -----------------------------------------------------------------------------

RULES: dict[str, RuleLike] = {
    # kernel: identity and administration
    "POST /api/v1/auth/session": PUBLIC,
    "POST /api/v1/auth/logout": PUBLIC,
    "POST /api/v1/auth/residents/code": PUBLIC,
    "POST /api/v1/auth/residents/session": PUBLIC,
    "GET /api/v1/me": SIGNED_IN,
    "POST /api/v1/auth/tokens": ANY_USER,
    "GET /api/v1/auth/tokens": ANY_USER,
    # the path names a spare token of the A enterprise's owner
    "DELETE /api/v1/auth/tokens/{token_id}": org(
        K.enterprise, minimum=Role.owner, hidden=True, below=HIDDEN, others=HIDDEN
    ),
    "GET /api/v1/admin/organisations": ADMIN_ONLY,
    "POST /api/v1/admin/organisations": ADMIN_ONLY,
    "POST /api/v1/admin/users": ADMIN_ONLY,
    # wallet: platform operators write; owners (and the platform) read their accounts
    "POST /api/v1/wallet/accounts": LEDGER_OPERATOR,
    "GET /api/v1/wallet/accounts/{account_id}": org(
        K.cooperative, K.platform, minimum=ANY_ROLE, hidden=True, others=HIDDEN, resident=HIDDEN
    ),
    "POST /api/v1/wallet/accounts/{account_id}/freeze": LEDGER_OPERATOR,
    "GET /api/v1/wallet/accounts/{account_id}/postings": org(
        K.cooperative, K.platform, minimum=ANY_ROLE, hidden=True, others=HIDDEN, resident=HIDDEN
    ),
    "POST /api/v1/wallet/entries": LEDGER_OPERATOR,
    "POST /api/v1/wallet/entries/batch": LEDGER_OPERATOR,
    "GET /api/v1/wallet/entries/{entry_id}": LEDGER_OPERATOR,
    "POST /api/v1/wallet/holds": LEDGER_OPERATOR,
    "GET /api/v1/wallet/holds/{hold_id}": LEDGER_OPERATOR,
    "POST /api/v1/wallet/holds/{hold_id}/capture": replace(LEDGER_OPERATOR, strict=False),
    "POST /api/v1/wallet/holds/{hold_id}/void": replace(LEDGER_OPERATOR, strict=False),
    # registry: cooperatives' households, parcels and contracts
    "POST /api/v1/registry/households": org(K.cooperative),
    "GET /api/v1/registry/households": org(K.cooperative, minimum=ANY_ROLE),
    "GET /api/v1/registry/households/{household_id}": org(
        K.cooperative, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/households/{household_id}/personal-data": org(
        K.cooperative, minimum=Role.owner, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/parcels": org(K.cooperative),
    "POST /api/v1/registry/parcels/import": org(K.cooperative),
    "GET /api/v1/registry/parcels": org(K.cooperative, minimum=ANY_ROLE),
    # a verifier accepts a cooperative's registered area off the polygon (not the platform)
    "POST /api/v1/registry/area-acceptances": org(K.verifier, admin=FORBIDDEN),
    # verifiers and the authority review projects' ground
    "GET /api/v1/registry/parcels/{parcel_id}": org(
        K.cooperative, K.verifier, K.authority, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "PUT /api/v1/registry/parcels/{parcel_id}/holdings": org(
        K.cooperative,
        hidden=True,
        kind_outcome={K.verifier: FORBIDDEN, K.authority: FORBIDDEN},  # they see the parcel
        others=HIDDEN,
    ),
    # admins have no organisation to sign for: 422 names the missing cooperative
    "POST /api/v1/registry/contracts": org(K.cooperative),
    "GET /api/v1/registry/contracts": org(K.cooperative, minimum=ANY_ROLE),
    "GET /api/v1/registry/contracts/{contract_id}": org(
        K.cooperative, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/contracts/{contract_id}/terminate": org(
        K.cooperative, minimum=Role.owner, hidden=True
    ),
    "POST /api/v1/registry/contracts/{contract_id}/settlements": org(
        K.cooperative, hidden=True, others=HIDDEN
    ),
    "GET /api/v1/registry/contracts/{contract_id}/settlements": org(
        K.cooperative, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/ets-prices": org(K.authority),
    "GET /api/v1/registry/ets-prices/average": ANY_USER,
    # registry: projects and their lifecycle (verifiers and the authority see every project)
    "POST /api/v1/registry/projects": org(K.cooperative),
    "GET /api/v1/registry/projects": ANY_USER,
    "GET /api/v1/registry/projects/{project_id}": SAME_AS_PROJECT,
    "POST /api/v1/registry/projects/{project_id}/parcels": org(
        K.cooperative, admin=FORBIDDEN, hidden=True
    ),
    "DELETE /api/v1/registry/projects/{project_id}/parcels": org(
        K.cooperative, admin=FORBIDDEN, hidden=True
    ),
    "GET /api/v1/registry/projects/{project_id}/parcels": SAME_AS_PROJECT,
    "POST /api/v1/registry/projects/{project_id}/collect": org(
        K.cooperative, admin=FORBIDDEN, hidden=True
    ),
    "POST /api/v1/registry/projects/{project_id}/periods": org(
        K.cooperative, admin=FORBIDDEN, hidden=True
    ),
    "GET /api/v1/registry/projects/{project_id}/periods": SAME_AS_PROJECT,
    "GET /api/v1/registry/periods/{period_id}": SAME_AS_PROJECT,
    "GET /api/v1/registry/periods/{period_id}/report": SAME_AS_PROJECT,
    "POST /api/v1/registry/periods/{period_id}/certify": org(K.verifier, admin=FORBIDDEN),
    "POST /api/v1/registry/periods/{period_id}/return": org(K.verifier, admin=FORBIDDEN),
    "POST /api/v1/registry/periods/{period_id}/file": org(K.authority, admin=FORBIDDEN),
    "POST /api/v1/registry/periods/{period_id}/issue": org(K.authority, admin=FORBIDDEN),
    "POST /api/v1/registry/projects/{project_id}/suspend": org(K.authority),
    "POST /api/v1/registry/projects/{project_id}/resume": org(K.authority),
    "POST /api/v1/registry/projects/{project_id}/terminate": org(K.authority),
    "POST /api/v1/registry/projects/{project_id}/credits-decision": org(K.authority),
    "GET /api/v1/registry/projects/{project_id}/batches": SAME_AS_PROJECT,
    # a loss is proposed by the project's cooperative or a verifier and decided by the authority
    "POST /api/v1/registry/projects/{project_id}/reversals": Rule(
        kinds=kinds(K.cooperative, K.verifier),
        hidden_from=(K.cooperative,),
        strict=False,
    ),
    "POST /api/v1/registry/reversals/{reversal_id}/confirm": org(K.authority, admin=FORBIDDEN),
    "POST /api/v1/registry/reversals/{reversal_id}/reject": org(K.authority, admin=FORBIDDEN),
    "POST /api/v1/registry/projects/{project_id}/reversals/make-good": org(
        K.cooperative, admin=FORBIDDEN, hidden=True, strict=False
    ),
    "GET /api/v1/registry/projects/{project_id}/reversals": SAME_AS_PROJECT,
    # registry: keys, credits, certificates, pledges
    "POST /api/v1/registry/keys": Rule(kinds=kinds(*ALL_KINDS, minimum=Role.owner), admin=ALLOWED),
    "GET /api/v1/registry/keys": ANY_USER,
    "GET /api/v1/registry/batches/{batch_id}": ANY_USER,
    "GET /api/v1/registry/holdings": ANY_ORG_USER,
    "GET /api/v1/registry/serials/{serial}": PUBLIC,
    "POST /api/v1/registry/transfers": replace(ANY_ORG_MEMBER),
    "POST /api/v1/registry/retirements": replace(ANY_ORG_MEMBER),
    "GET /api/v1/registry/retirements": ANY_ORG_USER,
    "GET /api/v1/registry/certificates/{certificate_id}": ANY_USER,
    "GET /api/v1/registry/certificates/{certificate_id}/pdf": ANY_USER,
    "POST /api/v1/registry/pledges": replace(ANY_ORG_MEMBER),
    "GET /api/v1/registry/pledges": ANY_USER,
    # the pledge's parties (the A cooperative pledged; the lender is a third organisation)
    "POST /api/v1/registry/pledges/{pledge_id}/release": org(
        K.cooperative, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/pledges/{pledge_id}/enforce": org(
        K.cooperative, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/pledges/{pledge_id}/accept": org(
        K.cooperative, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/registry/pledges/{pledge_id}/default": org(
        K.cooperative, hidden=True, others=HIDDEN
    ),
    # a default is confirmed by the pledgor's cooperative or by the platform
    "POST /api/v1/registry/pledges/{pledge_id}/default/confirm": org(
        K.cooperative, K.platform, hidden=True, others=HIDDEN
    ),
    # the public explorer
    "GET /api/v1/public/projects": PUBLIC,
    "GET /api/v1/public/batches": PUBLIC,
    "GET /api/v1/public/batches/{batch}/provenance": PUBLIC,
    "GET /api/v1/public/batches/{batch}/report": PUBLIC,
    "GET /api/v1/public/retirements": PUBLIC,
    "GET /api/v1/public/certificates/{certificate_id}": PUBLIC,
    "GET /api/v1/public/certificates/{certificate_id}/pdf": PUBLIC,
    "GET /api/v1/public/keys": PUBLIC,
    "GET /api/v1/public/log/checkpoint": PUBLIC,
    "GET /api/v1/public/log/key": PUBLIC,
    "GET /api/v1/public/log/entries": PUBLIC,
    "GET /api/v1/public/log/proofs/inclusion": PUBLIC,
    "GET /api/v1/public/log/proofs/consistency": PUBLIC,
    # carbon inclusion
    "POST /api/v1/points/events": Signed(401),
    "GET /api/v1/points/residents/{resident_id}": replace(
        RESIDENT_OWN, admin=ALLOWED, others=HIDDEN
    ),
    "GET /api/v1/points/residents/{resident_id}/receipts": replace(
        RESIDENT_OWN, admin=ALLOWED, others=HIDDEN
    ),
    "GET /api/v1/points/receipts/{receipt_id}": replace(RESIDENT_OWN, admin=ALLOWED),
    "PUT /api/v1/points/me/citizen-card": RESIDENT_ONLY,
    "DELETE /api/v1/points/me/citizen-card": RESIDENT_ONLY,
    "GET /api/v1/points/methodologies": PUBLIC,
    "POST /api/v1/points/methodologies": ADMIN_ONLY,
    "POST /api/v1/points/partners": ADMIN_ONLY,
    "GET /api/v1/points/partners": ADMIN_ONLY,
    "GET /api/v1/points/partners/{partner_id}": org(
        K.data_partner, minimum=Role.owner, hidden=True, others=HIDDEN, below=HIDDEN
    ),
    "PATCH /api/v1/points/partners/{partner_id}": ADMIN_ONLY,
    "POST /api/v1/points/partners/{partner_id}/keys": org(
        K.data_partner, minimum=Role.owner, hidden=True, others=HIDDEN, below=HIDDEN
    ),
    "DELETE /api/v1/points/partners/{partner_id}/keys/{key_id}": org(
        K.data_partner, minimum=Role.owner, hidden=True, others=HIDDEN, below=HIDDEN
    ),
    "GET /api/v1/points/pools": PUBLIC,
    "POST /api/v1/points/pools": ADMIN_ONLY,
    "GET /api/v1/points/rewards": PUBLIC,
    "GET /api/v1/points/rewards-fund": PUBLIC,
    "POST /api/v1/points/rewards": org(*SPONSORS),
    "PATCH /api/v1/points/rewards/{reward_id}": org(K.merchant, hidden=True, others=HIDDEN),
    "POST /api/v1/points/redemptions": RESIDENT_ONLY,
    "GET /api/v1/points/redemptions": RESIDENT_ONLY,
    "GET /api/v1/points/redemptions/{redemption_id}": RESIDENT_OWN,
    "POST /api/v1/points/redemptions/{redemption_id}/cancel": RESIDENT_OWN,
    "GET /api/v1/points/vouchers/{redemption_id}/qr.svg": RESIDENT_OWN,
    "GET /api/v1/points/vouchers/{redemption_id}/qr.png": RESIDENT_OWN,
    # a voucher is honoured by its reward's sponsor; to anyone else the code does not exist
    "POST /api/v1/points/vouchers/confirm": org(
        K.data_partner, *SPONSORS, hidden=True, kind_outcome=NOT_THEIR_VOUCHER, others=HIDDEN
    ),
    # the caller's own organisation's vouchers (an empty list for kinds that sponsor nothing)
    "GET /api/v1/points/merchant/vouchers": ANY_USER,
    "GET /api/v1/points/merchant/reimbursements": ANY_USER,  # its own organisation's only
    # market
    "GET /api/v1/market/listings": PUBLIC,
    "GET /api/v1/market/listings/{listing_id}": PUBLIC,
    "POST /api/v1/market/listings": org(*SELLER),
    "POST /api/v1/market/listings/{listing_id}/delist": org(
        *SELLER, hidden=True, kind_outcome={K.platform: HIDDEN}
    ),
    "POST /api/v1/market/orders": replace(ANY_ORG_MEMBER),
    "GET /api/v1/market/orders": ANY_USER,
    "GET /api/v1/market/orders/{order_id}": org(
        K.enterprise, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/market/orders/{order_id}/checkout": org(K.enterprise, hidden=True, others=HIDDEN),
    "POST /api/v1/market/orders/{order_id}/cancel": org(K.enterprise, hidden=True, others=HIDDEN),
    "GET /api/v1/market/orders/{order_id}/receipt": org(
        K.enterprise, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/market/sandbox/payments/{payment_id}/complete": org(
        K.enterprise, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/market/sandbox/payments/{payment_id}/cancel": org(
        K.enterprise, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/market/webhooks/stripe": Signed(400),
    "POST /api/v1/market/bank-transfers/confirm": org(K.platform),
    "GET /api/v1/market/holds": ANY_ORG_USER,
    "GET /api/v1/market/buyers/verifications": org(K.platform),
    "POST /api/v1/market/buyers/{organisation_id}/verification": org(K.platform),
    # revoking twice: the second finds nothing (404)
    "POST /api/v1/market/buyers/{organisation_id}/verification/revoke": org(
        K.platform, strict=False
    ),
    "GET /api/v1/market/bank-transfers": org(K.platform),
    "POST /api/v1/market/bank-transfers/{order_id}/refund": org(K.platform, strict=False),
    "GET /api/v1/market/orders/{order_id}/refunds": org(
        K.enterprise, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    # a court records judicial-restoration cases, a fund ecological-compensation ones (ADR 0091)
    "POST /api/v1/market/compensation/cases": org(K.court, K.compensation_fund, admin=FORBIDDEN),
    "GET /api/v1/market/compensation/cases": ANY_USER,
    "GET /api/v1/market/compensation/cases/{case_id}": org(
        K.court, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    # only the case's defendant (an enterprise outside the callers) orders for it
    "POST /api/v1/market/compensation/cases/{case_id}/orders": Rule(others=HIDDEN, admin=HIDDEN),
    "GET /api/v1/market/compensation/cases/{case_id}/verification": org(
        K.court, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    # the fund's standards and rounds are read by its members only (viewers too are refused)
    "POST /api/v1/market/compensation/standards": org(K.compensation_fund, admin=FORBIDDEN),
    "GET /api/v1/market/compensation/standards": org(K.compensation_fund, admin=FORBIDDEN),
    "POST /api/v1/market/compensation/deposits": org(K.platform),
    "POST /api/v1/market/compensation/payout-rounds": org(K.compensation_fund, admin=FORBIDDEN),
    "GET /api/v1/market/compensation/payout-rounds": org(K.compensation_fund, admin=FORBIDDEN),
    "GET /api/v1/market/compensation/payout-rounds/{round_id}": org(
        K.compensation_fund, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "POST /api/v1/market/compensation/payout-rounds/{round_id}/pay": org(
        K.compensation_fund, hidden=True, admin=FORBIDDEN
    ),
    "GET /api/v1/market/price-index": PUBLIC,
    "GET /api/v1/market/price-index.svg": PUBLIC,
    "GET /api/v1/market/statements/enterprise": ANY_USER,
    "GET /api/v1/market/statements/cooperative": org(K.cooperative, K.platform, minimum=ANY_ROLE),
    "GET /api/v1/market/statements/households/{household_id}": org(
        K.cooperative, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "GET /api/v1/market/statements/households/{household_id}/link": org(
        K.cooperative, minimum=ANY_ROLE, hidden=True, others=HIDDEN
    ),
    "GET /api/v1/market/statements/by-link/{token}": PUBLIC,
    "GET /api/v1/mrv/methodologies": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    # pages: everyone
    "GET /": PUBLIC,
    "GET /explorer": PUBLIC,
    "GET /projects/{code}": PUBLIC,
    "GET /verify": PUBLIC,
    "GET /verify/{certificate_id}": PUBLIC,
    "GET /methodologies": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "POST /logout": PUBLIC,
    "GET /lang/{locale}": PUBLIC,
    "GET /problems/{code}": PUBLIC,
    "GET /price-index": PUBLIC,
    "GET /market": PUBLIC,
    "GET /market/listings/{listing_id}": PUBLIC,
    "GET /h/{token}": PUBLIC,
    "GET /points/methodologies": PUBLIC,
    # residents' app
    "GET /app": PUBLIC,
    "POST /app/code": PUBLIC,
    "POST /app/login": PUBLIC,
    # signing out of the app ends whatever session there is and lands on its sign-in page: a
    # 303 to /app for everyone, which is what a refusal looks like too
    "POST /app/logout": Rule(
        anonymous=UNAUTH, resident=UNAUTH, admin=UNAUTH, others=UNAUTH, note="sign-out"
    ),
    "GET /app/manifest.webmanifest": PUBLIC,
    "GET /app/sw.js": PUBLIC,
    "GET /app/signed-out": PUBLIC,  # nobody's page, kept with the offline shell
    "GET /app/settings": APP_PAGE,
    "POST /app/settings": APP_PAGE,
    "GET /app/receipts": APP_PAGE,
    "GET /app/receipts/{receipt_id}": APP_OWN_PAGE,
    "GET /app/rewards": APP_PAGE,
    "POST /app/rewards/{reward_id}/redeem": APP_PAGE,
    "GET /app/vouchers": APP_PAGE,
    "GET /app/vouchers/{redemption_id}": APP_OWN_PAGE,
    # an image, not a page: 404 for anyone but its resident
    "GET /app/vouchers/{redemption_id}/qr.svg": replace(
        RESIDENT_OWN, anonymous=HIDDEN, others=HIDDEN, admin=HIDDEN
    ),
    "POST /app/vouchers/{redemption_id}/cancel": APP_OWN_PAGE,
    "GET /app/card": APP_PAGE,
    "POST /app/card": APP_PAGE,
    "GET /app/pool": APP_PAGE,
    # platform administration pages
    "GET /admin": ADMIN_ONLY,
    "POST /admin/organisations": ADMIN_ONLY,
    "POST /admin/users": ADMIN_ONLY,
    "GET /admin/audit": ADMIN_ONLY,
    "GET /admin/points": ADMIN_ONLY,
    "POST /admin/points/partners": ADMIN_ONLY,
    "POST /admin/points/partners/{partner_id}/keys": ADMIN_ONLY,
    "POST /admin/points/partners/{partner_id}/keys/{key_id}/revoke": ADMIN_ONLY,
    "POST /admin/points/methodologies": ADMIN_ONLY,
    # merchants
    "GET /merchant": org(*SPONSORS, minimum=ANY_ROLE),
    "GET /merchant/vouchers/{code}": org(
        K.data_partner, *SPONSORS, minimum=ANY_ROLE, hidden=True, kind_outcome=NOT_THEIR_VOUCHER
    ),
    "POST /merchant/vouchers/confirm": org(
        K.data_partner, *SPONSORS, hidden=True, kind_outcome=NOT_THEIR_VOUCHER
    ),
    "POST /merchant/rewards": org(*SPONSORS),
    # the cooperative portal
    "GET /coop": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "GET /coop/samples/{name}": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "GET /coop/households": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /coop/households": org(K.cooperative, admin=FORBIDDEN),
    "POST /coop/households/import": org(K.cooperative, admin=FORBIDDEN),
    "GET /coop/households/{household_id}": org(
        K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True
    ),
    "GET /coop/contracts": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /coop/contracts/import": org(K.cooperative, admin=FORBIDDEN),
    "GET /coop/contracts/{contract_id}": org(
        K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True
    ),
    "POST /coop/contracts/{contract_id}/settle": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "GET /coop/parcels": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /coop/parcels/import": org(K.cooperative, admin=FORBIDDEN),
    "GET /coop/projects/new": org(K.cooperative, admin=FORBIDDEN),
    "POST /coop/projects": org(K.cooperative, admin=FORBIDDEN),
    "GET /coop/projects/{project_id}": org(
        K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True
    ),
    "POST /coop/projects/{project_id}/parcels": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "POST /coop/projects/{project_id}/collect": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "GET /coop/projects/{project_id}/mrv": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "POST /coop/projects/{project_id}/mrv": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "GET /coop/mrv/{job_id}/status": org(
        K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, strict=False
    ),
    "GET /coop/mrv/{job_id}": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, strict=False),
    "POST /coop/mrv/{job_id}/submit": org(K.cooperative, admin=FORBIDDEN, strict=False),
    "POST /coop/mrv/{job_id}/cancel": org(K.cooperative, admin=FORBIDDEN, strict=False),
    "GET /coop/periods/{period_id}": org(
        K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True
    ),
    "GET /coop/pledges": org(K.cooperative, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /coop/pledges/credits": org(K.cooperative, admin=FORBIDDEN),
    "POST /coop/pledges/contract": org(K.cooperative, admin=FORBIDDEN),
    "POST /coop/pledges/{pledge_id}/withdraw": org(K.cooperative, admin=FORBIDDEN, hidden=True),
    "POST /coop/pledges/{pledge_id}/confirm-default": org(
        K.cooperative, admin=FORBIDDEN, hidden=True
    ),
    # the verifier's and the authority's consoles
    "GET /verifier": org(K.verifier, minimum=ANY_ROLE, admin=FORBIDDEN),
    "GET /verifier/periods/{period_id}": org(K.verifier, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /verifier/periods/{period_id}/certify": org(K.verifier, admin=FORBIDDEN),
    "POST /verifier/periods/{period_id}/return": org(K.verifier, admin=FORBIDDEN),
    "GET /authority": org(K.authority, minimum=ANY_ROLE, admin=FORBIDDEN),
    "GET /authority/periods/{period_id}": org(K.authority, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /authority/periods/{period_id}/file": org(K.authority, admin=FORBIDDEN),
    "POST /authority/periods/{period_id}/issue": org(K.authority, admin=FORBIDDEN),
    "GET /authority/projects/{project_id}": org(K.authority, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /authority/reversals/{reversal_id}/{decision}": org(K.authority, admin=FORBIDDEN),
    "POST /authority/projects/{project_id}/{action}": org(K.authority, admin=FORBIDDEN),
    # the market's pages (any organisation buys; sellers and finance have their own)
    "POST /market/cart": FACE_ANY_ORG,
    "POST /market/cart/remove": FACE_ANY_ORG,
    "GET /market/cart": FACE_ANY_ORG,
    "POST /market/checkout": replace(FACE_ANY_ORG, below=FORBIDDEN),
    "GET /market/orders": FACE_ANY_ORG,
    "GET /market/orders/{order_id}": replace(
        FACE_ANY_ORG, kinds={K.enterprise: ANY_ROLE}, others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    # every refusal (a viewer, another organisation's order) redirects to the order's page with
    # ?checkout=failed; that page answers 404 to other organisations (GET above)
    "POST /market/orders/{order_id}/pay": FACE_ANY_ORG,
    "POST /market/orders/{order_id}/cancel": replace(
        FACE_ANY_ORG, kinds=kinds(K.enterprise), others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    "GET /market/orders/{order_id}/receipt.pdf": replace(
        FACE_ANY_ORG, kinds={K.enterprise: ANY_ROLE}, others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    "GET /market/sandbox/{payment_id}": replace(
        FACE_ANY_ORG, kinds={K.enterprise: ANY_ROLE}, others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    "POST /market/sandbox/{payment_id}/pay": replace(
        FACE_ANY_ORG, kinds=kinds(K.enterprise), others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    "POST /market/sandbox/{payment_id}/cancel": replace(
        FACE_ANY_ORG, kinds=kinds(K.enterprise), others=HIDDEN, hidden_from=(K.enterprise,)
    ),
    "GET /market/cases": FACE_ANY_ORG,
    "POST /market/cases/{case_id}/pay": replace(FACE_ANY_ORG, others=HIDDEN, strict=False),
    "GET /market/tokens": FACE_ANY_ORG,
    "POST /market/tokens": FACE_ANY_ORG,
    "POST /market/tokens/{token_id}/revoke": replace(
        FACE_ANY_ORG,
        kinds={K.enterprise: Role.owner},
        below=HIDDEN,
        others=HIDDEN,
        hidden_from=(K.enterprise,),
    ),
    "GET /market/sales": org(*SELLER, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /market/sales/listings": org(*SELLER, admin=FORBIDDEN),
    "POST /market/sales/listings/{listing_id}/delist": org(
        *SELLER, admin=FORBIDDEN, hidden=True, kind_outcome={K.platform: HIDDEN}
    ),
    "GET /market/sales/households/{household_id}": org(
        *SELLER, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True, kind_outcome={K.platform: HIDDEN}
    ),
    "GET /market/finance": org(K.platform, admin=FORBIDDEN),
    "POST /market/finance/confirm": org(K.platform, admin=FORBIDDEN),
    "POST /market/finance/deposits": org(K.platform, admin=FORBIDDEN),
    "POST /market/finance/buyers": org(K.platform, admin=FORBIDDEN),
    "POST /market/finance/buyers/{organisation_id}/revoke": org(
        K.platform, admin=FORBIDDEN, strict=False
    ),
    "GET /court": org(K.court, minimum=ANY_ROLE, admin=FORBIDDEN),
    "POST /court/cases": org(K.court, admin=FORBIDDEN),
    "GET /court/cases/{case_id}": org(K.court, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True),
    # the fund's page lists its standards and rounds, which only its members read
    "GET /fund": org(K.compensation_fund, admin=FORBIDDEN),
    "POST /fund/standards": org(K.compensation_fund, admin=FORBIDDEN),
    "POST /fund/rounds": org(K.compensation_fund, admin=FORBIDDEN),
    "GET /fund/rounds/{round_id}": org(
        K.compensation_fund, minimum=ANY_ROLE, admin=FORBIDDEN, hidden=True
    ),
    "POST /fund/rounds/{round_id}/pay": org(K.compensation_fund, admin=FORBIDDEN, hidden=True),
}


def rule_for(key: str) -> RuleLike:
    return RULES[key]


# --- what to send --------------------------------------------------------------------------

GEOJSON_PARCEL = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "MATRIX-1", "village": "x"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [119.6, 30.6],
                            [119.601, 30.6],
                            [119.601, 30.601],
                            [119.6, 30.601],
                            [119.6, 30.6],
                        ]
                    ],
                },
            }
        ],
    }
).encode()

Body = Callable[[World, Caller], dict[str, Any]]


def _resident_code(world: World, caller: Caller) -> dict[str, Any]:
    """A fresh phone with a code just sent, so that signing in succeeds."""
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    engine = create_engine(_settings_of(world))
    with unit_of_work(engine) as session:
        # an address of its own each time: the helper's sends must not meet the address limit
        identity.request_login_code(session, phone=phone, ip=f"matrix-{phone}")
    engine.dispose()
    text = sms.last_message_to("+86" + phone) or ""
    code = re.search(r"(\d{6})", text)
    assert code is not None
    return {"phone": phone, "code": code.group(1)}


def _settings_of(world: World) -> Settings:
    settings: Settings = world.extra["settings"]
    return settings


# Per route: extra path values, a JSON body, form fields or files (callables get the caller).
OVERRIDES: dict[str, dict[str, Any]] = {
    "POST /api/v1/auth/session": {
        "json": {"email": "signin@matrix.example.cn", "password": PASSWORD}
    },
    "POST /api/v1/auth/residents/code": {
        "json": lambda w, c: {"phone": _resident_code(w, c)["phone"]}
    },
    "POST /api/v1/auth/residents/session": {"json": _resident_code},
    "POST /api/v1/wallet/accounts/{account_id}/freeze": {"json": {"frozen": False}},
    "POST /api/v1/wallet/holds/{hold_id}/capture": {"path": {"hold_id": str(uuid.UUID(int=1))}},
    "POST /api/v1/wallet/holds/{hold_id}/void": {"path": {"hold_id": str(uuid.UUID(int=1))}},
    "POST /api/v1/registry/parcels/import": {
        "files": {"file": ("parcels.geojson", GEOJSON_PARCEL, "application/geo+json")},
        "data": {
            "mapping": json.dumps(
                {"code": "code", "village": "village", "default_land_type": "bamboo"}
            )
        },
    },
    "POST /api/v1/registry/contracts": {"json_extra": {"cooperative_id": "A:cooperative"}},
    "POST /api/v1/registry/area-acceptances": {"json_extra": {"cooperative_id": "A:cooperative"}},
    "POST /api/v1/registry/projects": {"json_extra": {"cooperative_id": "A:cooperative"}},
    "POST /api/v1/registry/pledges": {
        "json_extra": {"batch_id": "batch_id", "quantity_t": 1, "lender_id": "A:enterprise"}
    },
    "POST /api/v1/market/orders/{order_id}/cancel": {"path": {"order_id": "open_order_id"}},
    "POST /api/v1/market/orders/{order_id}/checkout": {"path": {"order_id": "open_order_id"}},
    "POST /merchant/vouchers/confirm": {"data": {"code": "voucher_code"}},
    "POST /api/v1/points/vouchers/confirm": {"json": {"code": "voucher_code"}},
    "POST /login": {"data": {"email": "signin@matrix.example.cn", "password": PASSWORD}},
    "POST /court/cases": {
        "data": {
            "case_number": "(2026)matrix",
            "judgment_sha256": "0" * 64,
            "defendant_id": "A:enterprise",
            "project_id": "project_id",
            "required_t": "1",
        }
    },
    "POST /market/sales/listings": {
        "data": {"batch_id": "batch_id", "quantity_t": "1", "price": "50", "min_order_t": "1"}
    },
    "POST /api/v1/registry/ets-prices": {
        "files": {"file": ("prices.csv", b"date,close\n2020-01-02,40.00\n", "text/csv")}
    },
    "POST /api/v1/registry/projects/{project_id}/suspend": {"path": {"project_id": "wetland"}},
    "POST /api/v1/registry/projects/{project_id}/resume": {"path": {"project_id": "wetland"}},
    "POST /api/v1/registry/projects/{project_id}/terminate": {"path": {"project_id": "wetland"}},
    "POST /api/v1/registry/projects/{project_id}/credits-decision": {
        "path": {"project_id": "wetland"},
        "json": {"decision": "reinstated", "reason": "matrix"},
    },
    "POST /api/v1/registry/projects/{project_id}/periods": {
        "json": {"start": "2020-01-01", "end": "2020-12-31", "report_json": "{}"}
    },
    "GET /problems/{code}": {"url": "/problems/auth/forbidden"},
    "GET /projects/{code}": {"path": {"code": "project_code"}},
    "GET /lang/{locale}": {"path": {"locale": "en"}},
    "GET /coop/samples/{name}": {"path": {"name": "contracts.csv"}},
    "GET /merchant/vouchers/{code}": {"path": {"code": "voucher_code"}},
    "POST /authority/projects/{project_id}/{action}": {
        "path": {"action": "suspend", "project_id": "wetland"}
    },
    "POST /authority/reversals/{reversal_id}/{decision}": {"path": {"decision": "confirm"}},
    "GET /coop/mrv/{job_id}/status": {"path": {"job_id": "0" * 32}},
    "GET /coop/mrv/{job_id}": {"path": {"job_id": "0" * 32}},
    "POST /coop/mrv/{job_id}/submit": {"path": {"job_id": "0" * 32}},
    "POST /coop/mrv/{job_id}/cancel": {"path": {"job_id": "0" * 32}},
    "GET /api/v1/market/statements/by-link/{token}": {"path": {"token": "statement_link"}},
    "POST /api/v1/market/buyers/{organisation_id}/verification": {
        "path": {"organisation_id": "A:enterprise"},
        "json": {"uscc": "91330100716105852F"},
    },
    "POST /api/v1/market/buyers/{organisation_id}/verification/revoke": {
        "path": {"organisation_id": "A:enterprise"}
    },
    "POST /market/finance/buyers": {
        "data": {"organisation_id": "A:enterprise", "uscc": "91330100716105852F"}
    },
    "POST /market/finance/buyers/{organisation_id}/revoke": {
        "path": {"organisation_id": "A:enterprise"}
    },
    "GET /h/{token}": {"path": {"token": "statement_link"}},
}
ANON_CSRF_ROUTES = {"POST /login", "POST /app/code", "POST /app/login"}
# Routes that end the caller's session run after the others of their group.
LAST = {"POST /api/v1/auth/logout", "POST /logout", "POST /app/logout"}


def _value(world: World, name: Any) -> Any:
    """A world object's id when ``name`` names one ("order_id", "A:cooperative"), else itself."""
    if not isinstance(name, str):
        return name
    if name in world.organisations:
        return str(world.organisations[name])
    return world.objects.get(name, name)


def prepare(
    world: World, openapi: dict[str, Any], schemas: Schemas, key: RouteKey, caller: Caller
) -> Prepared:
    label = str(key)
    override = OVERRIDES.get(label.replace("{code:path}", "{code}"), {})
    values = {name: world.objects.get(name, "") for name in path_parameters(key.path)}
    for name, value in override.get("path", {}).items():
        values[name] = _value(world, value)
    url = override.get("url") or fill_path(key.path, values)
    signed = isinstance(RULES.get(label), Signed)
    prepared = Prepared(url=url) if signed else minimal_request(openapi, schemas, key, url)
    for part in ("json", "data", "files"):
        if part in override:
            value = override[part]
            value = value(world, caller) if callable(value) else value
            if part != "files" and isinstance(value, dict):
                value = {name: _value(world, item) for name, item in value.items()}
            setattr(prepared, part, value)
    if "json_extra" in override:
        extra = {name: _value(world, item) for name, item in override["json_extra"].items()}
        prepared.json = {**(prepared.json or {}), **extra}
    return prepared


def classify(response: Response) -> Outcome:
    status = response.status_code
    if status == 401:
        return UNAUTH
    if status in (302, 303, 307):
        location = response.headers.get("location", "")
        if location.split("?", 1)[0] in SIGN_IN_LOCATIONS:
            return UNAUTH
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    return ALLOWED


def callers_for(rule: RuleLike, world: World) -> list[Caller]:
    """Who to send: everyone the rule distinguishes, denied callers first (so that an allowed
    caller's change cannot hide a missing check), then the allowed, lowest role first."""
    everyone = list(world.callers.values())
    if isinstance(rule, Signed):
        return [c for c in everyone if c.anonymous or c.admin or c.role == Role.owner]
    chosen = []
    for caller in everyone:
        if caller.kind is not None and caller.kind not in rule.kinds and caller.role != Role.owner:
            continue  # a kind that is refused: its owner stands for its members and viewers
        if caller.other and caller.kind is not None and caller.kind not in rule.hidden_from:
            continue  # B of a kind that owns nothing here behaves as A
        chosen.append(caller)
    order = {UNAUTH: 0, FORBIDDEN: 1, HIDDEN: 2, ALLOWED: 3}
    return sorted(
        chosen,
        key=lambda c: (order[rule.expected(c)], _rank(c.role) if c.role else 0, c.admin),
    )


def send(client: TestClient, key: RouteKey, prepared: Prepared, caller: Caller) -> Response:
    browser = not key.path.startswith("/api/")
    headers = {**prepared.headers, **caller.headers(browser=browser)}
    label = str(key).replace("{code:path}", "{code}")
    data = dict(prepared.data or {})
    if label in ANON_CSRF_ROUTES:
        cookie = headers.get("Cookie", "")
        headers["Cookie"] = "; ".join(filter(None, [cookie, f"{ANON_CSRF_COOKIE}=matrix"]))
        data["csrf_token"] = "matrix"
    elif browser and caller.csrf and key.method != "GET":
        data.setdefault("csrf_token", caller.csrf)
    if browser:
        headers.setdefault("Accept", "text/html")
    client.cookies.clear()
    return client.request(
        key.method,
        prepared.url,
        headers=headers,
        json=prepared.json if prepared.json is not None else None,
        data=data or None,
        files=prepared.files,
        params=prepared.params or None,
    )


# --- the tests -----------------------------------------------------------------------------

GROUPS = {
    "identity and wallet": ("/api/v1/auth", "/api/v1/me", "/api/v1/admin", "/api/v1/wallet"),
    "registry": ("/api/v1/registry", "/api/v1/public", "/api/v1/mrv"),
    "points": ("/api/v1/points",),
    "market": ("/api/v1/market", "/healthz", "/readyz"),
    "public and resident pages": (
        "/app",
        "/login",
        "/logout",
        "/lang",
        "/problems",
        "/explorer",
        "/projects",
        "/verify",
        "/methodologies",
        "/points",
        "/price-index",
        "/h/",
        "/admin",
        "/merchant",
    ),
    "organisation pages": ("/coop", "/verifier", "/authority", "/market", "/court", "/fund"),
}


def group_of(key: RouteKey) -> str:
    if key.path == "/":
        return "public and resident pages"
    best, length = "", -1
    for name, prefixes in GROUPS.items():
        for prefix in prefixes:
            if key.path.startswith(prefix) and len(prefix) > length:
                best, length = name, len(prefix)
    return best


def _label(key: RouteKey) -> str:
    return str(key).replace("{code:path}", "{code}")


def test_every_route_has_a_rule(base_settings: Settings) -> None:
    table = route_table(create_app(base_settings))
    missing = sorted(_label(key) for key in table if _label(key) not in RULES)
    assert not missing, (
        "Routes without an entry in tests/security/test_authorization_matrix.py RULES; add one "
        "with the rule each route is meant to enforce:\n  " + "\n  ".join(missing)
    )
    stale = sorted(set(RULES) - {_label(key) for key in table})
    assert not stale, "RULES names routes the app no longer has:\n  " + "\n  ".join(stale)
    assert all(group_of(key) for key in table), [str(k) for k in table if not group_of(k)]


@pytest.mark.slow
@pytest.mark.parametrize("group", list(GROUPS))
def test_authorization_matrix(
    group: str, world: World, world_settings: Settings, world_client: TestClient
) -> None:
    world.extra["settings"] = world_settings
    _prepare_world(world)
    app = world_client.app
    openapi = app.openapi()  # type: ignore[attr-defined]
    schemas = Schemas(openapi)
    table = route_table(app)  # type: ignore[arg-type]
    keys = sorted(
        (key for key in table if group_of(key) == group and _label(key) in RULES),
        key=lambda k: (_label(k) in LAST, k.path, k.method),
    )
    failures: dict[tuple[str, str, str], list[str]] = {}
    for key in keys:
        rule = rule_for(_label(key))
        strict = (
            bool(path_parameters(key.path))
            if isinstance(rule, Signed) or rule.strict is None
            else rule.strict
        )
        for caller in callers_for(rule, world):
            prepared = prepare(world, openapi, schemas, key, caller)
            response = send(world_client, key, prepared, caller)
            if isinstance(rule, Signed):
                expected_text = f"{rule.status} (unsigned)"
                ok = response.status_code == rule.status
            else:
                expected = rule.expected(caller)
                actual = classify(response)
                expected_text = str(expected)
                ok = actual == expected or (expected == ALLOWED and actual == HIDDEN and not strict)
            if response.status_code >= 500 or not ok:
                got = f"{response.status_code} {response.text[:120]!r}"
                failures.setdefault((_label(key), expected_text, got), []).append(caller.name)
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(
        f"{route}: expected {expected}, got {got}\n    as {', '.join(names)}"
        for (route, expected, got), names in failures.items()
    )


def _prepare_world(world: World) -> None:
    """Values some paths need that the template does not hold: a second project to suspend and
    terminate, a household's statement link, and two open orders of the A enterprise (one to
    cancel and check out, one with a sandbox payment to complete or cancel)."""
    from sqlmodel import col, select

    from market.models import Provider
    from market.service import orders, payments, statements
    from registry.models import Project
    from registry.service.actors import Actor

    engine = create_engine(_settings_of(world))
    buyer = Actor(
        ref="system:matrix",
        organisation_id=world.organisations["A:enterprise"],
        org_kind=OrgKind.enterprise,
        role=Role.owner,
    )
    with unit_of_work(engine) as session:
        wetland = session.exec(select(Project).where(col(Project.code) == "DQ0001")).one()
        world.objects["wetland"] = str(wetland.id)
        world.objects["statement_link"] = statements.household_link(
            session,
            actor=Actor.system("matrix"),
            household_id=uuid.UUID(world.objects["household_id"]),
        ).token
        line = [
            orders.LineRequest(
                listing_id=uuid.UUID(world.objects["listing_id"]),
                quantity_t=int(world.objects["listing_minimum_t"]),
            )
        ]
        for name in ("open_order_id", "paying_order_id"):
            placed = orders.create_order(
                session, actor=buyer, lines=line, provider=Provider.sandbox
            )
            world.objects[name] = str(placed.id)
        payment = payments.start_checkout(
            session, actor=buyer, order_id=uuid.UUID(world.objects["paying_order_id"])
        )
        world.objects["payment_id"] = str(payment.id)
    engine.dispose()
    _ = caller_name  # keeps the import for readers of the rules
