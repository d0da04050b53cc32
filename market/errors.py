"""Errors raised by the market use cases (each maps to a problem+json type)."""

from __future__ import annotations

from tanhui.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from tanhui.i18n import N_


class MarketError(DomainError):
    code = "market/error"


class MarketNotFound(NotFound):
    code = "market/not-found"
    title = N_("Not found")


class MarketRoleRefused(Forbidden):
    code = "market/role-refused"
    title = N_("Your organisation or role may not do this")


class InvalidListing(InvalidInput):
    code = "market/invalid-listing"
    title = N_("The listing is not valid")


class ListingClosed(Conflict):
    code = "market/listing-closed"
    title = N_("The listing is no longer open")


class SoldOut(Conflict):
    code = "market/sold-out"
    title = N_("Sold out")


class BelowMinimumOrder(InvalidInput):
    code = "market/below-minimum-order"
    title = N_("The quantity is below the listing's minimum order")


class WashTrade(Conflict):
    code = "market/wash-trade"
    title = N_("A seller cannot buy its own listing")


class InvalidOrder(InvalidInput):
    code = "market/invalid-order"
    title = N_("The order is not valid")


class OrderStateConflict(Conflict):
    code = "market/order-state"
    title = N_("The order is not in a state that allows this")


class ProviderUnavailable(Conflict):
    code = "market/provider-unavailable"
    title = N_("This payment method is not available")


class PaymentProviderFailed(MarketError):
    """The provider (Stripe) refused or could not be reached: nothing was changed here."""

    code = "market/payment-provider-failed"
    status = 502
    title = N_("The payment provider could not be reached")


class InvalidWebhook(MarketError):
    code = "market/invalid-webhook"
    status = 400
    title = N_("The webhook cannot be verified")


class InvalidBankTransfer(InvalidInput):
    code = "market/invalid-bank-transfer"
    title = N_("The bank transfer cannot be recorded")


class InvalidCase(InvalidInput):
    code = "market/invalid-case"
    title = N_("The judicial case is not valid")


class CaseConflict(Conflict):
    code = "market/case-state"
    title = N_("The judicial case is not in a state that allows this")


class InvalidStandard(InvalidInput):
    code = "market/invalid-standard"
    title = N_("The compensation standard is not valid")


class RoundConflict(Conflict):
    code = "market/payout-round-state"
    title = N_("The payout round is not in a state that allows this")


class InvalidStatementLink(NotFound):
    code = "market/invalid-statement-link"
    title = N_("This statement link is not valid")


class StatementLinkExpired(DomainError):
    code = "market/statement-link-expired"
    status = 410
    title = N_("This statement link has expired")

    def __init__(self, *, days: int) -> None:
        super().__init__(
            N_("A statement link lasts {days} days; ask your cooperative for a new one."),
            days=days,
        )


class InvalidRange(InvalidInput):
    code = "market/invalid-range"
    title = N_("The date range is not valid")


class BuyerNotVerified(Forbidden):
    code = "market/buyer-not-verified"
    title = N_("The buyer's identity is not verified")


class HoldCapExceeded(Conflict):
    code = "market/hold-cap-exceeded"
    title = N_("Too many tonnes held unpaid")


class InvalidBuyerVerification(InvalidInput):
    code = "market/invalid-buyer-verification"
    title = N_("The unified social credit code cannot be verified")


class BuyerVerificationConflict(Conflict):
    code = "market/buyer-verification-conflict"
    title = N_("This unified social credit code belongs to another organisation")
