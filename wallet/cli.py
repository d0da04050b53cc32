"""`tanhui wallet ...` commands: check the ledger, anchor it in the audit chain, release expired
holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Double-entry, multi-asset ledger: accounts, journal entries, holds, balances, points.",
    no_args_is_help=True,
)


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="a signed log checkpoint kept outside the database: the journal must still "
            "hold every chain head the log anchored under it"
        ),
    ] = None,
    keys: Annotated[
        Path | None, typer.Option(help="pinned platform keys (default: the local key file)")
    ] = None,
) -> None:
    """Recompute every balance from the journal, check that every entry balances per asset and
    that the hash chains are intact; exit 1 naming the first fault."""
    from tanhui.cli import engine_or_exit, fail, settings_or_exit
    from tanhui.db import unit_of_work
    from tanhui.translog.cli import load_checkpoint, load_pinned
    from tanhui.translog.verify import log_faults
    from wallet.service import verify_ledger_snapshot
    from wallet.service.anchors import logged_anchor_faults

    engine = engine_or_exit(settings_or_exit())
    try:
        if checkpoint is not None:
            held = load_checkpoint(checkpoint, load_pinned(keys))
            with unit_of_work(engine) as session:
                faults = log_faults(session, held, records=False) + logged_anchor_faults(session)
            if faults:
                fail(f"ledger fault: {faults[0]}", code=1)
        report = verify_ledger_snapshot(engine)
    finally:
        engine.dispose()
    if not report.ok:
        more = len(report.faults) - 1
        suffix = f" (and {more} more)" if more else ""
        fail(f"ledger fault: {report.first_fault}{suffix}", code=1)
    typer.echo(
        f"ledger ok: {report.entries} entries, {report.postings} postings, "
        f"{report.chains} chains, {report.accounts} accounts"
    )


@app.command("expire-holds")
def expire_holds(
    batch: Annotated[int, typer.Option(min=1, max=1000, help="holds per transaction")] = 500,
) -> None:
    """Release the funds of every hold past its expiry (run it from cron)."""
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import retrying
    from wallet import service

    engine = engine_or_exit(settings_or_exit())
    total = 0
    try:
        while True:
            released = retrying(engine, lambda session: service.expire_holds(session, limit=batch))
            total += released
            if released < batch:
                break
    finally:
        engine.dispose()
    typer.echo(f"expired {total} holds")


@app.command("anchor")
def anchor() -> None:
    """Record the journal's chain heads in the signed audit chain (run it from cron, e.g. every
    minute): a later rewrite of any chain up to these links fails `tanhui wallet verify`."""
    from tanhui.cli import engine_or_exit, settings_or_exit
    from tanhui.db import retrying
    from wallet.service import anchor_chains

    engine = engine_or_exit(settings_or_exit())
    try:
        made = retrying(engine, anchor_chains)
    finally:
        engine.dispose()
    if made is None:
        typer.echo("nothing new to anchor")
    else:
        typer.echo(f"anchored {len(made.heads)} chain heads in audit record {made.audit_seq}")
