"""`tanhui registry ...` commands."""

import typer

app = typer.Typer(
    help="Projects, parcels, households, contracts, lifecycle, batches, serials, retirements.",
    no_args_is_help=True,
)
