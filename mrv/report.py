"""The MRV report: a versioned, canonical JSON document (schema ``tanhui.mrv.report/1``).

Canonical means: keys sorted, two-space indentation, UTF-8, floats rounded to 10 significant
digits (far below any measurement's precision, far above floating-point noise), NaN written as
null, no timestamps. The same inputs therefore give the same bytes. The fields are documented in
``docs/mrv/report.md``; ``mrv/report.schema.json`` is the JSON Schema.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "tanhui.mrv.report/1"
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
SIGNIFICANT_DIGITS = 10


def canonical(value: Any) -> Any:
    """Round floats, turn NaN/inf into null and tuples into lists, recursively."""
    kind = type(value)  # exact types first: a report has hundreds of thousands of values
    if kind is float:
        return _float(value)
    if kind is dict:
        return {str(key): canonical(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [canonical(item) for item in value]
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if hasattr(value, "item"):  # numpy scalar
        return canonical(value.item())
    raise TypeError(f"not JSON data: {type(value).__name__}")


def _float(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    rounded = float(format(value, _FORMAT))
    return 0.0 if rounded == 0 else rounded


_FORMAT = f".{SIGNIFICANT_DIGITS}g"


@dataclass(frozen=True)
class Report:
    data: dict[str, Any]
    # The parcels' shapes in EPSG:4326, in report order, for the map (not part of the JSON).
    geometries: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    def to_json(self) -> str:
        return (
            json.dumps(self.data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
            + "\n"
        )

    @property
    def issuable_tco2e(self) -> int:
        return int(self.data["totals"]["issuable_tco2e"])

    @property
    def buffer_tco2e(self) -> int:
        return int(self.data["totals"]["buffer_tco2e"])

    @classmethod
    def build(cls, data: dict[str, Any], geometries: tuple[Any, ...] = ()) -> Report:
        with gc_paused():
            return cls(data=canonical(data), geometries=geometries)

    @classmethod
    def from_json(cls, text: str) -> Report:
        data = json.loads(text)
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        return cls(data=data)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a report's hundreds of thousands of small dicts and
    floats are made: none of them can form a cycle, and the collector's passes over the whole
    heap (geopandas, pyproj, numpy) cost more than building them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def json_schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(SCHEMA_FILE.read_text("utf-8"))
    return result
