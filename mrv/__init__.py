"""Measurement, reporting and verification: rasters + parcels + methodology -> report.

``mrv.estimate(parcels, rasters, methodology, params=None, *, progress=None) -> Report``.
The heavy modules (rasterio, geopandas) load on first use, so ``import mrv`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrv.report import Report
    from mrv.service import estimate

__all__ = ["Report", "estimate"]


def __getattr__(name: str) -> Any:
    if name == "estimate":
        from mrv.service import estimate

        return estimate
    if name == "Report":
        from mrv.report import Report

        return Report
    raise AttributeError(f"module 'mrv' has no attribute {name!r}")
