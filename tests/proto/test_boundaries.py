"""zcollection_proto depends only on the engine's pure modules, numpy, pyarrow and protobuf."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "proto" / "zcollection_proto"

ALLOWED_ENGINE = ("zcollection.schema", "zcollection.data", "zcollection.errors")
ALLOWED_THIRD_PARTY = ("numpy", "pyarrow", "google.protobuf")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _allowed(module: str) -> bool:
    if module == "zcollection_proto" or module.startswith("zcollection_proto."):
        return True
    if module.split(".")[0] in sys.stdlib_module_names:
        return True
    prefixes = ALLOWED_ENGINE + ALLOWED_THIRD_PARTY
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_only_allowed_imports() -> None:
    sources = sorted(PACKAGE.glob("*.py"))
    assert sources
    bad = {
        f"{path.name}: {module}"
        for path in sources
        for module in _imports(path)
        if not _allowed(module)
    }
    assert not bad, f"zcollection_proto must not import {sorted(bad)}"


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()
