"""Shared fixtures: store back-ends for the collection behaviour suite and sample data.

The ``backend`` fixture is parametrised over store kinds. More kinds (S3, icechunk, a remote
Flight server) plug in as modules ``tests/backends/<kind>.py`` that define
``FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]]``; they are loaded
here by path, so they need no package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc


@dataclass
class Backend:
    """A place to put collections during one test."""

    kind: str
    make_url: Callable[[str], str]
    #: URL of the store holding collection ``name`` when ``url`` is not a store URL (remote).
    make_store_url: Callable[[str], str] | None = None

    def url(self, name: str = "coll") -> str:
        """Return the URL of a collection called ``name`` on this back-end."""
        return self.make_url(name)

    def store_url(self, name: str = "coll") -> str:
        """Return the URL of the store that holds collection ``name``."""
        return (self.make_store_url or self.make_url)(name)

    @property
    def remote(self) -> bool:
        """Whether collections are reached through a Flight server."""
        return self.make_store_url is not None

    def snapshot(self, name: str = "coll") -> dict[str, str]:
        """Return ``{key: sha256}`` of everything stored for collection ``name``."""
        store = zc.open_store(self.store_url(name), read_only=True)
        result = {}
        for key in store.list_prefix(""):
            data = store.read_bytes(key)
            result[key] = hashlib.sha256(data or b"").hexdigest()
        return result


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    tag = uuid.uuid4().hex[:8]
    return Backend("memory", lambda name: f"memory://{tag}-{name}")


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend("local", lambda name: str(tmp_path / name))


BackendFactory = Callable[[pytest.FixtureRequest, Path], Backend]
BACKEND_FACTORIES: dict[str, BackendFactory] = {"memory": _memory, "local": _local}


def _load_backend_plugins() -> None:
    folder = Path(__file__).parent / "backends"
    for path in sorted(folder.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_zc_test_backend_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        BACKEND_FACTORIES.update(getattr(module, "FACTORIES", {}))
    # remote back-ends over every store kind loaded above (they are plug-ins too)
    remote = sys.modules.get("_zc_test_backend_remote")
    if remote is not None:
        for kind in [k for k in BACKEND_FACTORIES if not k.startswith("remote-")]:
            BACKEND_FACTORIES.setdefault(f"remote-{kind}", remote._remote(kind))


_load_backend_plugins()


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each store back-end in turn."""
    yield BACKEND_FACTORIES[request.param](request, tmp_path)


@pytest.fixture(autouse=True)
def _reset_config() -> Iterator[None]:
    yield
    zc.config.reset()


def altimetry_schema(x_ac: int = 4, catalog_profile: str = "local-fast") -> zc.DatasetSchema:
    """A small version of the reference workload schema."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=x_ac, chunks=x_ac)
        .with_attribute("title", "test")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            codecs=zc.codecs.profile(catalog_profile),
            attrs={"units": "m"},
        )
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1)
        .build()
    )


def altimetry_dataset(
    start: str, days: int, per_day: int = 4, x_ac: int = 4, seed: int = 0
) -> zc.Dataset:
    """Rows every ``24 / per_day`` hours from ``start`` for ``days`` days."""
    schema = altimetry_schema(x_ac)
    n = days * per_day
    time = numpy.datetime64(start, "ns") + numpy.arange(n) * numpy.timedelta64(
        86_400 * 10**9 // per_day, "ns"
    )
    rng = numpy.random.default_rng(seed)
    return zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["time"], time),
            zc.Variable(schema.variables["ssh"], rng.normal(size=(n, x_ac)).astype("float32")),
            zc.Variable(schema.variables["x_ac"], numpy.arange(x_ac, dtype="int16")),
        ],
    )


@pytest.fixture
def make_altimetry() -> Callable[..., zc.Dataset]:
    """Factory of altimetry datasets."""
    return altimetry_dataset


@pytest.fixture
def monthly() -> Any:
    """The monthly Date partitioning of the altimetry data."""
    return zc.partitioning.Date("time", resolution="M")
