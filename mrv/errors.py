"""Errors raised by the mrv use cases (each maps to a problem+json type)."""

from tanhui.errors import DomainError


class MrvError(DomainError):
    code = "mrv/error"
