"""Errors raised by the wallet use cases (each maps to a problem+json type)."""

from tanhui.errors import Conflict, DomainError, IdempotencyConflict, InvalidInput, NotFound
from tanhui.i18n import N_

__all__ = [
    "AccountExists",
    "AccountFrozen",
    "AlreadyReversed",
    "AmountTooLarge",
    "HoldExpired",
    "HoldLapsed",
    "HoldNotPending",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidEntry",
    "MixedAssets",
    "UnknownAccount",
    "UnknownAsset",
    "UnknownEntry",
    "UnknownHold",
    "WalletError",
]


class WalletError(DomainError):
    code = "wallet/error"


class UnknownAccount(WalletError, NotFound):
    code = "wallet/unknown-account"
    status = 404
    title = N_("Unknown account")


class UnknownAsset(WalletError, InvalidInput):
    code = "wallet/unknown-asset"
    status = 422
    title = N_("Unknown asset")


class UnknownHold(WalletError, NotFound):
    code = "wallet/unknown-hold"
    status = 404
    title = N_("Unknown hold")


class UnknownEntry(WalletError, NotFound):
    code = "wallet/unknown-entry"
    status = 404
    title = N_("Unknown journal entry")


class InsufficientFunds(WalletError, Conflict):
    code = "wallet/insufficient-funds"
    status = 409
    title = N_("Insufficient funds")


class AccountFrozen(WalletError, Conflict):
    code = "wallet/account-frozen"
    status = 409
    title = N_("The account is frozen")


class AccountExists(WalletError, Conflict):
    code = "wallet/account-exists"
    status = 409
    title = N_("The account already exists")


class MixedAssets(WalletError, InvalidInput):
    code = "wallet/mixed-assets"
    status = 422
    title = N_("A transfer must move one asset")


class InvalidEntry(WalletError, InvalidInput):
    code = "wallet/invalid-entry"
    status = 422
    title = N_("Invalid journal entry")


class AmountTooLarge(WalletError, InvalidInput):
    code = "wallet/amount-too-large"
    status = 422
    title = N_("The amount is too large")


class HoldExpired(WalletError, Conflict):
    code = "wallet/hold-expired"
    status = 409
    title = N_("The hold has expired")


class HoldLapsed(HoldExpired):
    """HoldExpired for a hold whose funds were released on the way (the lazy release): the
    release is kept although the request is refused."""

    keeps_changes = True


class HoldNotPending(WalletError, Conflict):
    code = "wallet/hold-not-pending"
    status = 409
    title = N_("The hold is no longer pending")


class AlreadyReversed(WalletError, Conflict):
    code = "wallet/already-reversed"
    status = 409
    title = N_("The entry has already been reversed")
