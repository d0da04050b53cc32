"""Untrusted files: an upload is what its bytes say it is, and GDAL opens it with one driver.

GDAL picks a driver from a file's content, not its name, and some drivers name other files, URLs
or virtual file systems: a "GeoJSON" that is really an OGR VRT reads ``/etc/passwd``, a raster
VRT named ``index.tif`` fetches URLs. So every upload path goes through this module:

- :func:`sniff` names what a file is from its magic bytes; a file whose bytes are not the kind
  the caller accepts is refused before GDAL sees it;
- :func:`vector_source` hands GDAL a GeoJSON, a GeoPackage (schema checked: no views, no
  virtual tables but R-trees, no triggers but GeoPackage's own) or the one Shapefile of a zip
  that we unpacked ourselves (names, count, sizes and ratio checked), each with its driver
  forced; :func:`open_raster` opens a TIFF with the GTiff driver alone; :func:`check_raster`
  bounds what a raster may cost before any work;
- at import, GDAL is configured process-wide: no network (every request goes to a proxy that
  cannot exist), no ``/vsicurl/``, no Python in VRTs, no external access from SQLite. (Skipping
  drivers with ``GDAL_SKIP`` was tried: it only works before a library registers its drivers
  and then warns on every open; the forced driver per open is the allow-list instead.)

Refusals are :class:`RefusedFile` with a plain message from the catalogue; GDAL's own messages
(which name server paths) are logged, never shown.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from tanhui.errors import InvalidInput
from tanhui.i18n import N_

log = logging.getLogger("tanhui.uploads")

NO_NETWORK = "tanhui-no-network://0"  # a proxy scheme curl refuses: every request fails at once
GDAL_SETTINGS = {
    "GDAL_HTTP_PROXY": NO_NETWORK,
    "GDAL_HTTPS_PROXY": NO_NETWORK,
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_NETRC": "NO",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tanhui-no-network",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "OGR_SQLITE_ALLOW_EXTERNAL_ACCESS": "NO",
    "PROJ_NETWORK": "OFF",
}


def configure_gdal() -> None:
    """Set GDAL's process-wide options in the environment, which both bundled GDALs (rasterio's
    and pyogrio's) read whenever an option is looked up; runs at import."""
    os.environ.update(GDAL_SETTINGS)


configure_gdal()

HEAD_BYTES = 128
MAX_ZIP_ENTRIES = 200
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200  # unpacked / packed, per member
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
COPY_CHUNK = 1024 * 1024

# Rasters: limits on what one uploaded raster may cost, checked before any work.
MAX_RASTER_SIDE = 50_000  # pixels, either dimension
MAX_RASTER_PIXELS = 400_000_000  # width x height
MAX_RASTER_BANDS = 16
MAX_BLOCK_PIXELS = 4096 * 4096  # one tile or strip, read whole by GDAL
RASTER_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}
)


class FileKind(StrEnum):
    """What a file is, by its bytes."""

    geojson = "geojson"
    geopackage = "geopackage"
    zip = "zip"
    tiff = "tiff"
    other = "other"


class RefusedFile(InvalidInput):
    """An upload that is not what it must be, or would cost too much to read."""

    code = "invalid-file"
    title = N_("The file cannot be used")


NOT_VECTOR = N_(
    "The file is not a GeoJSON, GeoPackage or zipped Shapefile: its content was checked, not"
    " its name."
)
NOT_MATCHING = N_("The file's content does not match its name: use .geojson, .gpkg or .zip.")
NOT_TIFF = N_("The file is not a GeoTIFF: its content was checked, not its name.")
UNREADABLE_VECTOR = N_("The file could not be read as parcels; check that it opens in a GIS.")
UNREADABLE_RASTER = N_("The raster could not be read; check that it opens in a GIS.")


