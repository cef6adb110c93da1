"""Shared by the clients in other languages: a served demo collection, the build cache, and the
checksums of a query computed by the engine, in the form the clients print them."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc
from zcollection.demo import build
from zcollection_server import ServerSettings, ZCollectionFlightServer

#: Build outputs reused across runs (gitignored): compiled C++ client, npm cache, node_modules.
BUILD_DIR = Path(__file__).with_name(".build")

#: The commands the clients send (JSON text in a CMD descriptor) and the tests check.
COMMANDS: dict[str, dict[str, Any]] = {
    "everything": {"query": {"collection": "altimetry"}},
    "filtered": {
        "query": {"collection": "altimetry", "filters": "month >= 2", "variables": ["time", "ssh"]}
    },
}


class BuildCache:
    """Build outputs kept across runs in ``BUILD_DIR``, one folder per kind of build."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[Path]:
        """Hold an exclusive lock on folder ``name`` (created) while building in it."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def digest(*parts: bytes | str) -> str:
        """Return a short hex digest of ``parts``, to key a cached build output."""
        sha = hashlib.sha256()
        for part in parts:
            sha.update(part.encode() if isinstance(part, str) else part)
            sha.update(b"\0")
        return sha.hexdigest()[:20]


@pytest.fixture(scope="session")
def build_cache() -> BuildCache:
    """The build cache of the interop tests (``tests/interop/.build``, gitignored)."""
    return BuildCache(BUILD_DIR)


@pytest.fixture(params=sorted(COMMANDS))
def command(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One of ``COMMANDS``."""
    return COMMANDS[request.param]


@dataclass(frozen=True)
class Served:
    """A Flight server on the demo collection."""

    root: Path
    uri: str


@pytest.fixture(scope="session")
def interop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("interop-root")
    build(str(root / "altimetry"))
    server = ZCollectionFlightServer(ServerSettings(root=str(root), port=0))
    try:
        yield Served(root, f"grpc://127.0.0.1:{server.port}")
    finally:
        server.shutdown()


def _column_checksum(values: numpy.ndarray) -> dict[str, Any]:
    """Checksums of one column as the clients compute them (see cpp/flight_client.cc)."""
    flat = numpy.ascontiguousarray(values).ravel()
    if flat.dtype.kind in "iMm" and flat.dtype.itemsize == 8:
        wrapped = flat.view(numpy.uint64).sum(dtype=numpy.uint64)  # modulo 2**64
        return {"count": flat.size, "nulls": 0, "sum": int(wrapped)}
    if flat.dtype.kind == "f" and flat.dtype.itemsize in (4, 8):
        bits = flat.view(f"u{flat.dtype.itemsize}").astype(numpy.uint64)
        nan = numpy.isnan(flat)
        finite = flat[~nan].astype(numpy.float64)
        # in stream order, as the clients do (numpy.sum would add pairwise)
        total = float(numpy.cumsum(finite)[-1]) if finite.size else 0.0
        return {
            "count": flat.size,
            "nulls": 0,
            "sum": total,
            "nan": int(nan.sum()),
            "bits": int(bits.sum(dtype=numpy.uint64)),
        }
    raise AssertionError(f"no client checksum for {flat.dtype}")


def engine_checksums(root: Path, command: dict[str, Any]) -> dict[str, Any]:
    """Run ``command``'s query with the engine, locally, and checksum it like the clients."""
    query = command["query"]
    collection = zc.open_collection(str(root / query["collection"]))
    dataset = collection.query(filters=query.get("filters"), variables=query.get("variables"))
    assert dataset is not None
    axis = collection.schema.variables[collection.axis].dimensions[0]
    result: dict[str, Any] = {"rows": 0, "columns": {}, "immutable": {}}
    for name, variable in dataset.variables.items():
        values = variable.to_numpy()
        if axis in variable.dimensions:
            result["columns"][name] = _column_checksum(values)
            result["rows"] = values.shape[variable.dimensions.index(axis)]
        else:
            result["immutable"][name] = _column_checksum(values)
    result["partitions"] = len(list(collection.partitions(filters=query.get("filters"))))
    return result


def _assert_columns(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        have = got[name]
        assert have["count"] == want["count"], name
        assert have["nulls"] == want["nulls"], name
        if "bits" in want:
            # bit patterns exactly; the float sum up to rounding of the summation
            assert int(have["bits"]) == want["bits"], name
            assert have["nan"] == want["nan"], name
            assert math.isclose(have["sum"], want["sum"], rel_tol=1e-12, abs_tol=1e-9), name
        else:
            assert int(have["sum"]) == want["sum"], name


@pytest.fixture
def check_client_output(interop_server: Served) -> Callable[[str, dict[str, Any]], None]:
    """Return a function checking a client's printed JSON against the engine's query."""

    def check(stdout: str, command: dict[str, Any]) -> None:
        got = json.loads(stdout)
        expected = engine_checksums(interop_server.root, command)
        assert got["flights"] == [{"path": ["altimetry"], "columns": ["time", "ssh"]}]
        assert got["ordered"] is True
        assert got["endpoints"] == expected["partitions"] + (1 if expected["immutable"] else 0)
        assert got["rows"] == expected["rows"] == got["total_records"]
        assert got["columns"]["ssh"]["type"].startswith("arrow.fixed_shape_tensor")
        _assert_columns(got["columns"], expected["columns"])
        _assert_columns(got["immutable"], expected["immutable"])

    return check
