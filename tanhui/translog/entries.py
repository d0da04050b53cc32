"""What goes into the log: public facts as canonical JSON of ids and hashes.

Every audited step whose action is of a public kind (:data:`PUBLIC_PREFIXES`) is logged by
:func:`tanhui.audit.record` itself, so a new use case is logged without knowing about the log.
The entry commits a hash of the whole audit record (``content_sha256``), never its payload,
which may name people; ledger anchors carry their chain heads (numbers and hashes) in clear so
that anyone can check the ledger against them. Writing an entry is one INSERT in the caller's
transaction: no lock is shared with other writers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session

from tanhui.crypto import canonical_json
from tanhui.db import utcnow
from tanhui.translog.models import LogEntry

VERSION = 1
# Actions that state a public fact of the registry or the ledger (a dotted prefix matches every
# step below it, including ones added later).
PUBLIC_PREFIXES = (
    "project.",
    "credits.",
    "batch.",
    "issuance.",
    "serials.",
    "retirement.",
    "certificate.",
    "reversal.",
    "mrv.",
    "organisation.key_",
    "points.pool.issued",
    "points.partner.key_",
    "wallet.chains_anchored",
)
CLEAR_PAYLOAD = frozenset({"wallet.chains_anchored"})
CERTIFICATE_KIND = "certificate.issued"
AUDIT_HEAD_KIND = "audit.chain_head"

_ENTRY = LogEntry.__table__  # type: ignore[attr-defined]


def is_public(action: str) -> bool:
    return action.startswith(PUBLIC_PREFIXES)


def body(kind: str, subject_type: str, subject_id: str, fields: dict[str, Any]) -> bytes:
    return canonical_json(
        {"v": VERSION, "kind": kind, "subject": [subject_type, subject_id], **fields}
    )


def audited_body(
    *, seq: int, action: str, subject_type: str, subject_id: str, content: bytes, payload_json: str
) -> bytes:
    """The entry of audit record ``seq`` (``content``: the bytes its chain hash covers)."""
    fields: dict[str, Any] = {
        "audit_seq": seq,
        "content_sha256": hashlib.sha256(content).hexdigest(),
    }
    if action in CLEAR_PAYLOAD:
        fields["payload"] = json.loads(payload_json)
    return body(action, subject_type, subject_id, fields)


def certificate_body(certificate_id: str, payload_json: bytes, key_id: str) -> bytes:
    """The entry of a retirement certificate: computable from the certificate file alone."""
    return body(
        CERTIFICATE_KIND,
        "certificate",
        certificate_id,
        {"sha256": hashlib.sha256(payload_json).hexdigest(), "key_id": key_id},
    )


def append(
    session: Session,
    *,
    kind: str,
    subject_type: str,
    subject_id: str,
    entry: bytes,
    audit_seq: int | None = None,
) -> None:
    """Record ``entry`` as pending in the caller's transaction (the sequencer places it)."""
    session.connection().execute(
        _ENTRY.insert(),
        {
            "created_at": utcnow(),
            "kind": kind,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "audit_seq": audit_seq,
            "body": entry.decode("utf-8"),
            "leaf_index": None,
        },
    )
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has one writer at a time anyway: integrate at once, in this transaction.
        from tanhui.translog.service import integrate

        integrate(session)
