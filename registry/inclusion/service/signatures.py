"""The partners' request signature: ``X-Tanhui-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256 of ``"{t}.{raw body}"`` keyed with the partner's secret: the
scheme Stripe uses for webhooks, so partners know it. A partner with an Ed25519 key sends
``ed25519=<base64 signature of the same bytes>`` instead. Several ``v1``/``ed25519`` elements
may be sent (during a key rotation); one valid element is enough. The timestamp must be within
300 seconds of the server's clock, and a signature is accepted only once (replay protection is
the ingestion's unique index on the signature's hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from registry.inclusion.errors import SignatureRejected, StaleSignature
from registry.inclusion.models import InclusionPartnerKey, PartnerKeyKind
from registry.inclusion.service.partners import secret_of
from tanhui.crypto import verify_signature
from tanhui.i18n import N_

TOLERANCE_S = 300
MAX_HEADER_LENGTH = 2_000
MAX_SIGNATURES = 5


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    hmac_hex: list[str] = field(default_factory=list)
    ed25519: list[str] = field(default_factory=list)


def parse_header(header: str | None) -> SignatureHeader:
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise SignatureRejected(N_("The X-Tanhui-Signature header is missing."))
    timestamp: int | None = None
    hmacs: list[str] = []
    eds: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            hmacs.append(value.strip().lower())
        elif name == "ed25519" and value:
            eds.append(value.strip())
    if timestamp is None or not (hmacs or eds) or len(hmacs) + len(eds) > MAX_SIGNATURES:
        raise SignatureRejected(
            N_("The X-Tanhui-Signature header must read t=<unix seconds>,v1=<hex HMAC>.")
        )
    return SignatureHeader(timestamp=timestamp, hmac_hex=hmacs, ed25519=eds)


def signed_payload(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The header value a partner sends (used by tests, the demo and the benchmark)."""
    digest = hmac.new(secret.encode("utf-8"), signed_payload(timestamp, body), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass(frozen=True)
class Verified:
    key: InclusionPartnerKey
    signature: str  # the element that matched, for replay detection
    signed_at: datetime

    @property
    def signature_hash(self) -> str:
        return hashlib.sha256(self.signature.encode("utf-8")).hexdigest()


def verify(
    header: str | None,
    body: bytes,
    keys: Sequence[InclusionPartnerKey],
    *,
    now: datetime,
    tolerance_s: int = TOLERANCE_S,
) -> Verified:
    """Check the header against the partner's active keys; raise on any failure."""
    parsed = parse_header(header)
    if abs(now.timestamp() - parsed.timestamp) > tolerance_s:
        raise StaleSignature(
            N_("The signature's timestamp is more than {seconds} seconds from now."),
            seconds=tolerance_s,
        )
    payload = signed_payload(parsed.timestamp, body)
    signed_at = datetime.fromtimestamp(parsed.timestamp, UTC)
    for key in keys:
        if key.revoked_at is not None:
            continue
        if key.kind == PartnerKeyKind.hmac and parsed.hmac_hex:
            expected = hmac.new(secret_of(key), payload, hashlib.sha256).hexdigest()
            for candidate in parsed.hmac_hex:
                if hmac.compare_digest(expected, candidate):
                    return Verified(key=key, signature="v1=" + candidate, signed_at=signed_at)
        elif key.kind == PartnerKeyKind.ed25519 and key.public_key and parsed.ed25519:
            raw = _b64(key.public_key)
            for candidate in parsed.ed25519:
                if raw and verify_signature(raw, payload, candidate):
                    return Verified(key=key, signature="ed25519=" + candidate, signed_at=signed_at)
    raise SignatureRejected(N_("The signature does not match the request."))


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""
