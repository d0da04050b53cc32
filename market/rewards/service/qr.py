"""The voucher's QR code, drawn on the server (no script needed on the resident's phone)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg

from tanhui.settings import get_settings


def voucher_url(code: str) -> str:
    """What the QR encodes: the merchant's confirmation page for this code."""
    return f"{get_settings().base_url.rstrip('/')}/merchant/vouchers/{code}"


def _qr(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10)
    code.add_data(data)
    code.make(fit=True)
    return code


def svg(data: str) -> bytes:
    image = _qr(data).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def png(data: str) -> bytes:
    image = _qr(data).make_image()
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
