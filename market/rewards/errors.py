"""Errors raised by the rewards use cases (each maps to a problem+json type)."""

from __future__ import annotations

from tanhui.errors import Conflict, DomainError, InvalidInput, NotFound
from tanhui.i18n import N_


class RewardsError(DomainError):
    code = "rewards/error"


class UnknownReward(RewardsError, NotFound):
    code = "rewards/unknown-reward"
    status = 404
    title = N_("Unknown reward")


class InvalidReward(RewardsError, InvalidInput):
    code = "rewards/invalid-reward"
    status = 422
    title = N_("The reward is not valid")


class RewardUnavailable(RewardsError, Conflict):
    code = "rewards/unavailable"
    status = 409
    title = N_("This reward is no longer available")


class NotEnoughPoints(RewardsError, Conflict):
    code = "rewards/not-enough-points"
    status = 409
    title = N_("Not enough points")


class UnknownVoucher(RewardsError, NotFound):
    code = "rewards/unknown-voucher"
    status = 404
    title = N_("Unknown voucher")


class VoucherUsed(RewardsError, Conflict):
    code = "rewards/voucher-used"
    status = 409
    title = N_("This voucher was already used")


class VoucherExpired(RewardsError, Conflict):
    code = "rewards/voucher-expired"
    status = 409
    title = N_("This voucher has expired")
    keeps_changes = True  # the voucher is marked expired and its points returned all the same


class VoucherClosed(RewardsError, Conflict):
    code = "rewards/voucher-closed"
    status = 409
    title = N_("This voucher can no longer be changed")
