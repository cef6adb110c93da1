"""Dask in the engine: lazy inserts, lazy queries, map/update on a dask.distributed cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy
import pytest
import zcollection as zc
from zcollection.conform import conform

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

PARTS = 24
ROWS = 2_000
WIDTH = 64


def make_schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("num", chunks=ROWS)
        .with_dimension("x", size=WIDTH, chunks=WIDTH)
        .with_variable("part", dtype="int64", dimensions=("num",))
        .with_variable("v", dtype="float64", dimensions=("num", "x"))
        .with_variable("w", dtype="float64", dimensions=("num",), fill_value=numpy.nan)
        .with_variable("x", dtype="int16", dimensions=("x",), fill_value=-1)
        .build()
    )


def partitioning() -> Any:
    return zc.partitioning.Sequence(("part",), dimension="num")


def expected_block(index: int, rows: int = ROWS) -> numpy.ndarray:
    """The values of partition ``index`` of ``v``."""
    base = numpy.arange(rows * WIDTH, dtype="float64").reshape(rows, WIDTH)
    return base + index * 1_000_000.0


class BlockCounter:
    """Builds the blocks of ``v`` and counts how many are alive at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.live = 0
        self.peak = 0

    def _release(self) -> None:
        with self._lock:
            self.live -= 1

    def block(self, block_info: dict[Any, Any] | None = None) -> numpy.ndarray:
        assert block_info is not None
        index = block_info[None]["chunk-location"][0]
        array = expected_block(index)
        with self._lock:
            self.calls += 1
            self.live += 1
            self.peak = max(self.peak, self.live)
        weakref.finalize(array, self._release)
        return array


def dask_dataset(counter: BlockCounter, parts: int = PARTS) -> zc.Dataset:
    schema = make_schema()
    n = parts * ROWS
    part = da.arange(n, chunks=ROWS, dtype="int64") // ROWS
    v = da.map_blocks(
        counter.block, dtype="float64", chunks=((ROWS,) * parts, (WIDTH,)), meta=numpy.empty((0, 0))
    )
    # float32 given, float64 stored: the cast must stay lazy
    w = da.arange(n, chunks=ROWS, dtype="float32")
    return zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["part"], part),
            zc.Variable(schema.variables["v"], v),
            zc.Variable(schema.variables["w"], w),
            zc.Variable(schema.variables["x"], da.arange(WIDTH, dtype="int16", chunks=WIDTH)),
        ],
    )


def numpy_dataset(parts: range, rows: int = 50) -> zc.Dataset:
    schema = make_schema()
    part = numpy.repeat(numpy.asarray(parts, dtype="int64"), rows)
    v = numpy.concatenate([expected_block(i, rows) for i in parts])
    return zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["part"], part),
            zc.Variable(schema.variables["v"], v),
            zc.Variable(schema.variables["w"], numpy.arange(part.size, dtype="float64")),
            zc.Variable(schema.variables["x"], numpy.arange(WIDTH, dtype="int16")),
        ],
    )


def create(url: Any) -> zc.Collection:
    return zc.create_collection(
        str(url), schema=make_schema(), axis="num", partitioning=partitioning()
    )


def assert_same(left: zc.Dataset, right: zc.Dataset) -> None:
    assert list(left.all_variables()) == list(right.all_variables())
    for name, var in left.all_variables().items():
        other = right.all_variables()[name]
        assert var.dtype == other.dtype, name
        numpy.testing.assert_array_equal(var.to_numpy(), other.to_numpy(), err_msg=name)


# -- inserting Dask-backed data --------------------------------------------------------------


def test_conform_keeps_dask_arrays_lazy() -> None:
    counter = BlockCounter()
    data = conform(dask_dataset(counter), make_schema(), "num", required=("part",))
    for name in ("part", "v", "w", "x"):
        assert isinstance(data[name].data, da.Array), name
    assert data["w"].data.dtype == numpy.float64
    assert counter.calls == 0


def test_insert_computes_one_partition_at_a_time(tmp_path) -> None:
    # warm up imports and caches, so the traced peak measures the insert only
    create(tmp_path / "warm").insert(dask_dataset(BlockCounter(), parts=2))
    zc.config["partition.concurrency"] = 2
    counter = BlockCounter()
    dataset = dask_dataset(counter)
    total = PARTS * ROWS * WIDTH * 8
    col = create(tmp_path / "coll")
    tracemalloc.start()
    try:
        written = col.insert(dataset)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == [f"part={i}" for i in range(PARTS)]
    assert counter.calls == PARTS  # each block computed exactly once
    assert counter.peak <= 2  # never more blocks alive than partitions written at once
    # the blocks being written, their encoded copies and bookkeeping; never the whole dataset
    message = f"peak {peak / 2**20:.1f} MiB for a {total / 2**20:.1f} MiB dataset"
    assert peak < min(total / 3, 6 * ROWS * WIDTH * 8), message
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(
        result["v"].to_numpy(), numpy.concatenate([expected_block(i) for i in range(PARTS)])
    )
    numpy.testing.assert_array_equal(result["w"].to_numpy(), numpy.arange(PARTS * ROWS))
    numpy.testing.assert_array_equal(result["x"].to_numpy(), numpy.arange(WIDTH))
    assert result["w"].dtype == numpy.float64


