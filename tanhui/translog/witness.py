"""A witness and an auditor of the log, over its public HTTP API.

:func:`witness` fetches the current checkpoint, checks its signature with pinned keys and its
consistency with the last checkpoint it kept, keeps it and adds its C2SP cosignature. :func:`
extends` proves that the current log extends an old checkpoint. ``fetch`` is the transport
(``urllib`` from the CLI): path in, (status, text) out.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

from tanhui.crypto import load_or_create_signing_key
from tanhui.translog import merkle, note
from tanhui.translog.verify import open_pinned

Fetch = Callable[[str], tuple[int, str]]
CHECKPOINT = "/api/v1/public/log/checkpoint"


class WitnessError(Exception):
    """The log misbehaved (or could not be read): do not cosign."""


def http_fetch(base_url: str) -> Fetch:
    import urllib.error
    import urllib.request

    def fetch(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + path, timeout=30) as answer:  # noqa: S310
                return int(answer.status), answer.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as error:
            raise WitnessError(f"cannot reach the log: {error}") from error

    return fetch


def _current(fetch: Fetch, keys: list[bytes]) -> tuple[str, note.Checkpoint]:
    status, text = fetch(CHECKPOINT)
    if status != 200:
        raise WitnessError(f"the log answered {status} for its checkpoint")
    try:
        return text, open_pinned(text, keys)
    except note.NoteError as error:
        raise WitnessError(f"the checkpoint is not signed by a pinned key: {error}") from error


def prove_extends(fetch: Fetch, old: note.Checkpoint, new: note.Checkpoint) -> None:
    """Raise :class:`WitnessError` unless ``new`` extends ``old`` (a consistency proof)."""
    if old.origin != new.origin:
        raise WitnessError(f"different logs: {old.origin!r} and {new.origin!r}")
    if new.size < old.size:
        raise WitnessError(f"the log shrank from {old.size} to {new.size} entries")
    if new.size == old.size:
        if new.root != old.root:
            raise WitnessError(f"two different trees of {new.size} entries (a fork)")
        return
    status, text = fetch(
        f"/api/v1/public/log/proofs/consistency?first={old.size}&second={new.size}"
    )
    if status != 200:
        raise WitnessError(f"the log answered {status} for a consistency proof")
    try:
        hashes = [base64.b64decode(h, validate=True) for h in json.loads(text)["hashes"]]
        merkle.verify_consistency(old.size, new.size, old.root, new.root, hashes)
    except (ValueError, KeyError, TypeError) as error:
        raise WitnessError(
            f"the log of {new.size} entries does not extend the checkpoint of {old.size}: {error}"
        ) from error


def extends(fetch: Fetch, old_note: str, keys: list[bytes]) -> note.Checkpoint:
    """The current checkpoint, proven to extend ``old_note`` (``tanhui log verify``)."""
    try:
        old = open_pinned(old_note, keys)
    except note.NoteError as error:
        raise WitnessError(f"the old checkpoint is not signed by a pinned key: {error}") from error
    _, new = _current(fetch, keys)
    prove_extends(fetch, old, new)
    return new


def witness(fetch: Fetch, state: Path, keys: list[bytes], name: str) -> str:
    """Check the current checkpoint against the last one kept in ``state``, keep it, and return
    it cosigned by the witness's key (``state/witness_key.pem``, created on first use)."""
    state.mkdir(parents=True, exist_ok=True)
    text, new = _current(fetch, keys)
    kept = state / "checkpoint"
    if kept.exists():
        try:
            old = open_pinned(kept.read_text("utf-8"), keys)
        except note.NoteError as error:
            raise WitnessError(f"the kept checkpoint no longer verifies: {error}") from error
        prove_extends(fetch, old, new)
    key = load_or_create_signing_key(state / "witness_key.pem")
    cosigned = note.cosign(text, name, key, int(time.time()))
    kept.write_text(cosigned, "utf-8")
    return cosigned
