"""The price index: daily volume-weighted average price per credit type, from settled orders.

``vwap = Σ amount / Σ tonnes`` over the lines of orders settled that day (Asia/Shanghai), rounded
half up to the fen per tonne: a bamboo-sink price series for insurers and lenders. The chart is an
SVG drawn here, on the server (no script, no external asset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from market.errors import InvalidRange
from market.models import Order, OrderLine, OrderStatus
from market.service.common import cny_text
from registry.pricing import round_half_up
from registry.serials import ProjectType
from registry.service import suspension
from tanhui.i18n import N_, translate

INDEX_TZ = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 3 * 366
DEFAULT_DAYS = 90
CHART_WIDTH = 720
CHART_HEIGHT = 320
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 24
MARGIN_BOTTOM = 40
TYPE_COLOURS = {"bamboo": "#1f6b3a", "wetland": "#1d5a8a", "residents": "#8a4b08"}
TYPE_LABELS = {
    "bamboo": N_("Bamboo forest sink"),
    "wetland": N_("Wetland sink"),
    "residents": N_("Residents' pooled reductions"),
}


@dataclass(frozen=True)
class PricePoint:
    day: date
    credit_type: str
    volume_t: int
    amount_fen: int
    orders: int

    @property
    def vwap_fen_per_t(self) -> int:
        return round_half_up(Fraction(self.amount_fen, self.volume_t))


def check_range(
    credit_type: str | None, start: date | None, end: date | None, *, today: date | None = None
) -> tuple[str | None, date, date]:
    last = end or today or datetime.now(INDEX_TZ).date()
    first = start or last - timedelta(days=DEFAULT_DAYS - 1)
    if credit_type is not None and credit_type not in {item.value for item in ProjectType}:
        raise InvalidRange(
            N_("Unknown credit type {type}: use bamboo, wetland or residents."), type=credit_type
        )
    if first > last or (last - first).days >= MAX_DAYS:
        raise InvalidRange(
            N_("Give a range from an earlier to a later day, at most {days} days."), days=MAX_DAYS
        )
    return credit_type, first, last


def price_index(
    session: Session, *, credit_type: str | None, start: date, end: date
) -> list[PricePoint]:
    """Daily VWAP per credit type for ``start..end`` (days in Asia/Shanghai), oldest first."""
    since = datetime.combine(start, time(), tzinfo=INDEX_TZ).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=INDEX_TZ).astimezone(UTC)
    query = (
        sa_select(
            col(Order.id),
            col(Order.settled_at),
            col(OrderLine.credit_type),
            col(OrderLine.quantity_t),
            col(OrderLine.amount_fen),
        )
        .join(OrderLine, col(OrderLine.order_id) == col(Order.id))
        .where(col(Order.status) == OrderStatus.settled)
        .where(col(Order.settled_at) >= since)
        .where(col(Order.settled_at) < until)
        # a terminated project's trades leave the index until the authority reinstates them
        .where(col(OrderLine.project_id).not_in(suspension.suspended_project_ids()))
    )
    if credit_type is not None:
        query = query.where(col(OrderLine.credit_type) == credit_type)
    sums: dict[tuple[date, str], list[int]] = {}
    orders: dict[tuple[date, str], set[object]] = {}
    for order_id, settled_at, kind, quantity, amount in session.execute(query).all():
        assert settled_at is not None
        key = (settled_at.astimezone(INDEX_TZ).date(), str(kind))
        totals = sums.setdefault(key, [0, 0])
        totals[0] += int(quantity)
        totals[1] += int(amount)
        orders.setdefault(key, set()).add(order_id)
    return [
        PricePoint(
            day=day,
            credit_type=kind,
            volume_t=total[0],
            amount_fen=total[1],
            orders=len(orders[(day, kind)]),
        )
        for (day, kind), total in sorted(sums.items())
        if total[0] > 0
    ]


def _nice_step(span: float) -> float:
    """A round tick step for the axis (drawing only: prices stay integers in fen)."""
    raw = span / 5 if span > 0 else 1.0
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def chart_svg(
    points: Sequence[PricePoint], *, start: date, end: date, locale: str = "zh-CN"
) -> str:
    """A line chart of the daily VWAP (CNY/t) per credit type; accessible title and labels."""
    title = translate(N_("Carbon sink price index (volume-weighted, CNY/t)"), locale)
    width, height = CHART_WIDTH, CHART_HEIGHT
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="pi-title">',
        f'<title id="pi-title">{escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if not points:
        message = translate(N_("No settled sales in this period."), locale)
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
            f'font-size="14" fill="#4a5a50">{escape(message)}</text></svg>'
        )
        return "".join(parts)
    prices = [point.vwap_fen_per_t / 100 for point in points]
    low, high = min(prices), max(prices)
    if high - low < 1:
        low, high = low - 1, high + 1
    step = _nice_step(high - low)
    low = step * int(low // step)
    high = step * (int(high // step) + 1)
    days = max(1, (end - start).days)

    def x_of(day: date) -> float:
        return MARGIN_LEFT + plot_w * (day - start).days / days

    def y_of(price: float) -> float:
        return MARGIN_TOP + plot_h * (1 - (price - low) / (high - low))

    tick = low
    while tick <= high + 1e-9:
        y = y_of(tick)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{width - MARGIN_RIGHT}" y2="{y:.1f}" '
            f'stroke="#d5e0d8" stroke-width="1"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#4a5a50">{tick:.2f}</text>'
        )
        tick += step
    for day, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x_of(day):.1f}" y="{height - 12}" text-anchor="{anchor}" font-size="12" '
            f'fill="#4a5a50">{day.isoformat()}</text>'
        )
    parts.append(
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{width - MARGIN_RIGHT}" '
        f'y2="{MARGIN_TOP + plot_h}" stroke="#4a5a50" stroke-width="1"/>'
    )
    legend_x = MARGIN_LEFT + 8
    for kind in sorted({point.credit_type for point in points}):
        series = [point for point in points if point.credit_type == kind]
        colour = TYPE_COLOURS.get(kind, "#333333")
        coords = " ".join(
            f"{x_of(point.day):.1f},{y_of(point.vwap_fen_per_t / 100):.1f}" for point in series
        )
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for point in series:
            label = (
                f"{point.day.isoformat()} {cny_text(point.vwap_fen_per_t)} CNY/t,"
                f" {point.volume_t} t"
            )
            parts.append(
                f'<circle cx="{x_of(point.day):.1f}" cy="{y_of(point.vwap_fen_per_t / 100):.1f}"'
                f' r="3.5" fill="{colour}"><title>{escape(label)}</title></circle>'
            )
        name = translate(TYPE_LABELS.get(kind, kind), locale)
        parts.append(
            f'<rect x="{legend_x}" y="{MARGIN_TOP - 16}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="{MARGIN_TOP - 6}" font-size="12" fill="#1b2a22">'
            f"{escape(name)}</text>"
        )
        legend_x += 24 + 13 * len(name)
    parts.append("</svg>")
    return "".join(parts)
