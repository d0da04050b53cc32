# ruff: noqa: E501  (report lines are long on purpose: one line per contender)
"""MRV benchmark: Tanhui's ``estimate`` vs exactextract (mean only) vs rasterstats.

``python -m bench mrv`` (or ``python -m bench.mrv [--size N] [--parcels N] [--big N]``):
1. a generated N x N int16 index raster (default 20,000) with 10,000 random parcels;
2. the real Landsat-8 scene (red, NIR, QA) with 2,000 parcels;
3. Dask distributed with 2 local workers vs 1 (if installed);
4. a sparse 40,000 x 40,000 raster with a parcel covering a quarter of it (peak memory).
Each contender runs in its own process so that its peak memory (max RSS) is its own. Files go
to a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "landsat8-l8-2015"
RASTERSTATS_SAMPLE = 1_000  # rasterstats is slow: timed on a sample, scaled to all parcels


def _generate(folder: Path, size: int, count: int) -> tuple[str, str]:
    import geopandas
    import rasterio
    import shapely
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    raster = folder / f"index_{size}.tif"
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 1,
        "dtype": "int16",
        "crs": "EPSG:32650",
        "transform": from_origin(500_000.0, 3_500_000.0, 10.0, 10.0),
        "nodata": -32768,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "scales": [1e-4],
    }
    step = 2048
    with rasterio.open(raster, "w", **profile) as dataset:
        dataset.scales = (1e-4,)
        for row in range(0, size, step):
            rows = np.arange(row, min(size, row + step))[:, None]
            cols = np.arange(size)[None, :]
            values = 5000 + 3000 * np.sin(rows / 97.0) * np.cos(cols / 131.0)
            dataset.write(
                values.astype(np.int16)[None],
                window=Window(0, row, size, rows.shape[0]),
            )
    rng = np.random.default_rng(42)
    extent = size * 10.0
    x = 500_000.0 + rng.uniform(500, extent - 500, count)
    y = 3_500_000.0 - rng.uniform(500, extent - 500, count)
    radius = rng.uniform(30, 250, count)
    shapes = shapely.buffer(shapely.points(x, y), radius, quad_segs=4)
    parcels = folder / f"parcels_{count}.gpkg"
    geopandas.GeoDataFrame(
        {"id": [f"P{index:05d}" for index in range(count)]}, geometry=shapes, crs="EPSG:32650"
    ).to_file(parcels)
    return str(raster), str(parcels)


def _landsat_parcels(folder: Path, count: int) -> str:
    import geopandas
    import shapely

    rng = np.random.default_rng(8)
    x = rng.uniform(452_600, 471_100, count)
    y = rng.uniform(3_390_700, 3_408_500, count)
    shapes = shapely.buffer(shapely.points(x, y), rng.uniform(30, 150, count), quad_segs=4)
    path = folder / "landsat_parcels.gpkg"
    geopandas.GeoDataFrame(
        {"id": [f"L{index:04d}" for index in range(count)]}, geometry=shapes, crs="EPSG:32616"
    ).to_file(path)
    return str(path)


def _run(kind: str, **arguments: Any) -> dict[str, Any]:
    """Run one contender in a fresh process; return its seconds and peak RSS."""
    command = [
        sys.executable,
        "-m",
        "bench.mrv",
        "--worker",
        json.dumps({"kind": kind, **arguments}),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1]
    )
    if result.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _worker(spec: dict[str, Any]) -> None:
    import geopandas

    kind = spec["kind"]
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if kind == "tanhui":
        import mrv
        from mrv.zonal import local_processes

        processes = spec.get("processes") or local_processes()  # as `tanhui mrv estimate` does
        report = mrv.estimate(
            spec["parcels"],
            spec["rasters"],
            spec["methodology"],
            mtl=spec.get("mtl"),
            processes=processes,
        )
        extra["processes"] = processes
        extra["issuable"] = report.issuable_tco2e
    elif kind == "tanhui-dask":
        import distributed

        import mrv

        with (
            distributed.LocalCluster(
                n_workers=spec["workers"], threads_per_worker=1, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            started = time.perf_counter()
            mrv.estimate(spec["parcels"], spec["rasters"], spec["methodology"], scheduler=client)
    elif kind == "exactextract":
        from exactextract import exact_extract

        frame = geopandas.read_file(spec["parcels"])
        for raster in spec["raster_files"]:
            exact_extract(raster, frame, ["mean"], output="pandas")
    elif kind == "rasterstats":
        from rasterstats import zonal_stats

        frame = geopandas.read_file(spec["parcels"]).iloc[: spec["sample"]]
        for raster in spec["raster_files"]:
            zonal_stats(frame, raster, stats=["mean"], all_touched=False)
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    # Forked worker processes: the largest one's max RSS (it counts the pages it shares with
    # this process, so peak_mb + children_peak_mb x workers is an upper bound of the total).
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": peak_mb, "children_peak_mb": children_mb, **extra}
        )
    )


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: reset at exec, unlike ru_maxrss, which
    also counts the parent's memory copied at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sparse_big(folder: Path, size: int) -> tuple[str, str]:
    import geopandas
    import rasterio
    from rasterio.transform import from_origin
    from shapely import box

    raster = folder / f"sparse_{size}.tif"
    with rasterio.open(
        raster,
        "w",
        driver="GTiff",
        height=size,
        width=size,
        count=1,
        dtype="int16",
        crs="EPSG:32650",
        transform=from_origin(500_000.0, 3_500_000.0, 10.0, 10.0),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        sparse_ok=True,
        nodata=-32768,
    ):
        pass  # no block written: every block reads as nodata, the file stays tiny
    extent = size * 10.0
    parcels = folder / "big_parcel.gpkg"
    quarter = box(500_000.0, 3_500_000.0 - extent / 2, 500_000.0 + extent / 2, 3_500_000.0)
    geopandas.GeoDataFrame({"id": ["Q"]}, geometry=[quarter], crs="EPSG:32650").to_file(parcels)
    return str(raster), str(parcels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--parcels", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=40_000)
    parser.add_argument("--skip", default="")
    arguments, _rest = parser.parse_known_args(sys.argv[2:] if sys.argv[1:2] == ["mrv"] else None)
    if arguments.worker:
        _worker(json.loads(arguments.worker))
        return
    skip = set(arguments.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="tanhui-bench-mrv-") as temporary:
        folder = Path(temporary)
        if "synthetic" not in skip:
            print(
                f"generating {arguments.size} x {arguments.size} raster, {arguments.parcels} parcels"
            )
            raster, parcels = _generate(folder, arguments.size, arguments.parcels)
            ours = _run(
                "tanhui", parcels=parcels, rasters={"index": raster}, methodology="bamboo-rate"
            )
            single = _run(
                "tanhui",
                parcels=parcels,
                rasters={"index": raster},
                methodology="bamboo-rate",
                processes=1,
            )
            exact = _run("exactextract", parcels=parcels, raster_files=[raster])
            sample = min(RASTERSTATS_SAMPLE, arguments.parcels)
            stats = _run("rasterstats", parcels=parcels, raster_files=[raster], sample=sample)
            stats_all = stats["seconds"] * arguments.parcels / sample
            print(f"synthetic {arguments.size}^2, {arguments.parcels} parcels:")
            print(
                f"  tanhui estimate (bamboo-rate, full report, 1000 draws), {ours['processes']} processes as the CLI runs it: {ours['seconds']:.2f} s, peak {ours['peak_mb']:.0f} MB"
            )
            print(
                f"  tanhui estimate, 1 process:                            {single['seconds']:.2f} s, peak {single['peak_mb']:.0f} MB"
            )
            print(
                f"  exactextract mean:                                     {exact['seconds']:.2f} s, peak {exact['peak_mb']:.0f} MB"
            )
            print(
                f"  rasterstats mean ({sample} parcels, scaled):             {stats_all:.2f} s, peak {stats['peak_mb']:.0f} MB"
            )
            print(
                f"  ratio tanhui/exactextract {ours['seconds'] / exact['seconds']:.2f} (1 process {single['seconds'] / exact['seconds']:.2f}; target <= 1.5); "
                f"rasterstats/tanhui {stats_all / ours['seconds']:.1f} (1 process {stats_all / single['seconds']:.1f}; target >= 10)"
            )
            if "dask" not in skip:
                try:
                    import distributed  # noqa: F401
                except ImportError:
                    print("  dask: not installed (pip install 'tanhui[dist]')")
                else:
                    one = _run(
                        "tanhui-dask",
                        workers=1,
                        parcels=parcels,
                        rasters={"index": raster},
                        methodology="bamboo-rate",
                    )
                    two = _run(
                        "tanhui-dask",
                        workers=2,
                        parcels=parcels,
                        rasters={"index": raster},
                        methodology="bamboo-rate",
                    )
                    print(
                        f"  dask 1 worker {one['seconds']:.2f} s, 2 workers {two['seconds']:.2f} s, speed-up {one['seconds'] / two['seconds']:.2f}"
                    )
        if "landsat" not in skip and SHARED.exists():
            parcels = _landsat_parcels(folder, 2_000)
            bands = {
                "red": str(SHARED / "l8_B4.tif"),
                "nir": str(SHARED / "l8_B5.tif"),
                "qa": str(SHARED / "l8_BQA.tif"),
            }
            ours = _run(
                "tanhui",
                parcels=parcels,
                rasters=bands,
                methodology="bamboo-rate",
                mtl=str(SHARED / "l8_MTL.txt"),
            )
            files = [bands["red"], bands["nir"]]
            exact = _run("exactextract", parcels=parcels, raster_files=files)
            stats = _run("rasterstats", parcels=parcels, raster_files=files, sample=2_000)
            print("landsat 627 x 603 (red, nir, qa), 2000 parcels:")
            print(
                f"  tanhui {ours['seconds']:.2f} s ({ours['peak_mb']:.0f} MB); exactextract mean of red+nir {exact['seconds']:.2f} s ({exact['peak_mb']:.0f} MB); rasterstats {stats['seconds']:.2f} s ({stats['peak_mb']:.0f} MB)"
            )
            print(
                f"  ratio tanhui/exactextract {ours['seconds'] / exact['seconds']:.2f}; rasterstats/tanhui {stats['seconds'] / ours['seconds']:.1f}"
            )
        if "big" not in skip:
            raster, parcels = _sparse_big(folder, arguments.big)
            big = _run(
                "tanhui", parcels=parcels, rasters={"index": raster}, methodology="bamboo-rate"
            )
            cells = (arguments.big // 2) ** 2
            print(
                f"sparse {arguments.big}^2 raster, one parcel over {cells:,} cells: {big['seconds']:.1f} s, peak {big['peak_mb']:.0f} MB"
                f" (+ {big['processes']} worker processes, each at most {big['children_peak_mb']:.0f} MB RSS including pages shared with the parent)"
            )


if __name__ == "__main__":
    main()
