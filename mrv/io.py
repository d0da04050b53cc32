"""The only module of ``mrv`` that opens files: rasters, parcels, class tables, plots, MTL.

Rasters are opened with rasterio, by the GTiff driver alone (a GeoTIFF or COG: no VRT naming
other files), and read by windows only; everything past this module works on
arrays and GeoDataFrames. Failures become :mod:`mrv.errors` naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mrv.errors import (
    BandOutOfRange,
    GridMismatch,
    InvalidTable,
    MissingBand,
    UndefinedCrs,
    UnreadableInput,
    UnwritableOutput,
)
from mrv.params import BandScaling
from tanhui.uploads import RASTER_DRIVER  # also sets GDAL's process-wide limits (workers too)

HASH_BLOCK_BYTES = 1024 * 1024
MAX_TABLE_ROWS = 100_000
CLASS_TABLE_HEADER = ("value", "name", "removal_tco2e_per_ha_year", "ch4_kg_per_ha_year")
PLOT_TABLE_HEADER = ("plot_id", "lon", "lat", "agb_t_per_ha")
GRID_TOLERANCE = 1e-9  # relative tolerance when comparing transforms
# GDAL's block cache defaults to 5 % of RAM (over 1 GiB here); the streaming pass reads each
# window once, so a small cache keeps peak memory bounded without slowing it down.
GDAL_CACHE_MB = 128


@dataclass(frozen=True)
class RasterInput:
    """One band of a raster file; scale/offset/nodata override what the file declares."""

    path: str
    band: int = 1
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None

    @classmethod
    def parse(cls, text: str) -> RasterInput:
        """``PATH`` or ``PATH#BAND`` (1-based band number)."""
        match = re.fullmatch(r"(.+)#(\d+)", text)
        if match:
            return cls(path=match.group(1), band=int(match.group(2)))
        return cls(path=text)