def test_insert_dask_rows_out_of_order_and_merge(tmp_path) -> None:
    schema = make_schema()
    keys = numpy.array([1, 0, 1, 0, 2, 0], dtype="int64")
    v = numpy.arange(keys.size * WIDTH, dtype="float64").reshape(keys.size, WIDTH)
    ds = zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["part"], da.from_array(keys, chunks=2)),
            zc.Variable(schema.variables["v"], da.from_array(v, chunks=(4, WIDTH))),
            zc.Variable(schema.variables["w"], da.arange(keys.size, chunks=3, dtype="float64")),
        ],
    )
    col = create(tmp_path / "coll")
    assert col.insert(ds) == ["part=0", "part=1", "part=2"]
    col.insert(ds, merge="concat")
    result = col.query(filters="part == 0")
    assert result is not None
    rows = numpy.flatnonzero(keys == 0)
    numpy.testing.assert_array_equal(result["v"].to_numpy(), numpy.concatenate([v[rows]] * 2))
    numpy.testing.assert_array_equal(result["w"].to_numpy(), numpy.tile(rows, 2))


# -- lazy queries ----------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path) -> zc.Collection:
    col = create(tmp_path / "coll")
    col.insert(numpy_dataset(range(6)))
    return col


def test_lazy_query_returns_dask_arrays_equal_to_eager(stored) -> None:
    lazy = stored.query(lazy=True)
    eager = stored.query()
    assert lazy is not None and eager is not None
    for name in ("part", "v", "w"):
        assert isinstance(lazy[name].data, da.Array), name
        # at least one dask chunk per partition, split at partition boundaries
        chunks = lazy[name].data.chunks[0]
        assert len(chunks) >= 6
        bounds = set(numpy.cumsum(chunks).tolist())
        assert {50 * (i + 1) for i in range(6)} <= bounds
    assert isinstance(lazy["x"].data, numpy.ndarray)  # immutable: eager
    assert lazy.attrs == eager.attrs
    assert_same(lazy, eager)


def test_lazy_query_reads_nothing_until_computed(stored) -> None:
    lazy = stored.query(lazy=True, variables=["v"])
    assert lazy is not None
    # rewrite the data (same shapes): a lazy result reads what is stored at compute time
    changed = numpy_dataset(range(6))
    changed = changed.replace(
        {**changed.all_variables(), "v": changed["v"].with_data(-changed["v"].to_numpy())}
    )
    stored.insert(changed)
    numpy.testing.assert_array_equal(
        lazy["v"].to_numpy(), -numpy.concatenate([expected_block(i, 50) for i in range(6)])
    )


def test_lazy_query_variables_and_filters(stored) -> None:
    lazy = stored.query(lazy=True, variables=["v", "x"], filters="part >= 2 and part < 5")
    eager = stored.query(variables=["v", "x"], filters="part >= 2 and part < 5")
    assert lazy is not None and eager is not None
    assert sorted(lazy.all_variables()) == ["v", "x"]
    assert lazy["v"].shape == (150, WIDTH)
    assert_same(lazy, eager)
    assert stored.query(lazy=True, filters="part > 100") is None


def test_lazy_query_async_and_missing_variables(stored) -> None:
    # a partition rewritten without "w": the lazy read fills it like the eager one
    stored.update(lambda ds: ds.select(["part", "v"]), filters="part == 3")
    lazy = asyncio.run(stored.query_async(lazy=True))
    eager = stored.query()
    assert lazy is not None and eager is not None
    assert isinstance(lazy["w"].data, da.Array)
    assert numpy.isnan(eager["w"].to_numpy()[150:200]).all()
    assert_same(lazy, eager)


def test_lazy_query_with_row_selection(tmp_path, make_altimetry, monthly) -> None:
    ds = make_altimetry("2024-01-20", 30)
    lazy_ds = ds.replace(
        {
            k: v.with_data(da.from_array(v.to_numpy(), chunks=7))
            for k, v in ds.all_variables().items()
        }
    )
    col = zc.create_collection(
        str(tmp_path / "alti"), schema=ds.schema, axis="time", partitioning=monthly
    )
    assert col.insert(lazy_ds) == ["year=2024/month=01", "year=2024/month=02"]
    selection = zc.RowSelection("2024-01-25", "2024-02-10")
    lazy = col.query(lazy=True, selection=selection)
    eager = col.query(selection=selection)
    assert lazy is not None and eager is not None
    assert isinstance(lazy["ssh"].data, da.Array)
    assert lazy["time"].shape[0] == 16 * 4
    assert_same(lazy, eager)


