"""Domain errors and their RFC 9457 ``application/problem+json`` form.

Every domain error has a stable ``code`` (its problem ``type`` is ``/problems/<code>``, a page
that documents it), an HTTP status and an English message that the catalogue translates. Services
raise them; one set of handlers in the app turns them, request-validation errors and HTTP errors
into problem documents. Clients never see a stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tanhui.i18n import N_, both, translate

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "/problems/"


class DomainError(Exception):
    """Base of every error a use case raises on purpose.

    ``message`` is an English template with ``{placeholders}`` filled from ``params``; the params
    are also returned as problem extension members, so clients can act on them.
    """

    code: ClassVar[str] = "bad-request"
    status: ClassVar[int] = 400
    title: ClassVar[str] = N_("The request cannot be processed")
    # Errors that are themselves evidence (a failed sign-in, a wrong code) keep the writes made
    # before them, so counters and rate limits see the failure; all others roll back.
    keeps_changes: ClassVar[bool] = False
    registry: ClassVar[dict[str, type[DomainError]]] = {}

    def __init__(self, message: str | None = None, /, **params: Any) -> None:
        self.message = message or self.title
        self.params = params
        super().__init__(self.message.format_map(_Keep(params)))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        DomainError.registry.setdefault(cls.code, cls)

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, which pickle's default (``cls(*args)``)
        # cannot supply: errors raised in worker processes must reach the caller whole.
        return (_rebuild, (type(self), self.message, self.params))

    def detached(self) -> DomainError:
        """The same error without its traceback and chained causes (to send to another
        process: a library's exception in the chain may not survive pickling)."""
        return _rebuild(type(self), self.message, self.params)

    @classmethod
    def problem_type(cls) -> str:
        return PROBLEM_TYPE_PREFIX + cls.code

    def extensions(self) -> dict[str, Any]:
        """Problem members beyond the standard five; JSON-safe values only."""
        return {key: _json_safe(value) for key, value in self.params.items()}

    def to_problem(self, locale: str, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.problem_type(),
            "title": translate(self.title, locale),
            "status": self.status,
            "detail": translate(self.message, locale, **self.params),
            "messages": both(self.message, **self.params),
        }
        if instance:
            problem["instance"] = instance
        for key, value in self.extensions().items():
            problem.setdefault(key, value)
        return problem


class _Keep(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return str(value)


class NotFound(DomainError):
    """Also used for objects of another organisation: their existence is not revealed."""

    code = "not-found"
    status = 404
    title = N_("Not found")


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    title = N_("Authentication required")


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = N_("Not allowed")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = N_("Conflict with the current state")


class InvalidInput(DomainError):
    """Input that is well-formed but makes no sense for the domain; ``errors`` lists the fields."""

    code = "invalid-input"
    status = 422
    title = N_("Invalid input")

    def __init__(
        self,
        message: str | None = None,
        /,
        *,
        errors: list[dict[str, str]] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message, **params)
        self.errors = errors or []

    def extensions(self) -> dict[str, Any]:
        extra = super().extensions()
        if self.errors:
            extra["errors"] = self.errors
        return extra


class RateLimited(DomainError):
    code = "rate-limited"
    status = 429
    title = N_("Too many attempts")


class IdempotencyConflict(DomainError):
    code = "idempotency-key-reused"
    status = 409
    title = N_("Idempotency key reused with a different request")


def field_error(field: str, message: str, locale: str = "en", **params: Any) -> dict[str, str]:
    return {"field": field, "message": translate(message, locale, **params)}


def _rebuild(kind: type[DomainError], message: str, params: dict[str, Any]) -> DomainError:
    """A domain error back from its pickled message and params (see ``__reduce__``)."""
    error = kind.__new__(kind)
    DomainError.__init__(error, message, **params)
    return error
