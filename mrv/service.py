"""``estimate``: parcels + rasters + methodology -> a conservative, reproducible MRV report.

No session and no web here: the registry calls this and stores the report it returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import tanhui
from mrv import io, montecarlo, parcels, zonal
from mrv.errors import InvalidParameters, NoOverlap, UndefinedCrs
from mrv.methodologies import get as get_methodology
from mrv.methodologies.base import (
    MASKED_SAMPLE,
    Inputs,
    Methodology,
    ParcelGeometry,
    check_classes,
)
from mrv.params import (
    BUFFER_SOURCE,
    CONSERVATIVENESS_SOURCE,
    ParameterSet,
    load_toml,
    resolve,
)
from mrv.report import SCHEMA, Report, gc_paused

LAYER_NAMES = ("red", "nir", "green", "swir1", "blue", "qa", "index", "agb", "landcover")
EPOCH_PREFIXES = ("", "start:")
MASKED_SHARE_FLAG = 0.25  # a parcel more than a quarter masked is flagged
RasterArg = str | Path | io.RasterInput


def estimate(
    parcels_input: Any,
    rasters: Mapping[str, RasterArg],
    methodology: str | Methodology,
    params: Mapping[str, Any] | str | Path | None = None,
    *,
    progress: zonal.Progress | None = None,
    id_column: str = "id",
    classes: str | Path | None = None,
    plots: str | Path | None = None,
    mtl: str | Path | None = None,
    scheduler: Any = None,
    chunk_rows: int = zonal.CHUNK_ROWS,
    chunk_cols: int = zonal.CHUNK_COLS,
    processes: int = 1,
) -> Report:
    """Estimate a monitoring period's removals for ``parcels_input``.

    ``rasters`` maps layer names (``red nir green swir1 blue qa index agb landcover``; prefix
    ``start:`` for the first epoch of stock-change methods) to a path, ``PATH#BAND`` or a
    :class:`mrv.io.RasterInput`. ``params`` is a TOML path or the same structure as a mapping.
    ``progress(done, total)`` is called after each raster chunk. ``scheduler`` is a Dask
    scheduler address or ``distributed.Client`` (optional extra ``tanhui[dist]``). Without one,
    ``processes`` > 1 computes the raster chunks in that many worker processes (the CLI uses
    every CPU; the default stays 1 because forking a multi-threaded server is not safe; see
    :func:`mrv.zonal.start_method`); the report is the same bytes either way.
    """
    chosen = get_methodology(methodology) if isinstance(methodology, str) else methodology
    inputs_hashed: list[tuple[str, str]] = []  # (name, path) hashed in the background
    in_memory: list[dict[str, str]] = []
    if isinstance(params, str | Path):
        params_name = str(params)
        overrides = load_toml(Path(params))
        inputs_hashed.append(("params", params_name))
    else:
        params_name = "params"
        overrides = dict(params or {})
    parameter_set = resolve(chosen.parameters, overrides, source=params_name)
    raster_inputs = _raster_inputs(rasters)
    landsat = io.read_landsat_mtl(str(mtl)) if mtl is not None else None
    if mtl is not None:
        inputs_hashed.append(("mtl", str(mtl)))
    grid, layers = io.open_layers(raster_inputs, parameter_set.settings.bands, landsat)
    for key in sorted(raster_inputs):
        inputs_hashed.append((f"raster:{key}", raster_inputs[key].path))
    class_table = io.read_class_table(str(classes)) if classes is not None else None
    check_classes(getattr(chosen, "class_bounds", None), class_table, str(classes))
    if classes is not None:
        inputs_hashed.append(("classes", str(classes)))
    field_plots = io.read_plots(str(plots)) if plots is not None else None
    if plots is not None:
        inputs_hashed.append(("plots", str(plots)))
    if isinstance(parcels_input, str | Path):
        parcels_name = str(parcels_input)
        frame = io.read_parcels(parcels_name)
        inputs_hashed.append(("parcels", parcels_name))
    else:
        parcels_name = "parcels (in memory)"
        frame = parcels_input
    prepared = parcels.prepare(
        frame,
        id_column=id_column,
        name=parcels_name,
        grid=grid,
        area_crs=parameter_set.settings.area_crs,
    )
    if not isinstance(parcels_input, str | Path):
        in_memory.append({"name": "parcels", "sha256": _frame_digest(prepared), "path": ""})
    inputs = Inputs(layers=layers, classes=class_table, plots=field_plots)
    kernel = chosen.kernel(parameter_set, inputs)
    unused = sorted(set(layers) - set(kernel.continuous) - set(kernel.categorical) - set(kernel.qa))
    with ThreadPoolExecutor(max_workers=1) as hasher:  # its thread starts with the first job
        digests: list[Future[str]] = []

        def hash_inputs() -> None:  # after the zonal pass forked its workers, not before
            digests.extend(hasher.submit(io.sha256_file, path) for _name, path in inputs_hashed)

        context = _context(grid, layers, kernel, parameter_set)
        work = zonal.plan(
            prepared.raster_geometries, grid, chunk_rows=chunk_rows, chunk_cols=chunk_cols
        )
        totals = zonal.run(
            work,
            context,
            len(prepared.ids),
            progress=progress,
            scheduler=scheduler,
            processes=processes,
            workers_started=hash_inputs,
        )
        hashes = [digest.result() for digest in digests]
    covered = totals.get("pixel_coverage")
    if not np.any(covered > 0):
        raise NoOverlap(input=parcels_name, raster=grid.reference)
    plot_layers = chosen.plot_layers(parameter_set, inputs)
    if field_plots is not None and plot_layers:
        inputs = Inputs(
            layers=layers,
            classes=class_table,
            plots=field_plots,
            plot_samples=_sample_plots(field_plots, grid, layers, plot_layers, parameter_set),
        )
    geometry = ParcelGeometry(area_ha=prepared.area_ha, inside_ha=prepared.inside_ha)
    evaluation = chosen.evaluate(totals, geometry, parameter_set, inputs)
    simulation = montecarlo.simulate(evaluation, parameter_set)
    provenance_inputs = [
        {"name": name, "path": path, "sha256": digest}
        for (name, path), digest in zip(inputs_hashed, hashes, strict=True)
    ] + in_memory
    with gc_paused():
        data = _assemble(
            chosen,
            parameter_set,
            prepared,
            evaluation,
            simulation,
            grid=grid,
            layers=layers,
            unused=unused,
            provenance_inputs=provenance_inputs,
            covered=covered,
        )
        return Report.build(data, tuple(prepared.wgs84_geometries))


def _raster_inputs(rasters: Mapping[str, RasterArg]) -> dict[str, io.RasterInput]:
    allowed = {prefix + name for prefix in EPOCH_PREFIXES for name in LAYER_NAMES}
    result: dict[str, io.RasterInput] = {}
    for key, value in rasters.items():
        name = key.strip().lower()
        if name.startswith("end:"):
            name = name[4:]
        if name not in allowed:
            raise InvalidParameters(
                input=f"raster {key}",
                reason=f"unknown layer name; use {', '.join(LAYER_NAMES)} (start: for epoch 1)",
            )
        if isinstance(value, io.RasterInput):
            result[name] = value
        else:
            result[name] = io.RasterInput.parse(str(value))
    if not result:
        raise InvalidParameters(input="rasters", reason="no raster given")
    return result


def _context(
    grid: io.Grid, layers: dict[str, io.Layer], kernel: zonal.Kernel, params: ParameterSet
) -> zonal.Context:
    from pyproj import CRS

    crs = CRS.from_wkt(grid.crs_wkt)
    if crs.is_geographic:
        ellipsoid = crs.ellipsoid
        if ellipsoid is None:
            raise UndefinedCrs(input=grid.reference, reason="(no ellipsoid)")
        return zonal.Context(
            grid=grid,
            layers=layers,
            kernel=kernel,
            qa_rules=params.settings.qa_rules,
            row_areas=zonal.geographic_row_areas(
                grid, ellipsoid.semi_major_metre, ellipsoid.semi_minor_metre
            ),
        )
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return zonal.Context(
        grid=grid,
        layers=layers,
        kernel=kernel,
        qa_rules=params.settings.qa_rules,
        cell_area=grid.cell_area * unit * unit,
    )


def _sample_plots(
    plots: io.FieldPlots,
    grid: io.Grid,
    layers: dict[str, io.Layer],
    needed: tuple[str, ...],
    params: ParameterSet,
) -> dict[str, np.ndarray[Any, Any]]:
    from pyproj import CRS, Transformer

    transformer = Transformer.from_crs(
        CRS.from_epsg(4326), CRS.from_wkt(grid.crs_wkt), always_xy=True
    )
    x, y = transformer.transform(plots.lon, plots.lat)
    a, b, c, d, e, f = grid.inverse
    # A plot the projection cannot place (inf) is outside the raster, not a cast of NaN.
    with np.errstate(invalid="ignore"):
        col_at = np.floor(a * np.asarray(x) + b * np.asarray(y) + c)
        row_at = np.floor(d * np.asarray(x) + e * np.asarray(y) + f)
    placed = np.isfinite(col_at) & np.isfinite(row_at)
    cols = np.where(placed, col_at, -1).astype(np.int64)
    rows = np.where(placed, row_at, -1).astype(np.int64)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    samples: dict[str, np.ndarray[Any, Any]] = {}
    for key in needed:
        values = np.full(rows.size, np.nan)
        values[inside] = io.sample_points(layers[key], rows[inside], cols[inside])
        samples[key] = values
    masked = np.zeros(rows.size)
    if "qa" in layers:
        qa = np.full(rows.size, np.nan)
        raw_layer = layers["qa"]
        plain = io.Layer(
            key="qa",
            path=raw_layer.path,
            band=raw_layer.band,
            scale=1.0,
            offset=0.0,
            nodata=None,
            dtype=raw_layer.dtype,
        )
        qa[inside] = io.sample_points(plain, rows[inside], cols[inside])
        numbers = np.nan_to_num(qa).astype(np.int64)
        hit = np.zeros(rows.size, dtype=bool)
        for rule in params.settings.qa_rules:
            hit |= ((numbers >> rule.bit) & ((1 << rule.width) - 1)) >= rule.at_least
        masked = np.where(inside & hit, 1.0, 0.0)
    samples[MASKED_SAMPLE] = masked
    return samples


def _frame_digest(prepared: parcels.PreparedParcels) -> str:
    import shapely

    digest = hashlib.sha256()
    digest.update(prepared.source_crs.encode())
    for parcel_id, geometry in zip(prepared.ids, prepared.wgs84_geometries, strict=True):
        digest.update(parcel_id.encode())
        digest.update(shapely.to_wkb(geometry, output_dimension=2))
    return digest.hexdigest()


def _assemble(
    methodology: Methodology,
    params: ParameterSet,
    prepared: parcels.PreparedParcels,
    evaluation: Any,
    simulation: montecarlo.Simulation,
    *,
    grid: io.Grid,
    layers: dict[str, io.Layer],
    unused: list[str],
    provenance_inputs: list[dict[str, str]],
    covered: np.ndarray[Any, Any],
) -> dict[str, Any]:
    settings = params.settings
    share = settings.buffer_share
    rule = settings.rule
    net = evaluation.net
    rows = []
    for index, parcel_id in enumerate(prepared.ids):
        area = float(prepared.area_ha[index])
        inside = float(prepared.inside_ha[index])
        outside = max(0.0, area - inside)
        masked = float(evaluation.masked_ha[index])
        flags = list(evaluation.flags[index])
        if covered[index] <= 0 or inside <= 0:
            flags.append("outside_raster")
        elif outside > 1e-9 * max(area, 1e-12):
            flags.append("partly_outside_raster")
        if prepared.repaired[index]:
            flags.append("geometry_repaired")
        masked_share = masked / inside if inside > 0 else 0.0
        if masked_share > MASKED_SHARE_FLAG:
            flags.append("high_masked_share")
        parcel_net = float(net[index])
        if parcel_net < 0:
            flags.append("net_negative")
        credited = montecarlo.conservative(
            parcel_net,
            float(simulation.mean[index]),
            float(simulation.p05[index]),
            float(simulation.p95[index]),
            rule,
        )
        parcel_buffer = share * max(credited, 0.0)
        rows.append(
            {
                "id": parcel_id,
                "area_ha": area,
                "area_crs": prepared.area_crs[index],
                "eligible_area_ha": float(evaluation.eligible_area_ha[index]),
                "area_by_class_ha": {
                    key: float(evaluation.area_by_class_ha[index, column])
                    for column, key in enumerate(evaluation.class_keys)
                },
                "outside_raster_ha": outside,
                "masked_ha": masked,
                "masked_share": masked_share,
                "index": {
                    name: float(values[index]) for name, values in evaluation.statistics.items()
                },
                "removals_tco2e": float(evaluation.removals[index]),
                "emissions_tco2e": float(evaluation.emissions[index]),
                "baseline_tco2e": float(evaluation.baseline[index]),
                "leakage_tco2e": float(evaluation.leakage[index]),
                "net_tco2e": parcel_net,
                "uncertainty": {
                    "mean": float(simulation.mean[index]),
                    "p05": float(simulation.p05[index]),
                    "p95": float(simulation.p95[index]),
                },
                "conservative_net_tco2e": credited,
                "buffer_tco2e": parcel_buffer,
                "issuable_tco2e": montecarlo.issuable_whole_tonnes(credited, parcel_buffer),
                "flags": sorted(set(flags)),
            }
        )
    total_net = float(net.sum())
    total_credited = montecarlo.conservative(
        total_net, simulation.total_mean, simulation.total_p05, simulation.total_p95, rule
    )
    buffer_tonnes = montecarlo.buffer_whole_tonnes(total_credited, share)
    totals = {
        "parcels": len(rows),
        "area_ha": float(prepared.area_ha.sum()),
        "eligible_area_ha": float(evaluation.eligible_area_ha.sum()),
        "outside_raster_ha": float(np.maximum(prepared.area_ha - prepared.inside_ha, 0).sum()),
        "masked_ha": float(evaluation.masked_ha.sum()),
        "area_by_class_ha": {
            key: float(evaluation.area_by_class_ha[:, column].sum())
            for column, key in enumerate(evaluation.class_keys)
        },
        "removals_tco2e": float(evaluation.removals.sum()),
        "emissions_tco2e": float(evaluation.emissions.sum()),
        "baseline_tco2e": float(evaluation.baseline.sum()),
        "leakage_tco2e": float(evaluation.leakage.sum()),
        "net_tco2e": total_net,
        "uncertainty": {
            "mean": simulation.total_mean,
            "p05": simulation.total_p05,
            "p95": simulation.total_p95,
        },
        "conservative_net_tco2e": total_credited,
        "buffer_share": share,
        "buffer_tco2e": buffer_tonnes,
        "issuable_tco2e": montecarlo.issuable_whole_tonnes(total_credited, buffer_tonnes),
    }
    area_crs = sorted(set(prepared.area_crs))
    return {
        "schema": SCHEMA,
        "methodology": {
            "name": methodology.name,
            "version": methodology.version,
            "title": methodology.title,
            "parameters": params.as_dict(),
            **evaluation.extra,
        },
        "monitoring_period": {
            "start": settings.period_start.isoformat(),
            "end": settings.period_end.isoformat(),
            "years": settings.years,
        },
        "classes": evaluation.class_names,
        "uncertainty": {
            "draws": settings.draws,
            "seed": settings.seed,
            "interval": "90 % (5th-95th percentile)",
            "conservativeness_rule": rule,
            "conservativeness_source": CONSERVATIVENESS_SOURCE[rule],
        },
        "buffer": {
            "share": share,
            "risk_scores": settings.risk.as_dict(),
            "source": BUFFER_SOURCE,
        },
        "parcels": rows,
        "totals": totals,
        "provenance": {
            "inputs": provenance_inputs,
            "layers": [layers[key].as_dict() for key in sorted(layers)],
            "unused_layers": unused,
            "qa_rules": [rule_item.as_dict() for rule_item in settings.qa_rules],
            "software": f"tanhui {tanhui.__version__}",
            "libraries": _library_versions(),
            "seed": settings.seed,
            "crs": grid.crs_wkt,
            "parcels_crs": prepared.source_crs,
            "area_crs": area_crs[0] if len(area_crs) == 1 else ", ".join(area_crs),
            "area_crs_setting": settings.area_crs,
            "grid": {
                "transform": list(grid.transform),
                "height": grid.height,
                "width": grid.width,
            },
        },
    }


def _library_versions() -> dict[str, str]:
    import pyproj
    import rasterio
    import shapely

    return {
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "shapely": shapely.__version__,
        "pyproj": pyproj.__version__,
    }


ProgressCallback = Callable[[int, int], None]
