"""Receipts as PDF: what an enterprise paid for an order, in Chinese and English.

Pure: takes a :class:`ReceiptDocument`, returns PDF bytes (reportlab, the CID font STSong-Light
that every PDF reader has, so no font file ships). A receipt is not a tax invoice (发票).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

FONT = "STSong-Light"
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
LINES_PER_PAGE = 18


@dataclass(frozen=True)
class ReceiptLine:
    description: str
    quantity_t: int
    price_fen_per_t: int
    amount_fen: int
    certificate_id: str | None


@dataclass(frozen=True)
class ReceiptDocument:
    order_number: str
    status: str
    buyer: str
    created_at: datetime
    settled_at: datetime | None
    provider: str
    lines: list[ReceiptLine]
    total_fen: int
    received_fen: int
    refunded_fen: int
    beneficiary: str | None
    purpose: str | None
    verify_base_url: str


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M") if moment else "-"


PROVIDER_LABELS = {
    "stripe": "Stripe 在线支付 Online (Stripe)",
    "bank_transfer": "对公转账 Bank transfer",
    "sandbox": "沙箱 Sandbox (demo)",
}
STATUS_LABELS = {
    "awaiting_payment": "待付款 Awaiting payment",
    "processing": "支付确认中 Payment processing",
    "settled": "已结算 Settled",
    "expired": "已过期 Expired",
    "cancelled": "已取消 Cancelled",
    "failed": "支付失败 Payment failed",
    "refunded": "已退款 Refunded",
}


def render_receipt(document: ReceiptDocument) -> bytes:
    from reportlab.lib.colors import HexColor, black
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen.canvas import Canvas

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    buffer = io.BytesIO()
    width, height = A4
    pdf = Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"碳汇交易收据 Receipt {document.order_number}")
    pdf.setAuthor("Tanhui 碳惠")
    pdf.setCreator("tanhui")
    green = HexColor("#1f6f43")
    grey = HexColor("#555555")

    def header() -> float:
        pdf.setFillColor(green)
        pdf.setFont(FONT, 20)
        pdf.drawString(56, height - 72, "碳汇交易收据")
        pdf.setFont(FONT, 12)
        pdf.drawString(56, height - 92, "Carbon credit purchase receipt · Tanhui 碳惠")
        pdf.setFillColor(black)
        rows = [
            ("订单号 Order", document.order_number),
            ("状态 Status", STATUS_LABELS.get(document.status, document.status)),
            ("买方 Buyer", document.buyer),
            ("下单时间 Ordered", _when(document.created_at)),
            ("结算时间 Settled", _when(document.settled_at)),
            ("支付方式 Paid by", PROVIDER_LABELS.get(document.provider, document.provider)),
        ]
        if document.beneficiary:
            rows.append(("受益方 Beneficiary", document.beneficiary))
        if document.purpose:
            rows.append(("注销用途 Purpose", document.purpose))
        y = height - 126
        for label, value in rows:
            pdf.setFont(FONT, 9)
            pdf.setFillColor(grey)
            pdf.drawString(56, y, label)
            pdf.setFillColor(black)
            pdf.setFont(FONT, 11)
            pdf.drawString(180, y, value[:60])
            y -= 18
        y -= 8
        pdf.setFont(FONT, 9)
        pdf.setFillColor(grey)
        for x, text in (
            (56, "项目与批次 Project and batch"),
            (330, "数量 t"),
            (390, "单价 CNY/t"),
            (470, "金额 CNY"),
        ):
            pdf.drawString(x, y, text)
        pdf.setFillColor(black)
        pdf.setStrokeColor(grey)
        pdf.line(56, y - 4, width - 56, y - 4)
        return float(y - 20)

    y = header()
    for index, line in enumerate(document.lines):
        if index and index % LINES_PER_PAGE == 0:
            pdf.showPage()
            y = header()
        pdf.setFont(FONT, 10)
        pdf.drawString(56, y, line.description[:40])
        pdf.drawRightString(370, y, f"{line.quantity_t:,}")
        pdf.drawRightString(455, y, yuan(line.price_fen_per_t))
        pdf.drawRightString(width - 56, y, yuan(line.amount_fen))
        if line.certificate_id:
            pdf.setFont(FONT, 8)
            pdf.setFillColor(grey)
            pdf.drawString(
                66,
                y - 11,
                f"注销证明 Certificate {line.certificate_id} · "
                f"{document.verify_base_url}/verify/{line.certificate_id}",
            )
            pdf.setFillColor(black)
            y -= 11
        y -= 20
    pdf.line(56, y + 8, width - 56, y + 8)
    totals = [
        ("合计 Total", document.total_fen),
        ("已收款 Received", document.received_fen),
    ]
    if document.refunded_fen:
        totals.append(("已退款 Refunded", document.refunded_fen))
    for label, amount in totals:
        y -= 8
        pdf.setFont(FONT, 11)
        pdf.drawString(330, y, label)
        pdf.drawRightString(width - 56, y, f"¥ {yuan(amount)}")
        y -= 10
    pdf.setFont(FONT, 8)
    pdf.setFillColor(grey)
    pdf.drawString(56, 60, "本收据不是增值税发票。This receipt is not a VAT invoice (发票).")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
