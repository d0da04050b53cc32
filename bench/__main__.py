"""``python -m bench all`` runs every benchmark; ``python -m bench NAME`` one of them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: list[str] = ["mrv", "registry_overlap", "ledger", "points", "http"]


def main() -> None:
    wanted = sys.argv[1:] or ["all"]
    names = BENCHMARKS if wanted == ["all"] else wanted
    if not names:
        print("no benchmarks yet")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        module.main()


if __name__ == "__main__":
    main()
