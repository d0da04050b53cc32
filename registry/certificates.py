"""Retirement certificates as documents: the signed JSON, its PDF, and offline verification.

The signed document is ``{"payload": {...}, "signature": "<base64 Ed25519>", "key_id": "..."}``;
the signature covers the canonical JSON of the payload (UTF-8, keys sorted, no whitespace). The
PDF shows the certificate in Chinese and English with a QR code to ``/verify/{id}`` and carries
the signed JSON itself (base64, in the PDF's Keywords after ``tanhui-certificate:``), so a
downloaded PDF verifies offline exactly like the JSON. Pure functions: no database.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from tanhui.crypto import SigningKey, canonical_json, key_id_for, unb64, verify_signature
from tanhui.translog import entries as log_entries
from tanhui.translog import merkle, note
from tanhui.translog.verify import pinned_keys

DOCUMENT_TYPE = "tanhui.retirement-certificate/1"
PDF_MARKER = "tanhui-certificate:"
_PDF_PAYLOAD = re.compile(rb"tanhui-certificate:([A-Za-z0-9+/=]+)")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

PURPOSE_LABELS = {
    "annual_neutrality": ("年度碳中和", "Annual carbon neutrality"),
    "event_neutrality": ("活动碳中和", "Event carbon neutrality"),
    "product_footprint": ("产品碳足迹抵消", "Product footprint offset"),
    "ecological_compensation": ("生态保护补偿", "Ecological compensation"),
    "judicial_restoration": ("司法生态修复", "Judicial ecological restoration"),
}
TYPE_LABELS = {
    "bamboo": ("竹林碳汇", "Bamboo forest sink"),
    "wetland": ("湿地碳汇", "Wetland sink"),
    "residents": ("居民碳普惠减排量", "Residents' pooled reductions"),
}


def sign(payload: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    return {
        "payload": payload,
        "signature": key.sign(canonical_json(payload)),
        "key_id": key.key_id,
    }


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str
    certificate_id: str | None
    key_id: str | None
    key_pinned: bool  # the key came from the caller, not from the document itself


def parse_document(content: bytes) -> dict[str, Any]:
    """The signed JSON from a certificate file: the JSON itself or a PDF that embeds it."""
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ValueError("the file is too large to be a certificate")
    if content.startswith(b"%PDF"):
        match = _PDF_PAYLOAD.search(content)
        if match is None:
            raise ValueError("the PDF carries no Tanhui certificate")
        try:
            content = base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the certificate embedded in the PDF is damaged") from None
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a certificate: neither JSON nor PDF") from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise ValueError("not a certificate: no payload")
    return document


def verify_document(document: dict[str, Any], public_keys: dict[str, bytes]) -> Verification:
    """Check the signature with the key named by ``key_id`` among the pinned ``public_keys``.

    Only pinned keys count: the platform's, from the operator's published list, a fingerprint in
    the settings or the local key file. A key carried by the document, an unknown key or an
    organisation's key never validates a certificate.
    """
    payload = document.get("payload")
    key_id = document.get("key_id")
    signature = document.get("signature")
    certificate_id = payload.get("certificate_id") if isinstance(payload, dict) else None
    if (
        not isinstance(payload, dict)
        or not isinstance(key_id, str)
        or not isinstance(signature, str)
    ):
        return Verification(False, "incomplete certificate", certificate_id, None, False)
    if not public_keys:
        return Verification(
            False, "no pinned platform key to verify with", certificate_id, key_id, False
        )
    public = public_keys.get(key_id)
    if public is None:
        return Verification(
            False, f"key {key_id} is not a pinned platform key", certificate_id, key_id, True
        )
    if key_id_for(public) != key_id:
        return Verification(False, "the key does not match key_id", certificate_id, key_id, True)
    try:
        message = canonical_json(payload)
    except (TypeError, ValueError):
        return Verification(False, "the payload is not plain JSON", certificate_id, key_id, True)
    if not verify_signature(public, message, signature):
        return Verification(
            False, "the signature does not match the payload", certificate_id, key_id, True
        )
    return Verification(True, "signature valid", certificate_id, key_id, True)


def embedded_key(document: dict[str, Any]) -> bytes | None:
    """The public key a document carries (to be compared with a pinned fingerprint only)."""
    embedded = document.get("public_key")
    try:
        public = unb64(embedded) if isinstance(embedded, str) else b""
    except (binascii.Error, ValueError):
        return None
    return public if len(public) == 32 else None


def keys_from_json(content: bytes) -> dict[str, bytes]:
    """The platform's keys from a published key file (see :func:`tanhui.translog.verify
    .pinned_keys`): an organisation's key in it never counts."""
    return pinned_keys(content)


def log_entry(document: dict[str, Any]) -> bytes:
    """The log entry the certificate must be: computed from the certificate alone."""
    return log_entries.certificate_body(
        str(document["payload"]["certificate_id"]),
        canonical_json(document["payload"]),
        str(document["key_id"]),
    )


def verify_logged(
    document: dict[str, Any],
    checkpoint_note: str,
    public_keys: dict[str, bytes],
    proof: dict[str, Any] | None = None,
) -> str | None:
    """None when the certificate is in the log as of the checkpoint (signed by a pinned key);
    else the reason. ``proof`` is an inclusion proof for the checkpoint's size (the document's
    own ``log`` is used when it was made for that size)."""
    text_origin = checkpoint_note.split("\n", 1)[0]
    verifiers = [note.Verifier(text_origin, raw) for raw in public_keys.values()]
    try:
        checkpoint = note.open_checkpoint(checkpoint_note, verifiers)
    except note.NoteError as error:
        return f"the checkpoint is not signed by a pinned key ({error})"
    logged = proof or document.get("log") or {}
    if not isinstance(logged, dict) or not isinstance(logged.get("index"), int):
        return "the certificate carries no log index (download it again once it is logged)"
    if logged.get("tree_size") != checkpoint.size:
        return (
            f"the inclusion proof is for tree size {logged.get('tree_size')}, the checkpoint has "
            f"{checkpoint.size}: GET /api/v1/public/log/proofs/inclusion?index={logged['index']}"
            f"&tree_size={checkpoint.size} and pass it with --proof"
        )
    try:
        hashes = [base64.b64decode(h, validate=True) for h in logged.get("hashes", [])]
        merkle.verify_inclusion(
            logged["index"],
            checkpoint.size,
            merkle.leaf_hash(log_entry(document)),
            hashes,
            checkpoint.root,
        )
    except (binascii.Error, ValueError, TypeError) as error:
        return f"the certificate is not in the log at index {logged['index']} ({error})"
    return None


# --- PDF -----------------------------------------------------------------------------------

FONT = "STSong-Light"


def render_pdf(document: dict[str, Any]) -> bytes:
    """A one-page A4 certificate (Chinese and English) that embeds the signed JSON."""
    import qrcode
    from reportlab.lib.colors import HexColor, black, white
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen.canvas import Canvas

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    payload: dict[str, Any] = document["payload"]
    embedded = base64.b64encode(canonical_json(document)).decode("ascii")
    buffer = io.BytesIO()
    width, height = A4
    pdf = Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"碳汇注销证明 Retirement certificate {payload.get('certificate_id', '')}")
    pdf.setAuthor("Tanhui 碳惠")
    pdf.setSubject(DOCUMENT_TYPE)
    pdf.setKeywords(PDF_MARKER + embedded)
    pdf.setCreator("tanhui")

    green = HexColor("#1f6f43")
    pdf.setStrokeColor(green)
    pdf.setLineWidth(3)
    pdf.rect(28, 28, width - 56, height - 56)
    pdf.setFillColor(green)
    pdf.setFont(FONT, 24)
    pdf.drawCentredString(width / 2, height - 95, "碳汇注销证明")
    pdf.setFont(FONT, 14)
    pdf.drawCentredString(width / 2, height - 118, "Carbon Credit Retirement Certificate")
    pdf.setFillColor(black)

    purpose = PURPOSE_LABELS.get(str(payload.get("purpose")), (payload.get("purpose"), ""))
    project = payload.get("project") or {}
    kind = TYPE_LABELS.get(str(project.get("type")), (project.get("type"), ""))
    rows: list[tuple[str, str]] = [
        ("证书编号 Certificate", str(payload.get("certificate_id", ""))),
        ("受益方 Beneficiary", str(payload.get("beneficiary", ""))),
        ("注销用途 Purpose", f"{purpose[0]} {purpose[1]}"),
    ]
    if payload.get("case_number"):
        rows.append(("案号 Case number", str(payload["case_number"])))
    rows += [
        ("注销数量 Quantity", f"{payload.get('quantity_t', '')} tCO2e"),
        ("项目 Project", f"{project.get('code', '')} {project.get('name', '')}"),
        ("类型 Type", f"{kind[0]} {kind[1]}"),
        ("区县 District", str(project.get("district") or "")),
        ("年份 Vintage", str(payload.get("vintage", ""))),
        ("注销方 Retired by", str(payload.get("retired_by", ""))),
        ("注销时间 Retired at", str(payload.get("retired_at", ""))),
    ]
    y = height - 170
    for label, value in rows:
        pdf.setFont(FONT, 10)
        pdf.setFillColor(HexColor("#555555"))
        pdf.drawString(60, y, label)
        pdf.setFillColor(black)
        pdf.setFont(FONT, 12)
        for index, line in enumerate(_wrap(value, 44)):
            pdf.drawString(210, y - index * 15, line)
        y -= 26 + 15 * (len(_wrap(value, 44)) - 1)
    pdf.setFont(FONT, 10)
    pdf.setFillColor(HexColor("#555555"))
    pdf.drawString(60, y, "序列号 Serial numbers")
    pdf.setFillColor(black)
    pdf.setFont("Courier", 9)
    blocks = payload.get("serial_blocks") or []
    for first, last in blocks[:12]:
        y -= 14
        pdf.drawString(70, y, f"{first} .. {last}")
    if len(blocks) > 12:
        y -= 14
        pdf.setFont(FONT, 9)
        pdf.drawString(70, y, f"… 共 {len(blocks)} 段 / {len(blocks)} blocks in total (see JSON)")

    url = str(payload.get("verify_url", ""))
    qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(url)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = 110.0
    cell = size / len(matrix)
    left, bottom = width - 60 - size, 80.0
    pdf.setFillColor(white)
    pdf.rect(left - 6, bottom - 6, size + 12, size + 12, stroke=0, fill=1)
    pdf.setFillColor(black)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(
                    left + c * cell, bottom + size - (r + 1) * cell, cell, cell, stroke=0, fill=1
                )
    pdf.setFont(FONT, 9)
    pdf.drawString(60, 150, "扫码或访问以下地址核验 Scan or visit to verify:")
    pdf.setFont("Courier", 8)
    pdf.drawString(60, 136, url[:95])
    pdf.setFont(FONT, 8)
    pdf.drawString(60, 118, f"签名密钥 Signing key: {document.get('key_id', '')} (Ed25519)")
    pdf.drawString(60, 104, "本文件内嵌签名数据，可用 `tanhui certificate verify` 离线核验。")
    pdf.drawString(
        60, 92, "The signed data is embedded; `tanhui certificate verify FILE` checks it offline."
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    """Break a line every ``width`` display cells (a Chinese character counts two)."""
    lines: list[str] = []
    current, used = "", 0
    for char in text:
        cells = 2 if ord(char) > 0x2E80 else 1
        if used + cells > width and current:
            lines.append(current)
            current, used = "", 0
        current += char
        used += cells
    return [*lines, current] if current or not lines else lines