def sniff(head: bytes) -> FileKind:
    """The kind of a file from its first bytes (:data:`HEAD_BYTES` are enough)."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return FileKind.tiff
    if head[:4] == b"PK\x03\x04":
        return FileKind.zip
    if head[:16] == b"SQLite format 3\x00":
        return FileKind.geopackage if head[68:72] in (b"GPKG", b"GP10", b"GP11") else FileKind.other
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if text[:1] == b"{":
        return FileKind.geojson
    return FileKind.other


def sniff_file(path: Path) -> FileKind:
    with path.open("rb") as handle:
        return sniff(handle.read(HEAD_BYTES))


# --- vectors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorSource:
    """A vector file safe to give GDAL: ``name`` forces its driver (``GeoJSON:``, ``GPKG:``)."""

    name: str
    driver: str


SUFFIX_KINDS = {
    ".geojson": FileKind.geojson,
    ".json": FileKind.geojson,
    ".gpkg": FileKind.geopackage,
    ".zip": FileKind.zip,
}


@contextmanager
def vector_source(path: Path, *, suffix: str | None = None) -> Iterator[VectorSource]:
    """The parcel file at ``path`` (named ``suffix``, or its own) ready for GDAL.

    Its bytes must be the kind its name says. A zip is unpacked here into a private folder
    (only the parts of its one Shapefile), removed on exit.
    """
    expected = SUFFIX_KINDS.get((suffix or path.suffix).lower())
    try:
        kind = sniff_file(path)
    except OSError:
        raise RefusedFile(UNREADABLE_VECTOR) from None
    if kind not in SUFFIX_KINDS.values():
        raise RefusedFile(NOT_VECTOR)
    if expected is None or kind != expected:
        raise RefusedFile(NOT_MATCHING)
    if kind == FileKind.geojson:
        yield VectorSource(f"GeoJSON:{path}", "GeoJSON")
    elif kind == FileKind.geopackage:
        check_geopackage(path)
        yield VectorSource(f"GPKG:{path}", "GPKG")
    else:
        with tempfile.TemporaryDirectory(prefix="tanhui-shapefile-") as folder:
            shapefile = unpack_shapefile(path, Path(folder))
            yield VectorSource(str(shapefile), "ESRI Shapefile")


STANDARD_TRIGGERS = ("gpkg_", "rtree_", "trigger_insert_feature_count_", "trigger_delete_feature_")


def check_geopackage(path: Path) -> None:
    """Refuse GeoPackages with views, virtual tables (other than R-trees) or foreign triggers.

    Views run SQL when GDAL reads them and virtual tables run modules; parcels need neither.
    Read with Python's SQLite (which has none of GDAL's SQL functions), read-only, immutable.
    """
    try:
        database = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        raise RefusedFile(UNREADABLE_VECTOR) from None
    try:
        rows = database.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    except sqlite3.Error:
        raise RefusedFile(UNREADABLE_VECTOR) from None
    finally:
        database.close()
    for kind, name, sql in rows:
        statement = " ".join(str(sql or "").upper().split())
        if kind == "view":
            raise RefusedFile(N_("The GeoPackage holds views; export the parcels as a table."))
        if kind == "trigger" and not str(name).startswith(STANDARD_TRIGGERS):
            raise RefusedFile(N_("The GeoPackage holds triggers of its own; export it again."))
        if "VIRTUAL TABLE" in statement and "USING RTREE" not in statement:
            raise RefusedFile(N_("The GeoPackage holds virtual tables; export it again."))


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or ":" in name or "\0" in name)


def unpack_shapefile(path: Path, folder: Path) -> Path:
    """Unpack the zip's one Shapefile into ``folder`` (as ``parcels.*``); its path.

    Names that climb out of the archive refuse it whole; only the Shapefile's own parts are
    written, under fixed names; sizes are counted as they are unpacked, not trusted.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise RefusedFile(N_("The file is not a readable zip archive.")) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise RefusedFile(
                N_("The archive holds more than {maximum} files."), maximum=MAX_ZIP_ENTRIES
            )
        if not all(_safe_member(entry.filename) for entry in entries):
            raise RefusedFile(N_("The archive names files outside itself; it is refused."))
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
            raise RefusedFile(
                N_("The archive unpacks to more than {maximum} MiB."),
                maximum=MAX_UNZIPPED_BYTES // (1024 * 1024),
            )
        visible = [
            entry
            for entry in entries
            if not entry.is_dir()
            and not any(part.startswith((".", "__MACOSX")) for part in entry.filename.split("/"))
        ]
        shapefiles = [e for e in visible if e.filename.lower().endswith(".shp")]
        if len(shapefiles) != 1:
            raise RefusedFile(
                N_("The archive must hold exactly one .shp file, not {count}."),
                count=len(shapefiles),
            )
        stem = shapefiles[0].filename[:-4]
        parts = {
            entry.filename[len(stem) :].lower(): entry
            for entry in visible
            if entry.filename.startswith(stem)
            and entry.filename[len(stem) :].lower() in SHAPEFILE_PARTS
        }
        budget = MAX_UNZIPPED_BYTES
        for part, entry in sorted(parts.items()):
            budget -= _unpack(archive, entry, folder / f"parcels{part}", budget)
    target = folder / "parcels.shp"
    with target.open("rb") as handle:
        if handle.read(4) != b"\x00\x00\x27\x0a":
            raise RefusedFile(N_("The .shp file in the archive is not a Shapefile."))
    return target


