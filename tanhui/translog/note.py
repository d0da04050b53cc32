"""C2SP signed notes (c2sp.org/signed-note), log checkpoints (c2sp.org/tlog-checkpoint) and
Ed25519 witness cosignatures (c2sp.org/tlog-cosignature).

A checkpoint is the note text ``<origin>\\n<size>\\n<base64 root>\\n``; a signature line is
``— <name> base64(key id ‖ signature)``. The key id is the first four bytes of
SHA-256(name ‖ 0x0A ‖ type ‖ public key), type 0x01 for a log's Ed25519 key and 0x04 for a
witness's timestamped cosignature, whose signed message is ``cosignature/v1\\ntime <t>\\n`` followed
by the checkpoint text. Written here, byte-compatible with the Go reference
(golang.org/x/mod/sumdb/note), which the tests pin with its published example.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tanhui.crypto import SigningKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014 "
MAX_SIGNATURES = 16
MAX_NOTE_BYTES = 64 * 1024


class NoteError(ValueError):
    """A note that is malformed or that no trusted key signed."""


def key_id(name: str, sig_type: int, public_raw: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_raw).digest()[
        :4
    ]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"bad key name {name!r}")


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: name, signature type and the raw Ed25519 key."""

    name: str
    public_raw: bytes
    sig_type: int = ED25519

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_raw)

    def vkey(self) -> str:
        """The verifier key string ``<name>+<hex id>+<base64(type ‖ key)>``."""
        material = base64.b64encode(bytes([self.sig_type]) + self.public_raw).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is name+hexid+base64")
        name, hex_id, material = parts
        _check_name(name)
        try:
            raw = base64.b64decode(material, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NoteError("bad verifier key material") from error
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("not an Ed25519 verifier key")
        verifier = cls(name=name, public_raw=raw[1:], sig_type=raw[0])
        if verifier.key_id.hex() != hex_id.lower():
            raise NoteError("the verifier key's id does not match its key")
        return verifier


def signer_key(name: str, key: SigningKey) -> str:
    """The Go-compatible signer key: ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>``."""
    from cryptography.hazmat.primitives import serialization

    seed = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    material = base64.b64encode(bytes([ED25519]) + seed).decode("ascii")
    return f"PRIVATE+KEY+{name}+{key_id(name, ED25519, key.public_raw).hex()}+{material}"


def parse_signer_key(text: str) -> tuple[str, SigningKey]:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key is PRIVATE+KEY+name+hexid+base64")
    name, hex_id, material = parts[2], parts[3], parts[4]
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("not an Ed25519 signer key")
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if key_id(name, ED25519, key.public_raw).hex() != hex_id.lower():
        raise NoteError("the signer key's id does not match its key")
    return name, key


def sign(text: str, name: str, key: SigningKey) -> str:
    """The signed note of ``text`` (which ends in a newline) by ``key`` under ``name``."""
    _check_text(text)
    _check_name(name)
    signature = key.private_key.sign(text.encode("utf-8"))
    return text + "\n" + _line(name, key_id(name, ED25519, key.public_raw) + signature)


def _line(name: str, blob: bytes) -> str:
    return f"{DASH}{name} {base64.b64encode(blob).decode('ascii')}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends in a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("a note holds no control characters")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    blob: bytes  # what follows the key id


def split(note: str) -> tuple[str, list[Signature]]:
    """The note's text and its signature lines (unverified)."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("a signed note is text, a blank line and signature lines")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    _check_text(text)
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError("a signed note carries 1 to 16 signatures")
    signatures = []
    for line in lines:
        if not line.startswith(DASH):
            raise NoteError("a signature line starts with an em dash")
        name, _, encoded = line[len(DASH) :].partition(" ")
        _check_name(name)
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NoteError("a signature is base64") from error
        if len(blob) < 5:
            raise NoteError("a signature is a key id and a signature")
        signatures.append(Signature(name=name, key_id=blob[:4], blob=blob[4:]))
    return text, signatures


def _ed25519_ok(public_raw: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The text of ``note`` and the trusted keys whose signatures verified.

    Signatures from unknown keys are ignored; a known key whose signature fails rejects the
    note; no verified signature from a log key (type 0x01) rejects it too.
    """
    text, signatures = split(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Verifier] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if verifier.sig_type == ED25519:
            ok = _ed25519_ok(verifier.public_raw, text.encode("utf-8"), signature.blob)
        else:
            ok = len(signature.blob) == 72 and _ed25519_ok(
                verifier.public_raw,
                _cosigned_message(text, struct.unpack(">Q", signature.blob[:8])[0]),
                signature.blob[8:],
            )
        if not ok:
            raise NoteError(f"the signature of {signature.name} does not verify")
        verified.append(verifier)
    if not any(v.sig_type == ED25519 for v in verified):
        raise NoteError("no trusted key signed this note")
    return text, verified


# --- checkpoints and cosignatures ------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root hash lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
            raise NoteError("a checkpoint's size is a decimal without leading zeros")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NoteError("a checkpoint's root hash is base64") from error
        if len(root) != 32:
            raise NoteError("a checkpoint's root hash is 32 bytes")
        return cls(origin=origin, size=int(size_text), root=root)


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: SigningKey) -> str:
    return sign(checkpoint.text(), name, key)


def open_checkpoint(
    note: str, verifiers: list[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint of a signed note that a trusted log key signed (and of ``origin``)."""
    text, _ = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is of {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


def cosign(note: str, name: str, key: SigningKey, timestamp: int) -> str:
    """``note`` with a witness's timestamped Ed25519 cosignature line added."""
    text, _ = split(note)
    _check_name(name)
    signature = key.private_key.sign(_cosigned_message(text, timestamp))
    blob = key_id(name, COSIGNATURE_V1, key.public_raw) + struct.pack(">Q", timestamp) + signature
    return note + _line(name, blob)
