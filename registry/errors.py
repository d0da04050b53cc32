"""Errors raised by the registry use cases (each maps to a problem+json type)."""

from tanhui.errors import DomainError


class RegistryError(DomainError):
    code = "registry/error"
