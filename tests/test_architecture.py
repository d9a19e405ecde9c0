"""Imports flow one way: server -> schema -> resolvers -> scheduling -> {db, providers, pubsub} -> common.

Inside ``scheduling`` the parts of the domain have an order too: ``engine`` is pure; ``pages``,
``calendars`` and ``notifications`` know nothing of booking; ``crm`` (contacts, their meetings,
tasks) builds on calendars; ``booking`` and ``live`` build on pages and calendars, and booking
records its contacts through ``crm``. Relative imports are resolved before they are judged.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["server", "schema", "resolvers", "scheduling", "db", "providers", "pubsub", "common"]
# What each package may import of ours, besides itself.
ALLOWED: dict[str, set[str]] = {
    "server": {"schema", "resolvers", "scheduling", "db", "providers", "pubsub", "common"},
    "schema": {"resolvers", "scheduling", "db", "common"},
    "resolvers": {"scheduling", "db", "pubsub", "common"},
    "scheduling": {"db", "providers", "pubsub", "common"},
    "db": {"common"},
    "providers": {"common"},
    "pubsub": {"common"},
    "common": set(),
}
# What each part of the domain may import of the other parts (its top-level modules are shared).
DOMAIN_PARTS: dict[str, set[str]] = {
    "engine": set(),
    "notifications": set(),
    "pages": {"engine"},
    "calendars": {"engine", "notifications"},
    "crm": {"engine", "notifications", "calendars"},
    "booking": {"engine", "notifications", "pages", "calendars", "crm"},
    "live": {"engine", "pages", "calendars"},
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, package: str | None = None) -> list[str]:
    """Every module ``path`` imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            names.append(base)
            # ``from scheduling import booking`` imports a part of the domain by its name.
            names.extend(
                f"{base}.{alias.name}" for alias in node.names if (ROOT / base.replace(".", "/") / alias.name).is_dir()
            )
    return names


@pytest.mark.parametrize("package", LAYERS)
def test_imports_flow_one_way(package: str) -> None:
    # covers: OPS-1
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in LAYERS or top == package or top in ALLOWED[package]:
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


@pytest.mark.parametrize("part", sorted(DOMAIN_PARTS))
def test_the_parts_of_the_domain_keep_their_order(part: str) -> None:
    # covers: OPS-1
    wrong = []
    for path in _modules(f"scheduling/{part}"):
        for name in _imports(path):
            pieces = name.split(".")
            if pieces[0] != "scheduling" or len(pieces) < 2:
                continue
            other = pieces[1]
            if other == part or other not in DOMAIN_PARTS or other in DOMAIN_PARTS[part]:
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports against the order of the domain's parts:\n" + "\n".join(wrong)


def test_shared_values_and_engine_use_only_the_standard_library() -> None:
    # covers: BOOK-1
    wrong = []
    for path in [*_modules("common"), *_modules("scheduling/engine")]:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__" or name.startswith("scheduling.engine"):
                continue
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_wrong_imports_relative_ones_too(tmp_path: Path) -> None:
    # covers: OPS-1
    module = tmp_path / "probe.py"
    module.write_text(
        "from server.app import create_app\nimport schema.types\nfrom ..booking import book\nfrom . import rules\n"
    )
    imported = _imports(module, package="scheduling.pages")
    assert imported == ["server.app", "schema.types", "scheduling.booking", "scheduling.pages"]


def test_no_two_classes_of_the_application_share_a_name() -> None:
    # covers: OPS-1
    where: dict[str, list[str]] = {}
    for package in LAYERS:
        for path in _modules(package):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ClassDef):
                    where.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not shared, shared


def test_graphql_descriptions_speak_to_api_users() -> None:
    # covers: OPS-1
    from schema.build import build_schema

    sdl = build_schema(production=False).as_str()
    ids = re.findall(r"\b(?:CAL|INACT|PAGE|BOOK|SYNC|SUB|SEC|OPS)-\d+\b", sdl)
    assert not ids, f"requirement ids in the public schema: {sorted(set(ids))}"


def test_code_and_docs_name_only_files_of_the_repository() -> None:
    # covers: OPS-1
    outside = re.compile(r"\b(?:ARCHITECTURE|QUALITY|SPEC|CONTRACT|TESTING|LIBRARIES)\.md\b|\.\./shared\b")
    paths = [*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md")]
    for folder in [*LAYERS, "tests", "benchmarks", "scripts"]:
        paths.extend((ROOT / folder).rglob("*.py"))
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if outside.search(line) and path != Path(__file__)
    ]
    assert not found, found
