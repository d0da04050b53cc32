"""`tanhui mrv ...` commands: ``estimate`` and ``methodologies``.

Errors print one line naming the input at fault and exit with status 2; the report and the map
are written only when everything succeeded (both or neither).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(
    help="Measurement, reporting and verification: rasters + parcels + methodology -> report.",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"tanhui: {message}", err=True)
    raise typer.Exit(2)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            _fail(f"{option} {value!r}: expected NAME=PATH (e.g. red=B4.tif or nir=rgbn.tif#4)")
        result[name.strip()] = path
    return result


def _scheduler(given: str | None) -> str | None:
    """The ``--scheduler`` flag when given, else the setting ``TANHUI_MRV_SCHEDULER``."""
    from tanhui.settings import SettingsError, check_scheduler_address, load_settings

    if given is not None:
        try:
            return check_scheduler_address(given)
        except ValueError as error:
            _fail(f"--scheduler {given!r}: {error}")
    try:
        return load_settings().mrv_scheduler
    except SettingsError as error:
        _fail(str(error))


class _Bar:
    """A progress bar on stderr, created when the total is first known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        import click

        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@app.command("estimate")
def estimate_command(
    parcels: Annotated[
        str, typer.Option("--parcels", help="GeoJSON, GeoPackage or zipped Shapefile")
    ],
    methodology: Annotated[
        str, typer.Option("--methodology", help="name or name@version (see `methodologies`)")
    ],
    id_column: Annotated[str, typer.Option("--id-column", help="parcel id column")] = "id",
    raster: Annotated[
        list[str] | None,
        typer.Option(
            "--raster",
            help="NAME=PATH[#BAND] (red nir green swir1 blue qa index agb); "
            "with --raster-end these are the start epoch",
        ),
    ] = None,
    raster_end: Annotated[
        list[str] | None,
        typer.Option("--raster-end", help="NAME=PATH[#BAND] of the end epoch (stock change)"),
    ] = None,
    landcover: Annotated[
        str | None, typer.Option("--landcover", help="categorical land-cover raster")
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            help="class table CSV: value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year",
        ),
    ] = None,
    plots: Annotated[
        str | None, typer.Option("--plots", help="field plots CSV: plot_id,lon,lat,agb_t_per_ha")
    ] = None,
    params: Annotated[str | None, typer.Option("--params", help="parameters TOML")] = None,
    mtl: Annotated[
        str | None, typer.Option("--mtl", help="Landsat MTL file: reflectance scale/offset")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="report JSON file (default: stdout)")
    ] = None,
    map_path: Annotated[str | None, typer.Option("--map", help="SVG map file")] = None,
    boundary: Annotated[
        str | None, typer.Option("--boundary", help="district boundaries drawn under the map")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (default: the setting TANHUI_MRV_SCHEDULER; "
            "unset: run on this machine)",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            help="worker processes on this machine (default: one per CPU this process may use)",
        ),
    ] = None,
) -> None:
    """Estimate a monitoring period's sequestration and write the MRV report."""
    from tanhui.errors import DomainError

    scheduler = _scheduler(scheduler)
    start = _pairs(raster or [], "--raster")
    end = _pairs(raster_end or [], "--raster-end")
    if end:
        layers = {f"start:{name}": path for name, path in start.items()}
        layers.update(end)
    else:
        layers = dict(start)
    if landcover:
        layers["landcover"] = landcover
    if (landcover is None) != (classes is None):
        _fail("--landcover and --classes go together")
    if not layers:
        _fail("give at least one --raster NAME=PATH or --landcover PATH --classes FILE")
    bar = _Bar("mrv: raster chunks")
    try:
        from mrv import io, svgmap, zonal
        from mrv.service import estimate

        report = estimate(
            parcels,
            layers,
            methodology,
            params,
            progress=bar,
            id_column=id_column,
            classes=classes,
            plots=plots,
            mtl=mtl,
            scheduler=scheduler,
            processes=processes or zonal.local_processes(),
        )
        files: dict[str, str] = {}
        if map_path:
            outline = io.read_boundary(boundary) if boundary else None
            files[map_path] = svgmap.render(report, report.geometries, outline)
        text = report.to_json()
        if out:
            files[out] = text
        io.write_atomically(files)
    except DomainError as error:
        bar.close()
        _fail(str(error))
    bar.close()
    if not out:
        sys.stdout.write(text)
    totals = report.data["totals"]
    typer.echo(
        f"mrv: {totals['parcels']} parcels, net {totals['net_tco2e']:.2f} tCO2e, "
        f"conservative {totals['conservative_net_tco2e']:.2f}, buffer {totals['buffer_tco2e']} t, "
        f"issuable {totals['issuable_tco2e']} t",
        err=True,
    )


@app.command("methodologies")
def methodologies_command(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the methodologies: names, versions and parameters with their sources."""
    from mrv.api import methodology_list

    items = methodology_list()
    if as_json:
        typer.echo(json.dumps([item.model_dump() for item in items], indent=2, ensure_ascii=False))
        return
    for item in items:
        typer.echo(f"{item.name} {item.version}: {item.title}")
        for parameter in item.parameters:
            spread = f" ~ {parameter.uncertainty}" if parameter.uncertainty else ""
            typer.echo(f"  {parameter.name} = {parameter.value:g} {parameter.unit}{spread}")
            typer.echo(f"      source: {parameter.source}")
