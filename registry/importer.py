"""Reading parcel files: GeoJSON, GeoPackage or a zipped Shapefile, into plain rows.

This is the only module of the registry that opens files. Rows come back reprojected to WGS84
with their attributes; deciding what a row means (the attribute mapping) is the service's job.
"""

from __future__ import annotations

import math
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_ZIP_ENTRIES = 200
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ROWS = 200_000
SUFFIXES = {".geojson", ".json", ".gpkg", ".zip"}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (rows are never partly read)."""


@dataclass(frozen=True)
class SourceRow:
    number: int  # 1-based position in the file
    attributes: dict[str, Any]
    geometry: Any  # a shapely geometry in WGS84, or None


def _shapefile_inside(path: Path) -> str:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ImportFileError("not a zip archive") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ImportFileError(f"more than {MAX_ZIP_ENTRIES} files in the archive")
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
            raise ImportFileError("the archive unpacks to more than 512 MiB")
        shapefiles = [
            entry.filename
            for entry in entries
            if entry.filename.lower().endswith(".shp")
            and ".." not in entry.filename
            and not entry.filename.startswith("/")
            and not Path(entry.filename).name.startswith(".")
        ]
    if len(shapefiles) != 1:
        raise ImportFileError(f"the archive must hold exactly one .shp file, not {len(shapefiles)}")
    return f"/vsizip/{path}/{shapefiles[0]}"


def read_rows(path: Path, *, layer: str | None = None) -> list[SourceRow]:
    """All rows of a parcel file, reprojected to WGS84."""
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportFileError(f"unsupported file type {suffix or '(none)'}: use GeoJSON, GPKG, ZIP")
    source = _shapefile_inside(path) if suffix == ".zip" else str(path)
    try:
        info = pyogrio.read_info(source, layer=layer)
        if int(info.get("features") or 0) > MAX_ROWS:
            raise ImportFileError(f"more than {MAX_ROWS} rows")
        frame = pyogrio.read_dataframe(source, layer=layer)
    except (DataSourceError, DataLayerError) as error:
        raise ImportFileError(f"cannot read the file: {error}") from None
    except ImportFileError:
        raise
    except Exception as error:  # GDAL reports malformed files in many ways
        raise ImportFileError(f"cannot read the file: {type(error).__name__}: {error}") from None
    if frame.crs is None:
        bounds = frame.total_bounds if len(frame) else [0, 0, 0, 0]
        if not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):
            raise ImportFileError("the file has no coordinate reference system")
    elif frame.crs.to_epsg() != 4326:
        frame = frame.to_crs("EPSG:4326")
    columns = [name for name in frame.columns if name != frame.geometry.name]
    rows: list[SourceRow] = []
    geometries = frame.geometry.to_numpy()
    records = frame[columns].to_dict(orient="records")
    for number, (attributes, geometry) in enumerate(zip(records, geometries, strict=True), 1):
        rows.append(SourceRow(number, _plain(attributes), geometry))
    return rows


def _plain(attributes: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            result[str(key)] = None
        elif hasattr(value, "item"):
            result[str(key)] = value.item()  # numpy scalars
        else:
            result[str(key)] = value
    return result


@contextmanager
def uploaded_file(content: bytes, filename: str) -> Iterator[Path]:
    """Write an upload to a private temporary file named with its suffix, removed afterwards."""
    suffix = Path(filename or "upload").suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportFileError(f"unsupported file type {suffix or '(none)'}: use GeoJSON, GPKG, ZIP")
    with tempfile.TemporaryDirectory(prefix="tanhui-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        yield path