@dataclass(frozen=True)
class Grid:
    """The pixel grid every layer of one estimate shares."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    height: int
    width: int
    reference: str  # the file that defined it (for messages)

    @property
    def inverse(self) -> tuple[float, float, float, float, float, float]:
        a, b, c, d, e, f = self.transform
        det = a * e - b * d
        return (e / det, -b / det, (b * f - e * c) / det, -d / det, a / det, (d * c - a * f) / det)

    @property
    def cell_area(self) -> float:
        a, b, _c, d, e, _f = self.transform
        return abs(a * e - b * d)

    @property
    def rotated(self) -> bool:
        return self.transform[1] != 0.0 or self.transform[3] != 0.0


@dataclass(frozen=True)
class Layer:
    """A resolved band: where to read it and how to turn its numbers into values."""

    key: str
    path: str
    band: int
    scale: float
    offset: float
    nodata: float | None
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "path": self.path,
            "band": self.band,
            "scale": self.scale,
            "offset": self.offset,
            "nodata": self.nodata,
            "dtype": self.dtype,
        }


def open_layers(
    inputs: Mapping[str, RasterInput],
    bands: Mapping[str, BandScaling],
    landsat_scaling: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[Grid, dict[str, Layer]]:
    """Open every input, check they share one grid and a CRS, and resolve their scaling.

    Scaling precedence: the parameters' ``[bands.NAME]``, then the Landsat MTL factors (by the
    ``_B<n>`` in the file name), then the file's own scale/offset tags, then 1 and 0.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    grid: Grid | None = None
    layers: dict[str, Layer] = {}
    for key in sorted(inputs):
        item = inputs[key]
        try:
            with rasterio.open(item.path, "r", driver=RASTER_DRIVER) as dataset:
                if dataset.crs is None:
                    raise UndefinedCrs(input=item.path)
                try:
                    wkt = dataset.crs.to_wkt()
                except Exception as error:
                    raise UndefinedCrs(input=item.path, reason=str(error)) from error
                if not 1 <= item.band <= dataset.count:
                    raise BandOutOfRange(
                        input=item.path, layer=key, band=item.band, count=dataset.count
                    )
                here = Grid(
                    crs_wkt=wkt,
                    transform=tuple(dataset.transform)[:6],
                    height=dataset.height,
                    width=dataset.width,
                    reference=item.path,
                )
                file_scale = float(dataset.scales[item.band - 1])
                file_offset = float(dataset.offsets[item.band - 1])
                file_nodata = dataset.nodatavals[item.band - 1]
                dtype = str(dataset.dtypes[item.band - 1])
        except RasterioIOError as error:
            raise UnreadableInput(input=item.path, reason=str(error)) from error
        if grid is None:
            grid = here
        elif not _same_grid(grid, here):
            raise GridMismatch(input=item.path, reference=grid.reference)
        base = key.split(":", 1)[-1]
        override = bands.get(key) or bands.get(base) or BandScaling()
        mtl = (landsat_scaling or {}).get(_landsat_band(item.path) or "")
        scale = _first(item.scale, override.scale, mtl[0] if mtl else None, file_scale, 1.0)
        offset = _first(item.offset, override.offset, mtl[1] if mtl else None, file_offset, 0.0)
        nodata = _first(
            item.nodata,
            override.nodata,
            None if file_nodata is None else float(file_nodata),
        )
        layers[key] = Layer(
            key=key,
            path=item.path,
            band=item.band,
            scale=scale if scale is not None else 1.0,
            offset=offset if offset is not None else 0.0,
            nodata=nodata,
            dtype=dtype,
        )
    if grid is None:
        raise MissingBand(band="any raster", methodology="-", given="none")
    try:
        from pyproj import CRS

        crs = CRS.from_wkt(grid.crs_wkt)
        if crs.is_geographic and grid.rotated:
            raise UndefinedCrs(input=grid.reference, reason="(rotated geographic grids)")
        if not crs.is_geographic and not crs.is_projected:
            raise UndefinedCrs(input=grid.reference, reason="(neither geographic nor projected)")
    except UndefinedCrs:
        raise
    except Exception as error:
        raise UndefinedCrs(input=grid.reference, reason=str(error)) from error
    return grid, layers


def _first(*values: float | None) -> float | None:
    for value in values:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    return None


def _same_grid(one: Grid, other: Grid) -> bool:
    if (one.height, one.width) != (other.height, other.width):
        return False
    if one.crs_wkt != other.crs_wkt:
        from pyproj import CRS

        if not CRS.from_wkt(one.crs_wkt).equals(CRS.from_wkt(other.crs_wkt)):
            return False
    scale = max(abs(one.transform[0]), abs(one.transform[4]), 1e-300)
    return all(
        abs(a - b) <= GRID_TOLERANCE * max(scale, abs(a), abs(b))
        for a, b in zip(one.transform, other.transform, strict=True)
    )


def _landsat_band(path: str) -> str | None:
    match = re.search(r"_B(\d+)\.TIF$", path, flags=re.IGNORECASE)
    return match.group(1) if match else None


