"""`tanhui market ...` commands."""

import typer

app = typer.Typer(
    help="Listings, orders, checkout and payment providers, settlement, ecological compensation.",
    no_args_is_help=True,
)