def test_engine_imports_and_works_without_dask(tmp_path) -> None:
    script = f"""
import sys
sys.modules["dask"] = None
sys.modules["distributed"] = None
import numpy, zcollection as zc
schema = zc.Schema().with_dimension("num")
schema = schema.with_variable("n", dtype="int64", dimensions=("num",)).build()
col = zc.create_collection({str(tmp_path / "c")!r}, schema=schema, axis="num",
    partitioning=zc.partitioning.Sequence(("n",), dimension="num"))
ds = zc.Dataset(schema, [zc.Variable(schema.variables["n"], numpy.array([2, 1, 2]))])
assert col.insert(ds) == ["n=1", "n=2"]
assert col.query()["n"].to_numpy().tolist() == [1, 2, 2]
assert list(col.map(lambda d: len(d["n"].to_numpy())).values()) == [1, 2]
assert "dask" not in {{m.split(".")[0] for m, v in sys.modules.items() if v is not None}}
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# -- map / update on a dask.distributed cluster ----------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        host="127.0.0.1",
    )
    dask_client = distributed.Client(cluster)
    try:
        yield dask_client
    finally:
        dask_client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(module)


def summary(ds: zc.Dataset) -> tuple[int, int, float, int]:
    return (
        int(ds["part"].to_numpy()[0]),
        int(ds["v"].shape[0]),
        float(ds["v"].to_numpy().sum()),
        int(ds["x"].to_numpy().sum()),
    )


def with_pid(ds: zc.Dataset) -> tuple[tuple[int, int, float, int], int]:
    return summary(ds), os.getpid()


def scale(ds: zc.Dataset) -> zc.Dataset:
    variables = ds.all_variables()
    variables["v"] = variables["v"].with_data(variables["v"].to_numpy() * 2 + 1)
    return ds.replace(variables)


def test_map_on_cluster_matches_local_run(stored, client) -> None:
    local = stored.map(summary)
    remote = stored.map(with_pid, client=client)
    assert list(remote) == list(local) == [f"part={i}" for i in range(6)]
    assert {k: v[0] for k, v in remote.items()} == local
    assert os.getpid() not in {pid for _, pid in remote.values()}
    subset = stored.map(summary, filters="part in (1, 4)", variables=["part", "v", "x"])
    assert stored.map(summary, filters="part in (1, 4)", variables=["v", "part", "x"]) == subset
    assert (
        asyncio.run(
            stored.map_async(
                summary, filters="part in (1, 4)", variables=["part", "v", "x"], client=client
            )
        )
        == subset
    )


def test_update_on_cluster_matches_local_run(tmp_path, client) -> None:
    remote_col = create(tmp_path / "remote")
    local_col = create(tmp_path / "local")
    for col in (remote_col, local_col):
        col.insert(numpy_dataset(range(5)))
    with distributed.get_task_stream(client) as tasks:
        written = remote_col.update(scale, filters="part != 2", client=client)
    assert written == ["part=0", "part=1", "part=3", "part=4"]
    ran = [t["key"] for t in tasks.data if str(t["key"]).startswith("zcollection-update")]
    assert len(ran) == 4  # one task per partition, on the workers
    local_col.update(scale, filters="part != 2")
    remote, local = remote_col.query(), local_col.query()
    assert remote is not None and local is not None
    assert_same(remote, local)
    numpy.testing.assert_array_equal(remote["v"].to_numpy()[100:150], expected_block(2, 50))
    numpy.testing.assert_array_equal(remote["v"].to_numpy()[:50], expected_block(0, 50) * 2 + 1)


def test_configured_client_is_the_default(stored, client, tmp_path) -> None:
    zc.config["dask.client"] = client
    pids = {pid for _, pid in stored.map(with_pid).values()}
    assert os.getpid() not in pids
    # a MemoryStore cannot reach the workers: the configured default runs it here
    memory = create("memory://test-dask-default")
    memory.insert(numpy_dataset(range(2)))
    assert {pid for _, pid in memory.map(with_pid).values()} == {os.getpid()}
    memory.update(scale)
    with pytest.raises(ValueError, match=r"dask\.client"):
        zc.config["dask.client"] = "tcp://127.0.0.1:1"


def test_cluster_errors(stored, client, tmp_path) -> None:
    memory = create("memory://test-dask-errors")
    with pytest.raises(zc.StoreError, match="MemoryStore"):
        memory.map(summary, client=client)
    with pytest.raises(zc.StoreError, match="MemoryStore"):
        memory.update(scale, client=client)
    with pytest.raises(zc.SchemaError, match="expected a Dataset"):
        stored.update(summary, filters="part == 0", client=client)  # type: ignore[arg-type]
    read_only = zc.open_collection(str(tmp_path / "coll"), mode="r")
    with pytest.raises(zc.ReadOnlyError):
        read_only.update(scale, client=client)


def test_cluster_on_a_transactional_store(tmp_path, client) -> None:
    pytest.importorskip("icechunk")
    pytest.importorskip("zcollection.store.icechunk")
    col = create(f"icechunk://{tmp_path / 'repo'}")
    col.insert(numpy_dataset(range(3)))
    remote = col.map(with_pid, client=client)
    assert {k: v[0] for k, v in remote.items()} == col.map(summary)
    assert os.getpid() not in {pid for _, pid in remote.values()}
    with pytest.raises(zc.StoreError, match="transactional"):
        col.update(scale, client=client)
    zc.config["dask.client"] = client
    assert col.update(scale) == ["part=0", "part=1", "part=2"]  # the default runs it here