class LayerReader:
    """Reads windows of layers; keeps each file open while the reader is in use."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}
        self._scratch: dict[str, NDArray[Any]] = {}

    def _dataset(self, layer: Layer) -> Any:
        import rasterio

        dataset = self._open.get(layer.path)
        if dataset is None:
            try:
                dataset = rasterio.open(layer.path, "r", driver=RASTER_DRIVER)
            except rasterio.errors.RasterioIOError as error:
                raise UnreadableInput(input=layer.path, reason=str(error)) from error
            self._open[layer.path] = dataset
        return dataset

    def read(
        self,
        layer: Layer,
        row0: int,
        row1: int,
        col0: int,
        col1: int,
        out: NDArray[Any] | None = None,
    ) -> NDArray[Any]:
        import rasterio
        from rasterio.windows import Window

        dataset = self._dataset(layer)
        window = Window(col0, row0, col1 - col0, row1 - row0)
        try:
            return np.asarray(dataset.read(layer.band, window=window, out=out))
        except rasterio.errors.RasterioIOError as error:
            raise UnreadableInput(input=layer.path, reason=str(error)) from error

    def gather(
        self, layer: Layer, row0: int, row1: int, col0: int, col1: int, flat: NDArray[np.int64]
    ) -> NDArray[Any]:
        """The window's values at the flat (row-major) positions ``flat``.

        The window is read into a buffer kept per file and reused: a streaming pass reads
        hundreds of windows the size of a chunk, and fresh arrays for each cost more in page
        faults than the read itself.
        """
        dtype = np.dtype(self._dataset(layer).dtypes[layer.band - 1])
        size = (row1 - row0) * (col1 - col0)
        scratch = self._scratch.get(layer.path)
        if scratch is None or scratch.size < size or scratch.dtype != dtype:
            scratch = np.empty(size, dtype=dtype)
            self._scratch[layer.path] = scratch
        window = scratch[:size].reshape(row1 - row0, col1 - col0)
        self.read(layer, row0, row1, col0, col1, out=window)
        return scratch[:size][flat]

    def close(self) -> None:
        for dataset in self._open.values():
            dataset.close()
        self._open.clear()
        self._scratch.clear()


@contextmanager
def layer_reader() -> Iterator[LayerReader]:
    import rasterio

    reader = LayerReader()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        try:
            yield reader
        finally:
            reader.close()


def sample_points(
    layer: Layer, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Values of ``layer`` at cells (row, col), scaled; NaN at nodata. One tiny read per point."""
    out = np.full(rows.size, np.nan, dtype=np.float64)
    with layer_reader() as reader:
        for index, (row, col) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            raw = reader.read(layer, row, row + 1, col, col + 1).astype(np.float64)[0, 0]
            if layer.nodata is not None and raw == layer.nodata:
                continue
            out[index] = raw * layer.scale + layer.offset
    return out


def read_parcels(path: str) -> Any:
    """A GeoDataFrame from GeoJSON, GeoPackage, or a zipped Shapefile (``.zip``)."""
    import geopandas

    target = Path(path)
    if not target.is_file():
        raise UnreadableInput(input=path, reason="no such file")
    try:
        return geopandas.read_file(target, engine="pyogrio")
    except Exception as error:
        raise UnreadableInput(input=path, reason=str(error).splitlines()[0]) from error


@dataclass(frozen=True)
class LandCoverClass:
    value: int
    name: str
    removal_tco2e_per_ha_year: float
    ch4_kg_per_ha_year: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "name": self.name,
            "removal_tco2e_per_ha_year": self.removal_tco2e_per_ha_year,
            "ch4_kg_per_ha_year": self.ch4_kg_per_ha_year,
        }


def read_class_table(path: str) -> tuple[LandCoverClass, ...]:
    """CSV with exactly the header ``value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year``."""
    rows = _read_csv(path, CLASS_TABLE_HEADER)
    classes: list[LandCoverClass] = []
    seen: set[int] = set()
    for number, row in enumerate(rows, start=2):
        try:
            value = int(row["value"])
            removal = float(row["removal_tco2e_per_ha_year"])
            methane = float(row["ch4_kg_per_ha_year"])
        except ValueError as error:
            raise InvalidTable(input=path, reason=f"line {number}: {error}") from error
        if not (math.isfinite(removal) and math.isfinite(methane)):
            raise InvalidTable(input=path, reason=f"line {number}: numbers must be finite")
        if value in seen:
            raise InvalidTable(input=path, reason=f"line {number}: value {value} repeated")
        if not row["name"].strip():
            raise InvalidTable(input=path, reason=f"line {number}: empty name")
        seen.add(value)
        classes.append(LandCoverClass(value, row["name"].strip(), removal, methane))
    if not classes:
        raise InvalidTable(input=path, reason="no classes")
    return tuple(sorted(classes, key=lambda item: item.value))


