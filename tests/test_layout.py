"""The dependency rules of ARCHITECTURE.md, checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"tanhui", "registry", "mrv", "wallet", "market", "frontend", "migrations"}
ALLOWED = {
    "mrv": {"tanhui"},
    "wallet": {"tanhui"},
    "registry": {"tanhui", "mrv", "wallet"},
    "market": {"tanhui", "registry", "wallet"},
    "frontend": {"tanhui", "registry", "mrv", "wallet", "market"},
}
COMPOSITION_ROOTS = {"tanhui/app.py", "tanhui/cli.py", "tanhui/demo.py", "tanhui/migrate.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for path in _files(package):
        ours = _imports(path) & OURS - {package}
        assert ours <= ALLOWED[package], (
            f"{path.relative_to(ROOT)} imports {ours - ALLOWED[package]}"
        )


def test_kernel_imports_no_domain_package_outside_the_composition_root() -> None:
    for path in _files("tanhui"):
        relative = str(path.relative_to(ROOT))
        if relative in COMPOSITION_ROOTS:
            continue
        ours = _imports(path) & OURS - {"tanhui"}
        assert not ours, f"{relative} imports {ours}"


def test_nothing_imports_frontend_but_the_app_factory() -> None:
    for package in OURS - {"frontend"}:
        for path in _files(package):
            relative = str(path.relative_to(ROOT))
            if relative == "tanhui/app.py":
                continue
            assert "frontend" not in _imports(path), f"{relative} imports frontend"


@pytest.mark.parametrize("package", ["wallet", "registry", "market", "mrv", "tanhui"])
def test_services_never_import_fastapi(package: str) -> None:
    for path in _files(package):
        if path.name in {"service.py"} or "service" in path.parts:
            assert "fastapi" not in _imports(path), f"{path.relative_to(ROOT)} imports FastAPI"


def test_mrv_algorithms_take_no_session() -> None:
    for path in _files("mrv"):
        if path.name in {"cli.py", "api.py"}:
            continue
        imports = _imports(path)
        assert "sqlmodel" not in imports and "sqlalchemy" not in imports, path


@pytest.mark.parametrize("package", ["wallet", "registry", "market", "mrv"])
def test_domain_package_has_its_module_layout(package: str) -> None:
    for module in ("models.py", "schemas.py", "service.py", "api.py", "errors.py"):
        assert (ROOT / package / module).exists() or (ROOT / package / module[:-3]).is_dir()
