"""Errors raised by the registry use cases (each maps to a problem+json type)."""

from __future__ import annotations

from tanhui.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from tanhui.i18n import N_


class RegistryError(DomainError):
    code = "registry/error"


class RegistryNotFound(NotFound):
    code = "registry/not-found"
    title = N_("Not found")


class RoleRefused(Forbidden):
    code = "registry/role-refused"
    title = N_("Your organisation or role may not do this")


class InvalidTransition(Conflict):
    code = "registry/invalid-transition"
    title = N_("This step is not possible in the current state")


class InvalidParcel(InvalidInput):
    code = "registry/invalid-parcel"
    title = N_("The parcel cannot be registered")


class ParcelOverlap(Conflict):
    code = "registry/parcel-overlap"
    title = N_("The parcel overlaps ground already claimed")


class GroundAlreadyClaimed(Conflict):
    code = "registry/ground-already-claimed"
    title = N_("This ground is already claimed for these years")


class CreditsSuspended(Conflict):
    code = "registry/credits-suspended"
    title = N_("The project was terminated: its unsold credits are suspended")


class ForestRightInUse(Conflict):
    code = "registry/forest-right-in-use"
    title = N_("The forest-right certificate is already registered")


class AreaMismatch(Conflict):
    code = "registry/area-mismatch"
    title = N_("The registered area differs from the measured polygon")


class DuplicateCode(Conflict):
    code = "registry/duplicate-code"
    title = N_("The code is already taken")


class InvalidContract(InvalidInput):
    code = "registry/invalid-contract"
    title = N_("The contract is not valid")


class NotEnoughPrices(Conflict):
    code = "registry/not-enough-ets-prices"
    title = N_("Not enough ETS prices for the settlement")


class InvalidPriceFile(InvalidInput):
    code = "registry/invalid-price-file"
    title = N_("The price file cannot be read")


class AlreadySettled(Conflict):
    code = "registry/already-settled"
    title = N_("This settlement period is already paid")


class InvalidReport(InvalidInput):
    code = "registry/invalid-report"
    title = N_("The MRV report is not valid")


class InvalidSignature(InvalidInput):
    code = "registry/invalid-signature"
    title = N_("The signature does not verify")


class QuantityExceedsIssuable(Conflict):
    code = "registry/quantity-exceeds-issuable"
    title = N_("The quantity exceeds what the report allows")


class InsufficientCredits(Conflict):
    code = "registry/insufficient-credits"
    title = N_("Not enough available credits")


class InvalidSerial(InvalidInput):
    code = "registry/invalid-serial"
    title = N_("Not a serial number of this registry")


class PledgeConflict(Conflict):
    code = "registry/pledge-conflict"
    title = N_("The pledge cannot change in its current state")


class PledgeNotEnforceable(Conflict):
    code = "registry/pledge-not-enforceable"
    title = N_("The pledge cannot be enforced yet")


class InvalidPledge(InvalidInput):
    code = "registry/invalid-pledge"
    title = N_("The pledge's terms are not valid")


class InvalidImport(InvalidInput):
    code = "registry/invalid-import"
    title = N_("The file cannot be imported")


class LedgerUnavailable(RegistryError):
    code = "registry/ledger-unavailable"
    status = 503
    title = N_("The ledger is not available")


class NotMeasured(Conflict):
    code = "registry/not-measured"
    title = N_("Credits are issued only from the platform's own measurement")


class ExceedsEstimate(Conflict):
    code = "registry/exceeds-measured-estimate"
    title = N_("Issued quantity and buffer exceed the measured conservative estimate")


class IncompleteCoverage(InvalidInput):
    code = "registry/incomplete-coverage"
    title = N_("The MRV run does not cover the project's registered parcels")


class PooledOnly(InvalidInput):
    code = "registry/residents-pooled-only"
    title = N_("A residents' period comes only from the pooling job")


class UnknownMethodology(InvalidInput):
    code = "registry/unknown-methodology"
    title = N_("The methodology or its version is not known to the registry")


class MethodologyLandType(InvalidInput):
    code = "registry/methodology-land-type"
    title = N_("The methodology does not cover this land type")


class CreditingPeriodLimits(InvalidInput):
    code = "registry/crediting-period-limits"
    title = N_("The crediting period is outside the methodology's limits")


class PurposeRequiresCase(InvalidInput):
    code = "registry/purpose-requires-case"
    title = N_("This retirement purpose exists only through a court's or fund's case")


class CaseMandateRefused(InvalidInput):
    code = "registry/case-mandate-refused"
    title = N_("The case does not allow this retirement")


class LossExceedsCreditedStock(InvalidInput):
    code = "registry/loss-exceeds-credited-stock"
    title = N_("The loss exceeds the credited stock of the parcels")


class IssuanceBlockedByLoss(Conflict):
    code = "registry/issuance-blocked-by-reversal"
    title = N_("Issuance is blocked until the project makes good its loss")


class ReversalConflict(Conflict):
    code = "registry/reversal-conflict"
    title = N_("The reversal cannot change in its current state")