@dataclass(frozen=True)
class FieldPlots:
    plot_id: tuple[str, ...]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    agb_t_per_ha: NDArray[np.float64]
    path: str = "plots"  # the file they came from (named in messages)


def read_plots(path: str) -> FieldPlots:
    """CSV with header ``plot_id,lon,lat,agb_t_per_ha`` (WGS84 degrees, dry t/ha)."""
    rows = _read_csv(path, PLOT_TABLE_HEADER)
    ids: list[str] = []
    values: list[tuple[float, float, float]] = []
    for number, row in enumerate(rows, start=2):
        try:
            lon, lat, agb = float(row["lon"]), float(row["lat"]), float(row["agb_t_per_ha"])
        except ValueError as error:
            raise InvalidTable(input=path, reason=f"line {number}: {error}") from error
        if not (-180 <= lon <= 180 and -90 <= lat <= 90 and math.isfinite(agb) and agb >= 0):
            raise InvalidTable(input=path, reason=f"line {number}: lon/lat/agb out of range")
        ids.append(row["plot_id"])
        values.append((lon, lat, agb))
    array = np.array(values, dtype=np.float64).reshape(-1, 3)
    return FieldPlots(tuple(ids), array[:, 0], array[:, 1], array[:, 2], path=path)


def _read_csv(path: str, header: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(name.strip() for name in reader.fieldnames or ()) != header:
                raise InvalidTable(
                    input=path,
                    reason=f"header must be exactly {','.join(header)}",
                )
            rows: list[dict[str, str]] = []
            for row in reader:
                if len(rows) >= MAX_TABLE_ROWS:
                    raise InvalidTable(input=path, reason=f"more than {MAX_TABLE_ROWS} rows")
                rows.append({key.strip(): (value or "").strip() for key, value in row.items()})
            return rows
    except OSError as error:
        raise UnreadableInput(input=path, reason=error.strerror or str(error)) from error
    except UnicodeDecodeError as error:
        raise UnreadableInput(input=path, reason="not UTF-8 text") from error


def read_landsat_mtl(path: str) -> dict[str, tuple[float, float]]:
    """Reflectance scale and offset per band number from a Landsat MTL file."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as error:
        raise UnreadableInput(input=path, reason=error.strerror or str(error)) from error
    mult = dict(re.findall(r"REFLECTANCE_MULT_BAND_(\d+)\s*=\s*([-+0-9.Ee]+)", text))
    add = dict(re.findall(r"REFLECTANCE_ADD_BAND_(\d+)\s*=\s*([-+0-9.Ee]+)", text))
    bands = {band: (float(mult[band]), float(add[band])) for band in mult if band in add}
    if not bands:
        raise InvalidTable(input=path, reason="no REFLECTANCE_MULT/ADD_BAND_n entries")
    return bands


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK_BYTES)  # one buffer refilled: no fresh pages per block
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
    except OSError as error:
        raise UnreadableInput(input=path, reason=error.strerror or str(error)) from error
    return digest.hexdigest()


def read_boundary(path: str) -> Any:
    """District boundaries for the map (any vector format geopandas reads)."""
    return read_parcels(path)


def write_atomically(files: Mapping[str, str]) -> None:
    """Write every file or none: each goes to a temporary name first, then all are renamed."""
    import os

    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            target = Path(path)
            temporary = target.with_name(f".{target.name}.partial")
            temporary.write_text(text, encoding="utf-8")
            staged.append((temporary, target))
    except OSError as error:
        for temporary, _target in staged:
            temporary.unlink(missing_ok=True)
        raise UnwritableOutput(output=str(path), reason=error.strerror or str(error)) from error
    for temporary, target in staged:
        os.replace(temporary, target)
