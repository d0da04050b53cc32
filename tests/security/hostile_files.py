"""A corpus of hostile files, generated (deterministically) for the upload endpoints.

Each file is named like something we accept and is something else: GDAL virtual formats that
name a local file (``/etc/passwd``, the platform's signing key, a canary) or a URL on the test's
listener, archives that climb out of themselves or unpack to gigabytes, GeoPackages with views,
triggers or virtual tables, rasters whose headers declare absurd sizes, images and text under
geodata names. None may read a file, make a request, or answer 500.
"""

from __future__ import annotations

import io
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path

VECTOR_NAMES = ("parcels.geojson", "parcels.json", "parcels.gpkg", "parcels.zip")
RASTER_NAMES = ("index.tif",)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@dataclass(frozen=True)
class Hostile:
    case: str
    name: str
    content: bytes
    refused: bool = True  # False: a real file of its kind, read (harmlessly), not refused


def ogr_vrt(source: str) -> bytes:
    return (
        "<OGRVRTDataSource><OGRVRTLayer name='parcels'>"
        f"<SrcDataSource>{source}</SrcDataSource>"
        "</OGRVRTLayer></OGRVRTDataSource>"
    ).encode()


def gdal_vrt(source: str) -> bytes:
    return (
        '<VRTDataset rasterXSize="64" rasterYSize="64">'
        "<SRS>EPSG:4549</SRS><GeoTransform>0, 10, 0, 3400000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    ).encode()


def _zip(members: dict[str, bytes], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def _bomb() -> bytes:
    """64 MiB of zeros packed into about 64 KiB, next to an empty .shx and .dbf."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("parcels.shp", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as entry:
            header = b"\x00\x00\x27\x0a" + b"\0" * 96
            entry.write(header)
            for _ in range(64):
                entry.write(b"\0" * (1024 * 1024))
        for part in ("parcels.shx", "parcels.dbf"):
            archive.writestr(zipfile.ZipInfo(part, date_time=(2024, 1, 1, 0, 0, 0)), b"")
    return buffer.getvalue()


def _geopackage(folder: Path, name: str, extra_sql: list[str], *, schema: bool = False) -> bytes:
    """A valid one-layer GeoPackage with ``extra_sql`` run on it (``schema``: writable)."""
    import geopandas
    import shapely

    path = folder / f"{name}.gpkg"
    frame = geopandas.GeoDataFrame(
        {"code": ["G-1"]}, geometry=[shapely.box(119.6, 30.6, 119.601, 30.601)], crs="EPSG:4326"
    )
    frame.to_file(path, layer="parcels", driver="GPKG", engine="pyogrio")
    database = sqlite3.connect(path)
    try:
        if schema:
            database.execute("PRAGMA writable_schema=ON")
        for statement in extra_sql:
            database.execute(statement)
        database.commit()
    finally:
        database.close()
    return path.read_bytes()


def _tiff(folder: Path, name: str, **profile: object) -> bytes:
    """A GeoTIFF written with rasterio; no pixel written when ``sparse`` (header only)."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    path = folder / f"{name}.tif"
    sparse = bool(profile.pop("sparse", False))
    settings = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4549",
        "transform": Affine(10.0, 0.0, 0.0, 0.0, -10.0, 3_400_000.0),
        **profile,
    }
    if settings["crs"] is None:
        del settings["crs"]
    with rasterio.Env(), rasterio.open(path, "w", **settings) as dataset:
        if not sparse:
            dataset.write(
                np.zeros(
                    (int(settings["count"]), int(settings["height"]), int(settings["width"])),  # type: ignore[call-overload]
                    dtype=str(settings["dtype"]),
                )
            )
    return path.read_bytes()


def corpus(folder: Path, *, secrets: list[Path], port: int) -> list[Hostile]:
    """Every hostile file, for the given local secrets and listener port."""
    url = f"http://127.0.0.1:{port}/"
    files: list[Hostile] = []
    references = {
        **{f"file {path.name}": f"CSV:{path}" for path in secrets},
        "url": f"{url}parcels.geojson",
        "vsicurl": f"/vsicurl/{url}parcels.csv",
    }
    for what, source in references.items():
        for name in (*VECTOR_NAMES, *RASTER_NAMES):
            files.append(Hostile(f"OGR VRT reading {what} as {name}", name, ogr_vrt(source)))
    raster_refs = {
        **{f"file {path.name}": str(path) for path in secrets},
        "vsicurl": f"/vsicurl/{url}index.tif",
    }
    for what, source in raster_refs.items():
        for name in (*RASTER_NAMES, *VECTOR_NAMES):
            files.append(Hostile(f"GDAL VRT reading {what} as {name}", name, gdal_vrt(source)))
    files += [
        Hostile(
            "GeoJSON whose CRS is a link to the listener",
            "parcels.geojson",
            (
                '{"type": "FeatureCollection", "crs": {"type": "link", "properties": '
                f'{{"href": "{url}crs", "type": "proj4"}}}}, "features": []}}'
            ).encode(),
            refused=False,
        ),
        Hostile("a vsicurl path as a GeoJSON", "parcels.geojson", f"/vsicurl/{url}x".encode()),
        Hostile(
            "a zip that climbs out of itself",
            "parcels.zip",
            _zip({"../../parcels.shp": b"\x00\x00\x27\x0a", "../../parcels.dbf": b""}),
        ),
        Hostile(
            "a zip with an absolute path",
            "parcels.zip",
            _zip({"/tmp/parcels.shp": b"\x00\x00\x27\x0a"}),
        ),
        Hostile("a zip bomb", "parcels.zip", _bomb()),
        Hostile(
            "a shapefile zip with a VRT inside",
            "parcels.zip",
            _zip(
                {
                    "parcels.shp": ogr_vrt(f"CSV:{secrets[0]}"),
                    "parcels.vrt": ogr_vrt(f"CSV:{secrets[0]}"),
                    "parcels.dbf": b"",
                }
            ),
        ),
        Hostile(
            "a zip holding only a VRT",
            "parcels.zip",
            _zip({"parcels.vrt": ogr_vrt(f"CSV:{secrets[0]}")}),
        ),
        Hostile(
            "a GeoPackage with a trigger of its own",
            "parcels.gpkg",
            _geopackage(
                folder,
                "trigger",
                [
                    "CREATE TABLE loot (line TEXT)",
                    "CREATE TRIGGER steal AFTER INSERT ON parcels BEGIN "
                    "INSERT INTO loot VALUES (NEW.code); END",
                ],
            ),
        ),
        Hostile(
            "a GeoPackage with a view",
            "parcels.gpkg",
            _geopackage(
                folder,
                "view",
                [
                    "CREATE VIEW sneaky AS SELECT fid, geom, sqlite_version() AS code FROM parcels",
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                    "VALUES ('sneaky', 'features', 'sneaky', 4326)",
                    "INSERT INTO gpkg_geometry_columns VALUES "
                    "('sneaky', 'geom', 'POLYGON', 4326, 0, 0)",
                ],
            ),
        ),
        Hostile(
            "a GeoPackage with a VirtualOGR table on a local file",
            "parcels.gpkg",
            _geopackage(
                folder,
                "virtual",
                [
                    "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
                    "('table', 'stolen', 'stolen', 0, "
                    f"'CREATE VIRTUAL TABLE stolen USING VirtualOGR(''{secrets[0]}'')')"
                ],
                schema=True,
            ),
        ),
        Hostile("a SQLite database that is no GeoPackage", "parcels.gpkg", _plain_sqlite(folder)),
        Hostile("a text file named .gpkg", "parcels.gpkg", b"this is not a geopackage\n" * 4),
        Hostile("a PNG named .geojson", "parcels.geojson", PNG),
        Hostile("a PNG named .tif", "index.tif", PNG),
        Hostile("a text file named .tif", "index.tif", b"not a tiff\n"),
        Hostile("GeoJSON named .tif", "index.tif", b'{"type": "FeatureCollection"}'),
        Hostile("a GeoTIFF named .gpkg", "parcels.gpkg", _tiff(folder, "small")),
        Hostile(
            "a GeoTIFF declaring 100,000 x 100,000 pixels",
            "index.tif",
            _tiff(
                folder,
                "huge",
                width=100_000,
                height=100_000,
                tiled=True,
                blockxsize=512,
                blockysize=512,
                compress="deflate",
                sparse=True,
            ),
        ),
        Hostile(
            "a GeoTIFF with one 20,000 x 20,000 tile",
            "index.tif",
            _tiff(
                folder,
                "bigtile",
                width=20_000,
                height=20_000,
                tiled=True,
                blockxsize=20_000,
                blockysize=20_000,
                compress="deflate",
                sparse=True,
            ),
        ),
        Hostile(
            "a GeoTIFF with 200 bands",
            "index.tif",
            _tiff(folder, "bands", count=200, width=8, height=8),
        ),
        Hostile("a GeoTIFF without a CRS", "index.tif", _tiff(folder, "nocrs", crs=None)),
        Hostile(
            "a GeoTIFF of complex numbers",
            "index.tif",
            _tiff(folder, "complex", dtype="complex64", width=8, height=8),
        ),
    ]
    return files


def _plain_sqlite(folder: Path) -> bytes:
    path = folder / "plain.sqlite"
    database = sqlite3.connect(path)
    database.execute("CREATE TABLE t (x)")
    database.commit()
    database.close()
    return path.read_bytes()
