"""Cryptography used across Tanhui: canonical JSON, Ed25519 signatures, PII encryption.

Personal data (phone, national id, bank account) is sealed with AES-256-GCM; each ciphertext is
bound to the column it belongs to (associated data), so a ciphertext copied into another column
does not decrypt. Exact-match lookups use a keyed HMAC blind index derived from the same data key
with HKDF, so the index key never equals the encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CIPHERTEXT_VERSION = b"\x01"
NONCE_BYTES = 12


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace: the bytes every signature and hash covers."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- Ed25519 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair with a short, stable id derived from the public key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_raw(self) -> bytes:
        return public_key_raw(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_raw)

    def sign(self, message: bytes) -> str:
        """Base64 signature over ``message``."""
        return b64(self.private_key.sign(message))

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return cls(key)


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_for(public_raw: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public_raw).hexdigest()[:16]


def verify_signature(public_raw: bytes, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(unb64(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signing_key(path: Path) -> SigningKey:
    """Load the platform key from ``path``, generating it (mode 0600) on first run."""
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_pem())
    return key


# --- personal data -------------------------------------------------------------------------


class DecryptionError(Exception):
    """A ciphertext was altered, belongs to another column, or was sealed with another key."""


class DataProtector:
    """AES-GCM sealing and keyed blind indexes for personal data."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ValueError("data key must be 32 bytes")
        self._aead = AESGCM(_derive(data_key, b"tanhui/pii/aes-gcm/v1"))
        self._index_key = _derive(data_key, b"tanhui/pii/blind-index/v1")

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt ``plaintext``; ``context`` (e.g. ``"resident.phone"``) is bound as AAD."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode())
        return CIPHERTEXT_VERSION + nonce + ciphertext

    def open(self, sealed: bytes, *, context: str) -> str:
        if not sealed or sealed[:1] != CIPHERTEXT_VERSION:
            raise DecryptionError("unknown ciphertext version")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, context.encode()).decode("utf-8")
        except InvalidTag as exc:
            raise DecryptionError(f"cannot decrypt {context}") from exc

    def blind_index(self, normalised: str, *, context: str) -> str:
        """Keyed HMAC-SHA256 (hex) of an already normalised value, separated per ``context``."""
        message = context.encode() + b"\x00" + normalised.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Hash of a high-entropy bearer secret (API tokens, session keys): SHA-256 is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
