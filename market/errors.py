"""Errors raised by the market use cases (each maps to a problem+json type)."""

from tanhui.errors import DomainError


class MarketError(DomainError):
    code = "market/error"
