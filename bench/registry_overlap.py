"""Registry overlap check: 10,000 new parcels against 100,000 claimed ones.

``python -m bench registry_overlap [--existing N] [--new M]``

Contenders, same data, same process:
- **Tanhui** (``registry.geo.find_overlaps``): one shapely STRtree over the claimed parcels,
  queried with all new parcels at once, intersection areas of the candidate pairs vectorised;
  plus the new parcels checked among themselves.
- **Baseline**: what one writes first: for each new parcel, test every claimed parcel's bounding
  box, then intersect (pure Python loop over shapely objects), timed on a sample of new parcels
  and extrapolated linearly.
- **From the database**: the service path on SQLite: the bounding-box query over the parcels of
  active projects, WKB decoding, then the same check (``registry.service.parcels.find_overlaps``).

The parcels are squares of 1 to 20 mu (667 to 13,300 m²) with jitter on a 317 x 317 grid over
40 x 40 km of Anji in EPSG:4549 (about 40 % of the ground claimed); the new ones are scattered
at random over the same area, so most of them touch claimed parcels: the check's worst case.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
import uuid
from datetime import date
from typing import Any

import numpy as np
import shapely

SEED = 20211228
BASELINE_SAMPLE = 50


def _parcels(count: int, rng: random.Random, *, grid: bool) -> list[Any]:
    from registry import geo

    origin = geo.project([shapely.Point(119.45, 30.50)])[0]
    side = int(np.ceil(np.sqrt(count)))
    pitch = 40_000 / side
    shapes = []
    for index in range(count):
        size = float(np.sqrt(rng.uniform(667, 13_300)))
        if grid:
            x = origin.x + (index % side) * pitch + rng.uniform(0, pitch - size)
            y = origin.y + (index // side) * pitch + rng.uniform(0, pitch - size)
        else:
            x = origin.x + rng.uniform(0, 40_000 - size)
            y = origin.y + rng.uniform(0, 40_000 - size)
        shapes.append(shapely.box(x, y, x + size, y + size))
    return shapes


def _baseline(new: list[Any], existing: list[Any]) -> tuple[float, int]:
    from registry import geo

    bounds = [shape.bounds for shape in existing]
    hits = 0
    started = time.perf_counter()
    for shape in new[:BASELINE_SAMPLE]:
        minx, miny, maxx, maxy = shape.bounds
        limit = geo.overlap_limit_m2(shape.area)
        for other, (a, b, c, d) in zip(existing, bounds, strict=True):
            if a > maxx or c < minx or b > maxy or d < miny:
                continue
            if shape.intersection(other).area > limit:
                hits += 1
    elapsed = time.perf_counter() - started
    return elapsed * len(new) / min(len(new), BASELINE_SAMPLE), hits


def _database(existing: list[Any], new: list[Any]) -> tuple[float, float, int]:
    """Populate a SQLite database with the claimed parcels (not timed), then time the service."""
    import base64

    from sqlalchemy import insert
    from sqlmodel import Session

    from registry.models import Parcel, Project, ProjectParcel
    from registry.service import parcels as parcel_service
    from tanhui import identity
    from tanhui.db import create_engine, unit_of_work
    from tanhui.migrate import upgrade
    from tanhui.models import OrgKind
    from tanhui.settings import load_settings, use_settings

    folder = tempfile.mkdtemp(prefix="tanhui-bench-")
    settings = load_settings(
        database_url=f"sqlite:///{folder}/bench.db",
        secret_key="b" * 48,
        data_key=base64.b64encode(os.urandom(32)).decode(),
        state_dir=folder,
    )
    use_settings(settings)
    engine = create_engine(settings)
    upgrade(engine)
    with unit_of_work(engine) as session:
        coop = identity.create_organisation(session, name="bench", kind=OrgKind.cooperative)
        project = Project(
            code="BENCH1",
            name="bench",
            type="bamboo",
            methodology_name="m",
            methodology_version="1",
            cooperative_id=coop.id,
            crediting_start=date(2022, 1, 1),
            crediting_end=date(2051, 12, 31),
        )
        session.add(project)
        session.flush()
        rows, links = [], []
        for index, shape in enumerate(existing):
            parcel_id = uuid.uuid4()
            minx, miny, maxx, maxy = shape.bounds
            rows.append(
                {
                    "id": parcel_id,
                    "cooperative_id": coop.id,
                    "code": f"E{index}",
                    "land_type": "bamboo",
                    "village": "",
                    "area_m2": int(shape.area),
                    "geometry_geojson": "{}",
                    "geometry_wkb": shapely.to_wkb(shape),
                    "min_x": minx,
                    "min_y": miny,
                    "max_x": maxx,
                    "max_y": maxy,
                    "created_at": project.created_at,
                }
            )
            links.append({"project_id": project.id, "parcel_id": parcel_id})
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Parcel), rows[start : start + 10_000])
            session.execute(insert(ProjectParcel), links[start : start + 10_000])
    with Session(engine) as session:
        started = time.perf_counter()
        bounds = shapely.total_bounds(np.asarray(new, dtype=object))
        claimed = parcel_service.claimed_ground(session, tuple(float(b) for b in bounds))  # type: ignore[arg-type]
        loaded = time.perf_counter() - started
        findings = parcel_service.find_overlaps(session, new)
        total = time.perf_counter() - started
    engine.dispose()
    assert len(claimed) == len(existing)
    return loaded, total, len(findings)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench registry_overlap")
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--no-db", action="store_true", help="skip the database path")
    args, _ = parser.parse_known_args()
    from registry import geo

    rng = random.Random(SEED)
    existing = _parcels(args.existing, rng, grid=True)
    new = _parcels(args.new, rng, grid=False)
    print(f"registry overlap check: {args.new:,} new parcels against {args.existing:,} claimed")
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}, shapely {shapely.__version__}"
    )

    started = time.perf_counter()
    against, among = geo.find_overlaps(new, existing)
    ours = time.perf_counter() - started
    print(
        f"  tanhui STRtree:          {ours:8.2f} s  ({len(against):,} overlaps with claimed "
        f"parcels, {len(among):,} among the new)"
    )

    baseline, hits = _baseline(new, existing)
    sample = min(len(new), BASELINE_SAMPLE)
    print(
        f"  baseline loop (bbox + intersect), {sample} timed, extrapolated: {baseline:8.1f} s "
        f"({hits} overlaps in the sample)"
    )
    print(f"  ratio baseline / tanhui: {baseline / ours:,.0f}x")
    if not args.no_db:
        loaded, total, found = _database(existing, new)
        print(
            f"  from SQLite (query + WKB decode {loaded:.2f} s, then the check): {total:8.2f} s "
            f"({found:,} findings)"
        )


if __name__ == "__main__":
    main()
