"""Errors raised by the carbon-inclusion use cases (each maps to a problem+json type)."""

from __future__ import annotations

from tanhui.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from tanhui.i18n import N_


class InclusionError(DomainError):
    code = "points/error"


class SignatureRejected(InclusionError, Unauthorized):
    """A missing, malformed or wrong signature, or an unknown or inactive partner (the answer
    does not say which, so a prober learns nothing)."""

    code = "points/bad-signature"
    status = 401
    title = N_("The request signature is missing or wrong")


class StaleSignature(InclusionError, Unauthorized):
    code = "points/stale-signature"
    status = 401
    title = N_("The request signature is too old or from the future")


class ReplayedRequest(InclusionError, Unauthorized):
    code = "points/replayed-request"
    status = 401
    title = N_("This signed request was already received")


class BatchTooLarge(InclusionError, InvalidInput):
    code = "points/batch-too-large"
    status = 422
    title = N_("Too many events in one batch")


class InvalidBatch(InclusionError, InvalidInput):
    code = "points/invalid-batch"
    status = 422
    title = N_("The batch is not valid JSON of the documented shape")


class UnknownPartner(InclusionError, NotFound):
    code = "points/unknown-partner"
    status = 404
    title = N_("Unknown data partner")


class PartnerExists(InclusionError, Conflict):
    code = "points/partner-exists"
    status = 409
    title = N_("The organisation is already a data partner")


class UnknownScenario(InclusionError, InvalidInput):
    code = "points/unknown-scenario"
    status = 422
    title = N_("Unknown scenario")


class UnknownKey(InclusionError, NotFound):
    code = "points/unknown-key"
    status = 404
    title = N_("Unknown partner key")


class LastKey(InclusionError, Conflict):
    code = "points/last-key"
    status = 409
    title = N_("A partner keeps at least one active key")


class UnknownResident(InclusionError, NotFound):
    code = "points/unknown-resident"
    status = 404
    title = N_("Unknown resident")


class UnknownReceipt(InclusionError, NotFound):
    code = "points/unknown-receipt"
    status = 404
    title = N_("Unknown carbon receipt")


class CitizenCardNotProven(InclusionError, InvalidInput):
    """The card issuer's attestation is missing, wrong, expired, for another phone or from a
    partner that issues no cards: one answer for all, which says nothing about whether (or by
    whom) the card is linked."""

    code = "points/citizen-card-not-proven"
    status = 422
    title = N_("The card issuer's proof is missing, wrong or expired")
    keeps_changes = True  # the attempt counts towards the limit


class CitizenCardRateLimited(InclusionError, RateLimited):
    code = "points/citizen-card-too-many-attempts"
    status = 429
    title = N_("Too many attempts to link a citizen card")


class InvalidCitizenCard(InclusionError, InvalidInput):
    code = "points/invalid-citizen-card"
    status = 422
    title = N_("Invalid citizen card number")


class InvalidFactorVersion(InclusionError, InvalidInput):
    code = "points/invalid-factor-version"
    status = 422
    title = N_("Invalid factor version")


class FactorVersionExists(InclusionError, Conflict):
    code = "points/factor-version-exists"
    status = 409
    title = N_("This factor version already exists")


class PoolingError(InclusionError, Conflict):
    code = "points/pooling"
    status = 409
    title = N_("The month cannot be pooled")
