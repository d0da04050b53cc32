"""`tanhui rewards ...`: jobs of the rewards catalogue."""

from __future__ import annotations

import typer

app = typer.Typer(help="Carbon points rewards: vouchers and their expiry.", no_args_is_help=True)


@app.command("expire-vouchers")
def expire_vouchers() -> None:
    """Close vouchers past their date and return their points (run it from cron)."""
    from market.rewards.service import redemptions
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import retrying

    engine = engine_or_exit(settings_or_exit())
    total = 0
    try:
        while True:
            closed = retrying(engine, redemptions.expire_due)
            total += closed
            if closed < redemptions.MAX_EXPIRIES_PER_CALL:
                break
    finally:
        engine.dispose()
    typer.echo(f"expired {total} vouchers")
