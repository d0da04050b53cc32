"""`tanhui wallet ...` commands."""

import typer

app = typer.Typer(
    help="Double-entry, multi-asset ledger: accounts, journal entries, holds, balances, points.",
    no_args_is_help=True,
)
