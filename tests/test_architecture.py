"""Imports flow one way: server -> schema -> resolvers -> scheduling -> {db, providers}."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["server", "schema", "resolvers", "scheduling", "db", "providers"]
SHARED_VALUES = ("scheduling.values", "scheduling.engine")
# What each package may import of ours, besides itself.
ALLOWED: dict[str, set[str]] = {
    "server": {"schema", "resolvers", "scheduling", "db", "providers"},
    "schema": {"resolvers", "scheduling", "db", "providers"},
    "resolvers": {"scheduling", "db", "providers"},
    "scheduling": {"db", "providers"},
    "db": set(),
    "providers": set(),
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _is_shared_value(name: str) -> bool:
    return any(name == shared or name.startswith(shared + ".") for shared in SHARED_VALUES)


@pytest.mark.parametrize("package", LAYERS)
def test_imports_flow_one_way(package: str) -> None:
    # covers: OPS-1
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in LAYERS or top == package:
                continue
            if top in ALLOWED[package] or _is_shared_value(name):
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_shared_values_and_engine_use_only_the_standard_library() -> None:
    # covers: BOOK-1
    wrong = []
    paths = [ROOT / "scheduling" / "values.py", *_modules("scheduling/engine")]
    for path in paths:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__" or _is_shared_value(name):
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    # covers: OPS-1
    module = tmp_path / "bad.py"
    module.write_text("from server.app import create_app\nimport schema.types\n")
    assert _imports(module) == ["server.app", "schema.types"]