def _unpack(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one member out, counting the bytes really unpacked; its size."""
    if entry.file_size > MAX_ZIP_RATIO * max(entry.compress_size, 1024):
        raise RefusedFile(N_("The archive is packed too tightly to be parcels; it is refused."))
    written = 0
    try:
        with archive.open(entry) as source, target.open("wb") as sink:
            while chunk := source.read(COPY_CHUNK):
                written += len(chunk)
                if written > min(budget, entry.file_size):
                    raise RefusedFile(
                        N_("The archive unpacks to more than {maximum} MiB."),
                        maximum=MAX_UNZIPPED_BYTES // (1024 * 1024),
                    )
                sink.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
        raise RefusedFile(N_("The file is not a readable zip archive.")) from None
    except Exception as error:  # zlib.error and friends: a corrupt member
        if isinstance(error, RefusedFile):
            raise
        raise RefusedFile(N_("The file is not a readable zip archive.")) from None
    return written


def read_vector(source: VectorSource, *, layer: str | None, max_rows: int) -> Any:
    """A GeoDataFrame of the source's layer, read with its driver only; at most ``max_rows``."""
    import pyogrio

    try:
        info = pyogrio.read_info(source.name, layer=layer)
        if info.get("driver") != source.driver:
            raise RefusedFile(NOT_VECTOR)
        if int(info.get("features") or 0) > max_rows:
            raise RefusedFile(N_("The file holds more than {maximum} rows."), maximum=max_rows)
        return pyogrio.read_dataframe(source.name, layer=layer)
    except RefusedFile:
        raise
    except Exception as error:  # GDAL reports malformed files in many ways; its text names paths
        log.info("unreadable vector upload: %s: %s", type(error).__name__, error)
        if layer is not None and "layer" in str(error).lower():
            raise RefusedFile(N_("The file has no layer {layer}."), layer=layer[:100]) from None
        raise RefusedFile(UNREADABLE_VECTOR) from None


# --- rasters -------------------------------------------------------------------------------


RASTER_DRIVER = "GTiff"  # a COG is a GeoTIFF to read


def open_raster(path: str | Path) -> Any:
    """A rasterio dataset of a TIFF, opened by the GTiff driver alone (anything else: refused)."""
    import rasterio

    target = Path(path)
    try:
        kind = sniff_file(target)
    except OSError:
        raise RefusedFile(UNREADABLE_RASTER) from None
    if kind != FileKind.tiff:
        raise RefusedFile(NOT_TIFF)
    try:
        return rasterio.open(target, "r", driver=RASTER_DRIVER)
    except Exception as error:
        log.info("unreadable raster upload: %s: %s", type(error).__name__, error)
        raise RefusedFile(UNREADABLE_RASTER) from None


@dataclass(frozen=True)
class RasterFacts:
    width: int
    height: int
    count: int
    crs_wkt: str
    bounds: tuple[float, float, float, float]  # in the raster's CRS


def check_raster(path: str | Path, *, max_pixels: int = MAX_RASTER_PIXELS) -> RasterFacts:
    """Open an uploaded raster and refuse what it would cost too much to read.

    Dimensions, pixel count, bands, data types, tile size, a CRS and a north-up transform are
    checked from the header; nothing is read.
    """
    with open_raster(path) as dataset:
        width, height, count = int(dataset.width), int(dataset.height), int(dataset.count)
        if not (1 <= width <= MAX_RASTER_SIDE and 1 <= height <= MAX_RASTER_SIDE):
            raise RefusedFile(
                N_("The raster is {width} × {height} pixels; at most {maximum} on each side."),
                width=width,
                height=height,
                maximum=MAX_RASTER_SIDE,
            )
        if width * height > max_pixels:
            raise RefusedFile(
                N_("The raster has {pixels} pixels; at most {maximum}."),
                pixels=width * height,
                maximum=max_pixels,
            )
        if not 1 <= count <= MAX_RASTER_BANDS:
            raise RefusedFile(
                N_("The raster has {count} bands; at most {maximum}."),
                count=count,
                maximum=MAX_RASTER_BANDS,
            )
        if not set(dataset.dtypes) <= RASTER_DTYPES:
            raise RefusedFile(N_("The raster's numbers are of a type we do not read."))
        for rows, cols in dataset.block_shapes:
            if rows * cols > MAX_BLOCK_PIXELS:
                raise RefusedFile(
                    N_("The raster's tiles or strips are too large; save it with smaller tiles.")
                )
        if dataset.crs is None:
            raise RefusedFile(N_("The raster has no coordinate reference system."))
        try:
            crs_wkt = dataset.crs.to_wkt()
        except Exception:
            raise RefusedFile(N_("The raster has no coordinate reference system.")) from None
        transform = dataset.transform
        if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
            raise RefusedFile(N_("The raster must be north up, without rotation."))
        left, bottom, right, top = (float(v) for v in dataset.bounds)
        if not all(math.isfinite(v) for v in (left, bottom, right, top)):
            raise RefusedFile(N_("The raster's position is not a number."))
        return RasterFacts(width, height, count, crs_wkt, (left, bottom, right, top))


def check_overlap(
    facts: RasterFacts,
    lonlat_bounds: tuple[float, float, float, float],
    *,
    max_pixels: int = MAX_RASTER_PIXELS,
) -> None:
    """Refuse a raster that misses the area (WGS84 bounds) or whose pixels over it are more
    than ``max_pixels``: the work an estimate does is bounded by them."""
    from pyproj import CRS, Transformer

    try:
        transformer = Transformer.from_crs(
            CRS.from_epsg(4326), CRS.from_wkt(facts.crs_wkt), always_xy=True
        )
        west, south, east, north = transformer.transform_bounds(*lonlat_bounds, densify_pts=21)
    except Exception:
        raise RefusedFile(N_("The raster's coordinate reference system cannot be used.")) from None
    left, bottom, right, top = facts.bounds
    overlap_x = min(right, east) - max(left, west)
    overlap_y = min(top, north) - max(bottom, south)
    if (
        not (math.isfinite(overlap_x) and math.isfinite(overlap_y))
        or overlap_x < 0
        or overlap_y < 0
    ):
        raise RefusedFile(N_("The raster does not cover the project's parcels."))
    cell_x = (right - left) / facts.width
    cell_y = (top - bottom) / facts.height
    pixels = (overlap_x / cell_x + 1) * (overlap_y / cell_y + 1)
    if pixels > max_pixels:
        raise RefusedFile(
            N_("The raster has {pixels} pixels over the parcels; at most {maximum}."),
            pixels=int(pixels),
            maximum=max_pixels,
        )
