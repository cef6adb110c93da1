"""Import boundaries of the design: client -> proto -> engine, server -> proto -> engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_client_imports_no_storage_package():
    loaded = _top(_modules_after("import zcollection_client"))
    assert {"zarr", "obstore", "icechunk", "zcollection_server"}.isdisjoint(loaded)
    assert "zcollection_proto" in loaded


def test_engine_imports_neither_server_client_nor_proto():
    loaded = _top(
        _modules_after(
            "import zcollection as zc\nzc.Collection\nzc.open_store\nimport zcollection.cli"
        )
    )
    assert {"zcollection_server", "zcollection_client", "zcollection_proto"}.isdisjoint(loaded)


def test_proto_imports_no_storage_package():
    loaded = _top(_modules_after("import zcollection_proto"))
    assert {"zarr", "obstore", "icechunk", "zcollection_server", "zcollection_client"}.isdisjoint(
        loaded
    )


@pytest.mark.parametrize("statement", ["import zcollection_server"])
def test_server_does_not_import_the_client(statement):
    assert "zcollection_client" not in _top(_modules_after(statement))
