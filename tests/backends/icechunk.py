"""Icechunk back-end of the behaviour suite: one local repository per collection name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def _backend_class() -> Any:
    """Return ``Backend`` of the tests' conftest (loaded under a name pytest chooses)."""
    for module in list(sys.modules.values()):
        if hasattr(module, "BACKEND_FACTORIES") and hasattr(module, "Backend"):
            return module.Backend
    raise RuntimeError("tests/conftest.py is not loaded")


def _icechunk(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    root = tmp_path / "icechunk"
    return _backend_class()("icechunk", lambda name: f"icechunk://{root / name}")


FACTORIES = {"icechunk": _icechunk} if importlib.util.find_spec("icechunk") else {}
