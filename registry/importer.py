"""Reading parcel files: GeoJSON, GeoPackage or a zipped Shapefile, into plain rows.

This is the only module of the registry that opens files. Rows come back reprojected to WGS84
with their attributes; deciding what a row means (the attribute mapping) is the service's job.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tanhui import uploads
from tanhui.i18n import N_

MAX_ROWS = 200_000
SUFFIXES = set(uploads.SUFFIX_KINDS)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (rows are never partly read).

    ``message`` is an English template from the catalogue, filled from ``params``; it never
    carries GDAL's text or a server path.
    """

    def __init__(self, message: str, /, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message.format(**params))

    @classmethod
    def of(cls, refused: uploads.RefusedFile) -> ImportFileError:
        return cls(refused.message, **refused.params)


@dataclass(frozen=True)
class SourceRow:
    number: int  # 1-based position in the file
    attributes: dict[str, Any]
    geometry: Any  # a shapely geometry in WGS84, or None


def read_rows(path: Path, *, layer: str | None = None) -> list[SourceRow]:
    """All rows of a parcel file, reprojected to WGS84.

    The file is what its bytes say (:mod:`tanhui.uploads`), read by that format's driver only.
    """
    try:
        with uploads.vector_source(path) as source:
            frame = uploads.read_vector(source, layer=layer, max_rows=MAX_ROWS)
    except uploads.RefusedFile as refused:
        raise ImportFileError.of(refused) from None
    if frame.crs is None:
        bounds = frame.total_bounds if len(frame) else [0, 0, 0, 0]
        if not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):
            raise ImportFileError(N_("The file has no coordinate reference system."))
    else:
        try:
            if frame.crs.to_epsg() != 4326:
                frame = frame.to_crs("EPSG:4326")
        except Exception:  # pyproj's text names the CRS the file declared, nothing of ours
            raise ImportFileError(
                N_("The file's coordinate reference system cannot be converted to WGS84.")
            ) from None
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
        raise ImportFileError(N_("Use a .geojson, .gpkg or .zip (Shapefile) file."))
    with tempfile.TemporaryDirectory(prefix="tanhui-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        yield path
