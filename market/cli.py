"""`tanhui market ...` commands."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from sqlalchemy import Engine

app = typer.Typer(
    help="Listings, orders, checkout and payment providers, settlement, ecological compensation.",
    no_args_is_help=True,
)


def _engine() -> Engine:
    from tanhui.db import create_engine
    from tanhui.settings import SettingsError, get_settings

    try:
        return create_engine(get_settings())
    except SettingsError as error:
        typer.echo(f"tanhui: {error}", err=True)
        raise typer.Exit(2) from None


@app.command("expire")
def expire() -> None:
    """Expire orders whose hold lapsed unpaid and give back the tonnes of listings that stopped
    selling (run it every few minutes from cron)."""
    from market.service import listings, orders
    from tanhui.db import retrying

    engine = _engine()
    expired = retrying(engine, orders.expire_lapsed)
    released = retrying(engine, listings.sweep)
    typer.echo(f"expired {expired} orders, released {released} t")


@app.command("price-index")
def price_index_command(
    credit_type: Annotated[
        str | None, typer.Option("--type", help="bamboo, wetland or residents")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
) -> None:
    """Print the daily volume-weighted price index as CSV."""
    from market.service import price_index
    from tanhui.db import unit_of_work
    from tanhui.errors import DomainError

    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
        kind, first_day, last_day = price_index.check_range(credit_type, first, last)
    except (ValueError, DomainError) as error:
        typer.echo(f"tanhui: {error}", err=True)
        raise typer.Exit(2) from None
    with unit_of_work(_engine()) as session:
        points = price_index.price_index(session, credit_type=kind, start=first_day, end=last_day)
    typer.echo("day,credit_type,vwap_cny_per_t,volume_t,amount_cny,orders")
    for point in points:
        typer.echo(
            f"{point.day.isoformat()},{point.credit_type},{_yuan(point.vwap_fen_per_t)},"
            f"{point.volume_t},{_yuan(point.amount_fen)},{point.orders}"
        )


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
