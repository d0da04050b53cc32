"""The registry of methodologies, by name and version (one module each)."""

from __future__ import annotations

from mrv.errors import UnknownMethodology
from mrv.methodologies.bamboo_rate import BambooRate
from mrv.methodologies.bamboo_stock_change import BambooStockChange
from mrv.methodologies.base import Methodology
from mrv.methodologies.wetland import Wetland

REGISTRY: dict[tuple[str, str], Methodology] = {
    (item.name, item.version): item for item in (BambooRate(), BambooStockChange(), Wetland())
}


def get(name: str, version: str | None = None) -> Methodology:
    """A methodology by ``name`` (its latest version) or ``name@version``."""
    if version is None and "@" in name:
        name, version = name.split("@", 1)
    matches = sorted(
        (item for (item_name, _v), item in REGISTRY.items() if item_name == name),
        key=lambda item: tuple(int(part) for part in item.version.split(".")),
    )
    if version is not None:
        matches = [item for item in matches if item.version == version]
    if not matches:
        known = ", ".join(f"{n}@{v}" for n, v in sorted(REGISTRY))
        raise UnknownMethodology(
            input=name if version is None else f"{name}@{version}", known=known
        )
    return matches[-1]


def all_methodologies() -> list[Methodology]:
    return [REGISTRY[key] for key in sorted(REGISTRY)]
