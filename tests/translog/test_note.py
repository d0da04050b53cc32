"""Signed notes, checkpoints and cosignatures against the Go reference's published example."""

from __future__ import annotations

import base64

import pytest

from tanhui.crypto import SigningKey
from tanhui.translog import note

# golang.org/x/mod/sumdb/note's documented example: key pair, text and the exact signed note.
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIGNED = (
    TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_reference_example_byte_for_byte() -> None:
    name, key = note.parse_signer_key(SKEY)
    assert name == "PeterNeumann"
    assert note.sign(TEXT, name, key) == SIGNED
    verifier = note.Verifier.parse(VKEY)
    assert verifier.public_raw == key.public_raw
    assert verifier.vkey() == VKEY
    assert note.signer_key(name, key) == SKEY
    text, verified = note.open_note(SIGNED, [verifier])
    assert text == TEXT and verified == [verifier]


def test_unknown_keys_are_ignored_and_bad_signatures_rejected() -> None:
    verifier = note.Verifier.parse(VKEY)
    other = SigningKey.generate()
    stranger = note.Verifier("PeterNeumann", other.public_raw)
    with pytest.raises(note.NoteError, match="no trusted key"):
        note.open_note(SIGNED, [stranger])
    forged = note.sign(TEXT.replace("answer", "question"), "PeterNeumann", other)
    with pytest.raises(note.NoteError):
        note.open_note(forged, [verifier])
    # the same name and key id but a broken signature: the whole note is refused
    blob = bytearray(base64.b64decode(SIGNED.rsplit(" ", 1)[1]))
    blob[10] ^= 1
    tampered = TEXT + "\n\u2014 PeterNeumann " + base64.b64encode(bytes(blob)).decode() + "\n"
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(tampered, [verifier])
    for malformed in ["", TEXT, TEXT + "\n", TEXT + "\n- PeterNeumann abc\n"]:
        with pytest.raises(note.NoteError):
            note.open_note(malformed, [verifier])


def test_checkpoint_and_witness_cosignature() -> None:
    log_key, witness_key = SigningKey.generate(), SigningKey.generate()
    checkpoint = note.Checkpoint("tanhui.example/log", 20852163, bytes(range(32)))
    assert checkpoint.text() == (
        "tanhui.example/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    )
    signed = note.sign_checkpoint(checkpoint, "tanhui.example/log", log_key)
    log = note.Verifier("tanhui.example/log", log_key.public_raw)
    assert note.open_checkpoint(signed, [log], origin="tanhui.example/log") == checkpoint
    with pytest.raises(note.NoteError):
        note.open_checkpoint(signed, [log], origin="elsewhere")
    cosigned = note.cosign(signed, "witness.example/w1", witness_key, 1679315147)
    witness = note.Verifier("witness.example/w1", witness_key.public_raw, note.COSIGNATURE_V1)
    _, verified = note.open_note(cosigned, [log, witness])
    assert witness in verified
    # the cosignature covers "cosignature/v1\ntime <t>\n" + the checkpoint text
    line = cosigned.splitlines()[-1]
    blob = base64.b64decode(line.rsplit(" ", 1)[1])
    assert blob[:4] == note.key_id("witness.example/w1", 0x04, witness_key.public_raw)
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    witness_key.public_key.verify(
        blob[12:], b"cosignature/v1\ntime 1679315147\n" + checkpoint.text().encode()
    )
    for bad in ["o\n01\n" + "A" * 43 + "=\n", "o\n1\nAAAA\n", "o\n1\n"]:
        with pytest.raises(note.NoteError):
            note.Checkpoint.parse(bad)
