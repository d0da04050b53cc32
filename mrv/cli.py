"""`tanhui mrv ...` commands."""

import typer

app = typer.Typer(
    help="Measurement, reporting and verification: rasters + parcels + methodology -> report.",
    no_args_is_help=True,
)
