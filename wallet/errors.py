"""Errors raised by the wallet use cases (each maps to a problem+json type)."""

from tanhui.errors import DomainError


class WalletError(DomainError):
    code = "wallet/error"
