"""The Python client against real servers (127.0.0.1, port 0) over real stores, no mocks.

Every result of a RemoteCollection is compared with the engine's own result for the same
collection (``zc.open_collection(<store url>)``), bit for bit.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import inspect
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc
import zcollection_client as zcc
from zcollection.merge import upsert_within
from zcollection_proto import ListPartitions, RepairCatalog

PER_DAY = 4
X_AC = 3


# -- data ----------------------------------------------------------------------------------------
def make_schema() -> zc.DatasetSchema:
    """A datetime axis, a 2-D float, immutable variables at the root and in a nested group."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=X_AC, chunks=X_AC)
        .with_attribute("title", "client tests")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            attrs={"units": "m"},
        )
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1)
        .with_group("/data_01", attrs={"band": "Ku"})
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .with_variable("calib", dtype="float64", dimensions=("x_ac",), group="/data_01")
        .build()
    )


def make_dataset(
    start: str, days: int, *, seed: int = 0, offset: float = 0.0, minutes: int = 0
) -> zc.Dataset:
    """``PER_DAY`` rows a day from ``start`` (+ ``minutes``) for ``days`` days, NaNs included."""
    schema = make_schema()
    known = schema.all_variables()
    n = days * PER_DAY
    step = numpy.timedelta64(86_400 * 10**9 // PER_DAY, "ns")
    time_ = numpy.datetime64(start, "ns") + numpy.timedelta64(minutes, "m") + numpy.arange(n) * step
    rng = numpy.random.default_rng(seed)
    ssh = rng.normal(size=(n, X_AC)).astype("float32") + numpy.float32(offset)
    ssh[::7, 1] = numpy.float32("nan")
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(known["/time"], time_),
            "ssh": zc.Variable(known["/ssh"], ssh),
            "x_ac": zc.Variable(known["/x_ac"], numpy.arange(X_AC, dtype="int16") * 10),
            "data_01/flag": zc.Variable(
                known["/data_01/flag"], ((numpy.arange(n) + seed) % 251).astype("uint8")
            ),
            "data_01/calib": zc.Variable(
                known["/data_01/calib"], numpy.linspace(0.5, 1.5, X_AC) + seed
            ),
        },
    )


MONTHLY = zc.partitioning.Date("time", resolution="M")
DAILY = zc.partitioning.Date("time", resolution="D")


def seq_schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("obs", chunks=16)
        .with_variable("num", dtype="int64", dimensions=("obs",))
        .with_variable("value", dtype="float64", dimensions=("obs",), fill_value=-1.0)
        .build()
    )


def seq_dataset(nums: list[int], rows: int = 3) -> zc.Dataset:
    schema = seq_schema()
    known = schema.all_variables()
    num = numpy.repeat(numpy.asarray(nums, dtype="int64"), rows)
    value = numpy.arange(num.size, dtype="float64") + num * 1000.0
    return zc.Dataset(
        schema,
        {"num": zc.Variable(known["/num"], num), "value": zc.Variable(known["/value"], value)},
    )


def signature(ds: zc.Dataset | None) -> Any:
    """Everything observable of a dataset: groups and attributes, and each variable's
    dimensions, dtype, shape, fill value, attributes and bytes (NaNs included)."""
    if ds is None:
        return None
    groups = {path: dict(group.attrs) for path, group in ds.walk()}
    variables = {}
    for path, var in ds.all_variables().items():
        data = numpy.ascontiguousarray(numpy.asarray(var.to_numpy()))
        variables[path] = (
            var.dimensions,
            data.dtype.str,
            data.shape,
            repr(var.fill_value),
            dict(var.attrs),
            hashlib.sha256(data.tobytes()).hexdigest(),
        )
    return groups, list(ds.all_variables()), variables


def assert_same(expected: zc.Dataset | None, actual: zc.Dataset | None) -> None:
    assert signature(actual) == signature(expected)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def connect() -> Iterator[Callable[..., zcc.Connection]]:
    """``zcollection_client.connect``, the connections closed at teardown."""
    opened: list[zcc.Connection] = []

    def make(uri: str, **kwargs: Any) -> zcc.Connection:
        connection = zcc.connect(uri, **kwargs)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


@dataclass
class Pair:
    """The same collection through the server (``remote``) and through the engine (``local``)."""

    served: Any
    connection: zcc.Connection
    remote: zcc.RemoteCollection
    local: zc.Collection


def _make_local(url: str, *, partitioning: Any = MONTHLY, catalog: bool = False) -> zc.Collection:
    return zc.create_collection(
        url, schema=make_schema(), axis="time", partitioning=partitioning, catalog_enabled=catalog
    )


@pytest.fixture(scope="module", params=["local", "memory"])
def pair(request: pytest.FixtureRequest, start_module_server: Any) -> Iterator[Pair]:
    """Three months (January to March 2024) written by the engine, served over Flight; shared
    by the tests of this module that only read."""
    served = start_module_server(request.param)
    _make_local(served.store_url("alti"), catalog=True).insert(make_dataset("2024-01-01", 91))
    connection = zcc.connect(served.uri)
    yield Pair(
        served,
        connection,
        connection.open_collection("alti"),
        zc.open_collection(served.store_url("alti")),
    )
    connection.close()


@dataclass
class Writable:
    """A collection created through the server and a reference created by the engine."""

    served: Any
    remote: zcc.RemoteCollection
    reference: zc.Collection

    def stored(self) -> zc.Collection:
        """The remote collection's store, opened by the engine."""
        return zc.open_collection(self.served.store_url("coll"))


@pytest.fixture
def writable(served: Any, connect: Any, tmp_path: Path) -> Writable:
    remote = connect(served.uri).create_collection(
        "coll", schema=make_schema(), axis="time", partitioning=MONTHLY, catalog_enabled=True
    )
    reference = _make_local(str(tmp_path / "reference"), catalog=True)
    for collection in (remote, reference):
        collection.insert(make_dataset("2024-01-01", 45))
    return Writable(served, remote, reference)


def assert_same_state(w: Writable) -> None:
    """The stored remote collection equals the reference, partition by partition."""
    stored = w.stored()
    assert list(stored.partitions()) == list(w.reference.partitions())
    assert_same(w.reference.query(), stored.query())
    for path in w.reference.partitions():
        assert_same(
            w.reference.query(filters=_filter_of(path)), stored.query(filters=_filter_of(path))
        )


def _filter_of(path: str) -> str:
    return " and ".join(f"{k} == {int(v)}" for k, v in (p.split("=") for p in path.split("/")))


# -- connect -------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["grpc", "grpc+tcp"])
def test_connect_schemes_info_and_health(scheme, served, connect):
    connection = connect(f"{scheme}://127.0.0.1:{served.port}")
    assert connection.health() is True
    info = connection.server_info()
    assert info["protocol"] == "zcollection.flight.v1"
    assert set(info["merge_strategies"]) >= {
        "replace",
        "concat",
        "time_series",
        "upsert",
        "upsert_within",
    }
    assert info["max_batch_bytes"] == served.settings.max_batch_bytes
    assert connection.list_collections() == []


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8815",
        "127.0.0.1:8815",
        "grpc://127.0.0.1",
        "grpc://:8815",
        "grpc+unix:///tmp/socket",
        "",
        "grpc://127.0.0.1:port",
        "grpc://127.0.0.1:99999",
    ],
)
def test_connect_rejects_bad_uris(uri):
    with pytest.raises(zc.InvalidURLError):
        zcc.connect(uri)


def test_list_open_create_delete_collections(served, connect):
    connection = connect(served.uri)
    created = connection.create_collection(
        "alti", schema=make_schema(), axis="time", partitioning=MONTHLY
    )
    assert isinstance(created, zcc.RemoteCollection)
    assert created.read_only is False
    connection.create_collection(
        "seq/orbits",
        schema=seq_schema(),
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
    )
    assert sorted(connection.list_collections()) == ["alti", "seq/orbits"]
    # the server wrote real collections: the engine opens them
    local = zc.open_collection(served.store_url("alti"))
    assert created.schema == local.schema
    assert created.axis == local.axis == "time"
    assert created.partitioning.to_json() == local.partitioning.to_json()

    with pytest.raises(zc.CollectionExistsError):
        connection.create_collection("alti", schema=make_schema(), axis="time", partitioning=DAILY)
    created.insert(make_dataset("2024-01-01", 3))
    again = connection.create_collection(
        "alti", schema=make_schema(), axis="time", partitioning=DAILY, overwrite=True
    )
    assert list(again.partitions()) == []
    assert again.partitioning.to_json() == DAILY.to_json()

    reader = connection.open_collection("alti")
    assert reader.read_only is True
    assert connection.open_collection("alti", mode="r").read_only is True
    assert connection.open_collection("alti", mode="rw").read_only is False
    with pytest.raises(ValueError, match="mode"):
        connection.open_collection("alti", mode="w")

    connection.delete_collection("alti")
    assert connection.list_collections() == ["seq/orbits"]
    with pytest.raises(zc.CollectionNotFoundError):
        connection.open_collection("alti")
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(served.store_url("alti"))


def test_engine_url_dispatch_returns_remote_collections(served):
    created = zc.create_collection(
        served.url("alti"), schema=make_schema(), axis="time", partitioning=MONTHLY
    )
    assert isinstance(created, zcc.RemoteCollection)
    assert created.read_only is False
    assert created.insert(make_dataset("2024-01-01", 40)) == [
        "year=2024/month=01",
        "year=2024/month=02",
    ]
    reader = zc.open_collection(served.url("alti"))
    assert isinstance(reader, zcc.RemoteCollection)
    assert reader.read_only is True
    writer = zc.open_collection(f"grpc+tcp://127.0.0.1:{served.port}/alti", mode="rw")
    assert isinstance(writer, zcc.RemoteCollection)
    assert writer.read_only is False
    assert_same(zc.open_collection(served.store_url("alti")).query(), writer.query())
    with pytest.raises(zc.ReadOnlyError):
        reader.drop_partitions()
    assert writer.drop_partitions(filters="month == 2") == ["year=2024/month=02"]
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(served.url("missing"), mode="rw")
    with pytest.raises(zc.CollectionExistsError):
        zc.create_collection(
            served.url("alti"), schema=make_schema(), axis="time", partitioning=MONTHLY
        )


@pytest.mark.parametrize("suffix", ["", "/"])
def test_url_without_a_collection_name_is_invalid(served, suffix):
    with pytest.raises(zc.InvalidURLError):
        zc.open_collection(served.uri + suffix)
    with pytest.raises(zc.InvalidURLError):
        zc.create_collection(
            served.uri + suffix, schema=make_schema(), axis="time", partitioning=MONTHLY
        )


def test_remote_collection_has_the_engine_signatures():
    names = [
        "partitions",
        "query",
        "insert",
        "insert_stream",
        "map",
        "update",
        "drop_partitions",
        "repair_catalog",
    ]
    for name in [*names, *(n + "_async" for n in names)]:
        local = inspect.signature(getattr(zc.Collection, name))
        remote = inspect.signature(getattr(zcc.RemoteCollection, name))
        assert [(p.name, p.kind, p.default) for p in remote.parameters.values()] == [
            (p.name, p.kind, p.default) for p in local.parameters.values()
        ], name
        assert inspect.iscoroutinefunction(getattr(zcc.RemoteCollection, name)) == (
            inspect.iscoroutinefunction(getattr(zc.Collection, name))
        ), name
    for prop in ("schema", "axis", "partitioning", "read_only"):
        assert isinstance(getattr(zcc.RemoteCollection, prop), property), prop


def test_read_only_remote_collection_refuses_writes(pair):
    before = pair.served.log.count("DO_PUT")
    reader = pair.remote
    assert reader.read_only is True
    with pytest.raises(zc.ReadOnlyError):
        reader.insert(make_dataset("2024-01-01", 2))
    with pytest.raises(zc.ReadOnlyError):
        reader.update(lambda ds: ds)
    with pytest.raises(zc.ReadOnlyError):
        reader.drop_partitions(filters="month == 1")
    with pytest.raises(zc.ReadOnlyError):
        reader.repair_catalog()
    assert pair.served.log.count("DO_PUT") == before
    assert list(reader.partitions()) == list(pair.local.partitions())


# -- same results as the engine ------------------------------------------------------------------
QUERIES: list[dict[str, Any]] = [
    {},
    {"filters": "year == 2024 and month == 2"},
    {"filters": "month >= 2"},
    {"filters": "month == 7"},
    {"variables": ["ssh"]},
    {"variables": ["time", "data_01/flag"]},
    {"variables": ["/data_01/calib", "time"]},
    {"variables": ["x_ac"]},
    {"variables": ["x_ac", "data_01/calib"], "filters": "month == 3"},
    {"variables": ["x_ac"], "filters": "month == 9"},
    {"variables": []},
    {"selection": zc.RowSelection("2024-01-15", "2024-02-03")},
    {"selection": zc.RowSelection(None, "2024-01-02T06:00", upper_inclusive=True)},
    {
        "selection": zc.RowSelection(
            numpy.datetime64("2024-03-30T12", "ns"), None, lower_inclusive=False
        ),
        "variables": ["ssh", "x_ac"],
    },
    {"selection": zc.RowSelection("2025-01-01"), "filters": "month == 1"},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(q) for q in range(len(QUERIES))])
def test_query_equals_the_engine(pair, query):
    assert_same(pair.local.query(**query), pair.remote.query(**query))


def test_properties_and_partitions_equal_the_engine(pair):
    remote, local = pair.remote, pair.local
    assert remote.schema == local.schema
    assert remote.axis == local.axis
    assert remote.partitioning.to_json() == local.partitioning.to_json()
    assert remote.catalog_enabled is local.catalog_enabled is True
    for filters in (None, "month == 2", "month > 1 and year == 2024", "month == 9"):
        assert list(remote.partitions(filters=filters)) == list(local.partitions(filters=filters))


def test_partitions_in_key_order(served, connect):
    local = zc.create_collection(
        served.store_url("seq/orbits"),
        schema=seq_schema(),
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
    )
    local.insert(seq_dataset([10, 2, 1, -3]))
    remote = zc.open_collection(served.url("seq/orbits"))
    assert list(remote.partitions()) == ["num=-3", "num=1", "num=2", "num=10"]
    assert list(remote.partitions()) == list(local.partitions())
    assert list(remote.partitions(filters="num == -3")) == ["num=-3"]
    assert_same(local.query(), remote.query())
    assert_same(local.query(filters="num > 1"), remote.query(filters="num > 1"))


def _summary(ds: zc.Dataset) -> Any:
    return {
        path: (var.shape, hashlib.sha256(numpy.ascontiguousarray(var.to_numpy())).hexdigest())
        for path, var in ds.all_variables().items()
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"filters": "month != 2"},
        {"variables": ["ssh", "data_01/calib"]},
        {"variables": ["x_ac"]},
        {"filters": "month > 5"},
    ],
)
def test_map_equals_the_engine(pair, kwargs):
    expected = pair.local.map(_summary, **kwargs)
    got = pair.remote.map(_summary, **kwargs)
    assert list(got) == list(expected)
    assert got == expected


def test_map_passes_each_partition_as_the_engine_does(pair):
    def whole(ds: zc.Dataset) -> Any:
        return signature(ds)

    assert pair.remote.map(whole) == pair.local.map(whole)


# -- writes --------------------------------------------------------------------------------------
MERGES: list[tuple[Any, int]] = [
    (None, 0),
    ("replace", 0),
    ("concat", 0),
    ("time_series", 0),
    ("upsert", 0),
    (upsert_within(numpy.timedelta64(30, "m")), 10),
    (upsert_within(datetime.timedelta(minutes=5)), 10),
    (upsert_within(None), 0),
]


@pytest.mark.parametrize("merge,minutes", MERGES, ids=[str(m[0]) for m in MERGES])
def test_insert_merges_run_on_the_server_like_the_engine(writable, merge, minutes):
    new = make_dataset("2024-01-20", 50, seed=1, offset=10.0, minutes=minutes)
    log = writable.served.log
    gets, puts = log.count("DO_GET"), log.count("DO_PUT")
    written = writable.remote.insert(new, merge=merge)
    assert written == writable.reference.insert(new, merge=merge)
    # one stream, merged on the server: the client fetched no partition
    assert (log.count("DO_GET"), log.count("DO_PUT")) == (gets, puts + 1)
    assert_same_state(writable)
    assert_same(writable.reference.query(), writable.remote.query())


def _doubling_merge(
    existing: zc.Dataset, inserted: zc.Dataset, *, axis: str, partitioning_dim: str
) -> zc.Dataset:
    """Keep the existing rows the insert does not repeat, then the inserted rows with ssh x2."""
    old = existing.get_variable(axis).to_numpy()
    new = inserted.get_variable(axis).to_numpy()
    kept = existing.isel(partitioning_dim, numpy.flatnonzero(~numpy.isin(old, new)))
    doubled = inserted.replace(
        {
            name: var.with_data(var.to_numpy() * 2) if name == "ssh" else var
            for name, var in inserted.all_variables().items()
        }
    )
    return zc.merge.concat(kept, doubled, axis=axis, partitioning_dim=partitioning_dim)


def test_custom_merge_callable_runs_on_the_client_like_the_engine(writable):
    new = make_dataset("2024-01-20", 50, seed=2, offset=5.0)
    log = writable.served.log
    gets, puts = log.count("DO_GET"), log.count("DO_PUT")
    written = writable.remote.insert(new, merge=_doubling_merge)
    assert written == writable.reference.insert(new, merge=_doubling_merge)
    assert written == ["year=2024/month=01", "year=2024/month=02", "year=2024/month=03"]
    # the two stored partitions were fetched; the merged partitions travel in one put
    assert log.count("DO_GET") - gets == 2
    assert log.count("DO_PUT") - puts == 1
    assert_same_state(writable)


def test_custom_merge_with_overwrite_false_writes_nothing(writable):
    before = _store_snapshot(writable.served.store_url("coll"))
    # December is new (and first in key order), January exists: the engine refuses the lot
    clash = make_dataset("2023-12-25", 10, seed=3)
    for collection in (writable.reference, writable.remote):
        with pytest.raises(zc.PartitionExistsError):
            collection.insert(clash, merge=_doubling_merge, overwrite=False)
    assert _store_snapshot(writable.served.store_url("coll")) == before
    assert_same_state(writable)


def _store_snapshot(url: str) -> dict[str, str]:
    store = zc.open_store(url, read_only=True)
    return {
        key: hashlib.sha256(store.read_bytes(key) or b"").hexdigest()
        for key in store.list_prefix("")
    }


def _triple_ssh(ds: zc.Dataset) -> zc.Dataset:
    """Keep time and ssh (x3): the other partitioned variables are dropped, as in the engine."""
    ssh = ds.get_variable("ssh")
    return zc.Dataset(
        ds.schema.select(["/time", "/ssh"]),
        {"time": ds.get_variable("time"), "ssh": ssh.with_data(ssh.to_numpy() * 3)},
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"filters": "month == 2"}, {"variables": ["time", "ssh"], "filters": "month < 3"}],
)
def test_update_rewrites_partitions_like_the_engine(writable, kwargs):
    writable.remote.insert(make_dataset("2024-03-01", 5, seed=4))
    writable.reference.insert(make_dataset("2024-03-01", 5, seed=4))
    written = writable.remote.update(_triple_ssh, **kwargs)
    assert written == writable.reference.update(_triple_ssh, **kwargs)
    assert_same_state(writable)
    flags = writable.stored().query(filters="month == 2").get_variable("data_01/flag").to_numpy()
    assert (flags == 0).all()  # dropped, read back as the fill value


def test_update_keeping_every_variable_matches_the_engine(writable):
    def shift(ds: zc.Dataset) -> zc.Dataset:
        return ds.replace(
            {
                name: var.with_data(var.to_numpy() + 1) if name == "data_01/flag" else var
                for name, var in ds.all_variables().items()
            }
        )

    assert writable.remote.update(shift) == writable.reference.update(shift)
    assert_same_state(writable)


def test_update_to_no_rows_empties_the_partition_like_the_engine(writable):
    def nothing(ds: zc.Dataset) -> zc.Dataset:
        return ds.isel("time", slice(0, 0))

    assert writable.remote.update(nothing, filters="month == 2") == writable.reference.update(
        nothing, filters="month == 2"
    )
    assert_same_state(writable)


def test_drop_partitions_and_repair_catalog_like_the_engine(writable):
    for collection in (writable.remote, writable.reference):
        collection.insert(make_dataset("2024-03-01", 40, seed=5))
    assert writable.remote.drop_partitions(
        filters="month == 2"
    ) == writable.reference.drop_partitions(filters="month == 2")
    assert writable.remote.repair_catalog() == writable.reference.repair_catalog()
    assert_same_state(writable)
    assert writable.remote.drop_partitions() == writable.reference.drop_partitions()
    assert list(writable.remote.partitions()) == []
    assert writable.remote.query() is None
    assert writable.reference.query() is None


def _rw_pair(served: Any, connect: Any, tmp_path: Path) -> tuple[zc.Collection, Any]:
    """The engine's collection (no catalog) and the remote one, same data, both writable."""
    data = make_dataset("2024-01-01", 40)
    local = _make_local(str(tmp_path / "local"))
    local.insert(data)
    remote = connect(served.uri).create_collection(
        "rw", schema=make_schema(), axis="time", partitioning=MONTHLY
    )
    remote.insert(data)
    return local, remote


def _missing_ssh() -> zc.Dataset:
    data = make_dataset("2024-01-01", 2)
    return data.select(["/time", "/x_ac", "/data_01/flag"])


def _wrong_dtype() -> zc.Dataset:
    data = make_dataset("2024-01-01", 2)
    ssh = data.get_variable("ssh")
    variables = dict(data.all_variables())
    variables["ssh"] = zc.Variable(ssh.schema, ssh.to_numpy().astype("complex128"))
    return data.replace(variables)


ERRORS: list[tuple[str, Callable[[Any], Any], type[BaseException]]] = [
    ("unknown key", lambda c: c.query(filters="cycle == 1"), zc.ExpressionError),
    ("bad syntax", lambda c: c.query(filters="month =="), zc.ExpressionError),
    ("no eval", lambda c: list(c.partitions(filters="__import__('os')")), zc.ExpressionError),
    ("drop filter", lambda c: c.drop_partitions(filters="day == 1"), zc.ExpressionError),
    ("map filter", lambda c: c.map(len, filters="day == 1"), zc.ExpressionError),
    ("unknown variable", lambda c: c.query(variables=["nope"]), zc.SchemaError),
    ("bad bound", lambda c: c.query(selection=zc.RowSelection("soon")), zc.SchemaError),
    ("missing variable", lambda c: c.insert(_missing_ssh()), zc.SchemaError),
    ("unsafe cast", lambda c: c.insert(_wrong_dtype()), zc.SchemaError),
    ("not a dataset", lambda c: c.insert({"time": 1}), zc.SchemaError),
    ("update result", lambda c: c.update(lambda ds: 1), zc.SchemaError),
    ("merge name", lambda c: c.insert(make_dataset("2024-05-01", 1), merge="nope"), KeyError),
    ("merge type", lambda c: c.insert(make_dataset("2024-05-01", 1), merge=3), TypeError),
    (
        "overwrite",
        lambda c: c.insert(make_dataset("2024-01-05", 1), overwrite=False),
        zc.PartitionExistsError,
    ),
    ("no catalog", lambda c: c.repair_catalog(), zc.CatalogDisabledError),
]


@pytest.mark.parametrize("case,call,cls", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_the_engine_classes(served, connect, tmp_path, case, call, cls):
    local, remote = _rw_pair(served, connect, tmp_path)
    before = _store_snapshot(served.store_url("rw"))
    with pytest.raises(cls) as expected:
        call(local)
    with pytest.raises(cls) as got:
        call(remote)
    assert type(got.value) is type(expected.value)
    assert _store_snapshot(served.store_url("rw")) == before


def test_unknown_merge_name_fails_before_any_io(served, connect, tmp_path):
    _, remote = _rw_pair(served, connect, tmp_path)
    calls = served.log.total()
    with pytest.raises(KeyError, match="nope"):
        remote.insert(make_dataset("2024-05-01", 1), merge="nope")
    with pytest.raises(zc.ExpressionError):
        remote.query(filters="cycle == 1")
    assert served.log.total() == calls


def test_server_side_errors_come_back_as_engine_classes(served, connect):
    connection = connect(served.uri)
    with pytest.raises(zc.CollectionNotFoundError):
        connection.describe("missing")
    with pytest.raises(zc.CollectionNotFoundError):
        connection.delete_collection("missing")
    with pytest.raises(zc.SchemaError):  # the server checks the axis
        connection.create_collection("bad", schema=make_schema(), axis="x_ac", partitioning=MONTHLY)
    remote = connection.create_collection(
        "alti", schema=make_schema(), axis="time", partitioning=MONTHLY
    )
    remote.insert(make_dataset("2024-01-01", 3))
    # checks the client makes first, made by the server here
    with pytest.raises(zc.ExpressionError):
        connection.action("list_partitions", ListPartitions(collection="alti", filters="day = 1"))
    with pytest.raises(zc.CatalogDisabledError):
        connection.action("repair_catalog", RepairCatalog(collection="alti"))
    connection.delete_collection("alti")
    with pytest.raises(zc.CollectionNotFoundError):
        remote.query()
    assert "bad" not in connection.list_collections()


# -- reads at scale ------------------------------------------------------------------------------
@pytest.fixture
def daily(start_server: Any) -> Any:
    """A collection of 24 daily partitions."""
    served = start_server("memory")
    _make_local(served.store_url("daily"), partitioning=DAILY).insert(
        make_dataset("2024-02-20", 24)
    )
    return served


def test_endpoints_are_fetched_in_parallel(daily, connect):
    expected = zc.open_collection(daily.store_url("daily")).query()
    serial = connect(daily.uri, options=zcc.ClientOptions(parallelism=1))
    assert_same(expected, serial.open_collection("daily").query())
    parallel = connect(daily.uri, options=zcc.ClientOptions(parallelism=4))
    gets = daily.log.count("DO_GET")
    # the first four DoGet calls are held until all four have started: a client fetching
    # one endpoint at a time would fail here
    daily.log.hold_do_get(4)
    assert_same(expected, parallel.open_collection("daily").query())
    assert daily.log.count("DO_GET") - gets == 25  # 24 partitions and the immutable variables
    daily.log.hold_do_get(4)
    filters = "day >= 20 or month == 3 and day < 5"
    assert_same(
        zc.open_collection(daily.store_url("daily")).query(filters=filters),
        parallel.open_collection("daily").query(filters=filters),
    )


def test_partitions_that_changed_after_the_flight_info_are_read_as_they_are(daily, connect):
    """A query decodes each endpoint's rows into a result sized from the FlightInfo's row
    counts: a partition that grew or shrank before its do_get is merged in order all the
    same (here one day is rewritten with twice its rows, another with one row)."""
    from zcollection_client.reading import endpoints_of, read_assembled

    remote = connect(daily.uri).open_collection("daily")
    info = remote._flight_info(remote._query_message(None, remote._var_paths(None), None))
    local = zc.open_collection(daily.store_url("daily"), mode="rw")
    both = [make_dataset("2024-02-22", 1), make_dataset("2024-02-22", 1, seed=1, minutes=7)]
    order = numpy.argsort(numpy.concatenate([ds["time"].to_numpy() for ds in both]))
    doubled = zc.Dataset(
        both[0].schema,
        {
            name: zc.Variable(
                variable.schema,
                numpy.concatenate([ds[name].to_numpy() for ds in both])[order]
                if "time" in variable.schema.dimensions
                else variable.to_numpy(),
            )
            for name, variable in both[0].all_variables().items()
        },
    )
    local.insert(doubled)
    local.insert(make_dataset("2024-02-25", 1).isel("time", numpy.arange(1)))
    rows, _ = read_assembled(remote.connection, endpoints_of(info), remote.schema, info.schema)
    assert rows is not None
    expected = local.query(variables=list(rows))
    assert expected is not None and expected["time"].shape == (24 * PER_DAY + PER_DAY - 3,)
    for name, variable in rows.items():
        got, want = variable.to_numpy(), expected[name.lstrip("/")].to_numpy()
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), name


def test_connections_are_reused_and_bounded_by_parallelism(daily, connect):
    connection = connect(daily.uri, options=zcc.ClientOptions(parallelism=3))
    collection = connection.open_collection("daily")
    expected = zc.open_collection(daily.store_url("daily")).query()
    for _ in range(2):
        assert_same(expected, collection.query())

    async def concurrently() -> list[zc.Dataset | None]:
        return await asyncio.gather(*(collection.query_async() for _ in range(3)))

    for result in asyncio.run(concurrently()):
        assert_same(expected, result)
    threads = [threading.Thread(target=collection.map, args=(_summary,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # every call came over one of at most three client connections
    assert 1 <= len(daily.log.peers_of()) <= 3


def test_read_retries_until_the_server_is_back_on_the_same_port(daily, connect):
    connection = connect(daily.uri, options=zcc.ClientOptions(retries=8, backoff=0.05))
    collection = connection.open_collection("daily")
    expected = collection.query()
    daily.stop()
    with pytest.raises(zcc.ServerUnavailableError):
        connect(daily.uri, options=zcc.ClientOptions(retries=1)).list_collections()
    # the server comes back on the same port while the read below is retrying
    restarter = threading.Timer(0.3, daily.start)
    restarter.start()
    try:
        assert_same(expected, collection.query())
    finally:
        restarter.join()
    assert_same(expected, collection.query())


def test_a_connection_recovers_as_soon_as_the_server_is_back(daily, connect):
    """Clients whose calls failed with UNAVAILABLE leave the pool: a pooled client would wait
    out gRPC's reconnect backoff and fail for a while after the server is back."""
    options = zcc.ClientOptions(retries=2, backoff=0.05, parallelism=2)
    connection = connect(daily.uri, options=options)
    collection = connection.open_collection("daily")
    expected = collection.query()
    daily.stop()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        with pytest.raises(zcc.ServerUnavailableError):
            collection.query()
    daily.start()
    assert_same(expected, collection.query())


def test_dead_server_fails_after_the_retries(connect):
    uri = f"grpc://127.0.0.1:{free_port()}"
    backoff = 0.05
    connection = connect(uri, options=zcc.ClientOptions(retries=3, backoff=backoff))
    started = time.monotonic()
    with pytest.raises(zcc.ServerUnavailableError) as error:
        connection.list_collections()
    # two waits of at least backoff and 2 * backoff between the three attempts
    assert time.monotonic() - started >= 3 * backoff
    assert isinstance(error.value, zc.StoreError)
    assert isinstance(error.value, zc.ZCollectionError)
    with pytest.raises(zcc.ServerUnavailableError):
        zc.open_collection(f"{uri}/alti")


def test_calls_honour_the_timeout(daily, connect):
    connection = connect(daily.uri, options=zcc.ClientOptions(timeout=0.2, retries=1))
    collection = connection.open_collection("daily")
    daily.log.delay["GET_FLIGHT_INFO"] = 1.0
    started = time.monotonic()
    with pytest.raises(zc.StoreError):
        collection.query()
    assert time.monotonic() - started < 1.0
    daily.log.delay.clear()
    assert collection.query() is not None


def test_closed_connection_refuses_calls(served):
    connection = zcc.connect(served.uri)
    assert connection.health()
    connection.close()
    with pytest.raises(zc.StoreError):
        connection.list_collections()


# -- lazy ----------------------------------------------------------------------------------------
def test_lazy_query_fetches_nothing_before_compute(daily, connect):
    import dask.array as da

    local = zc.open_collection(daily.store_url("daily"))
    remote = connect(daily.uri).open_collection("daily")
    gets = daily.log.count("DO_GET")
    lazy = remote.query(lazy=True, variables=["time", "ssh", "data_01/flag"])
    assert daily.log.count("DO_GET") == gets
    variables = lazy.all_variables()
    rows = tuple(PER_DAY for _ in range(24))
    for name in ("time", "ssh", "data_01/flag"):
        data = variables[name].data
        assert isinstance(data, da.Array), name
        assert data.chunks[0] == rows, name
        assert data.numblocks[0] == 24
    eager = computed(lazy, scheduler="threads")
    assert daily.log.count("DO_GET") - gets == 24  # one per partition
    assert_same(local.query(variables=["time", "ssh", "data_01/flag"]), eager)


def computed(lazy: zc.Dataset, **kwargs: Any) -> zc.Dataset:
    """``lazy`` with its Dask arrays computed together (each partition fetched once)."""
    import dask

    variables = lazy.all_variables()
    arrays = dask.compute(*(v.data for v in variables.values()), **kwargs)
    return lazy.replace(
        {
            k: v.with_data(numpy.asarray(a))
            for (k, v), a in zip(variables.items(), arrays, strict=True)
        }
    )


def test_lazy_query_with_immutables_filters_and_selection(pair):
    for query in (
        {},
        {"filters": "month == 2", "variables": ["ssh", "x_ac", "data_01/calib"]},
        {"selection": zc.RowSelection("2024-01-20", "2024-02-10")},
        {"selection": zc.RowSelection("2024-01-20", "2024-02-10"), "variables": ["ssh"]},
    ):
        lazy = pair.remote.query(lazy=True, **query)
        assert_same(pair.local.query(**query), computed(lazy, scheduler="threads"))
    assert pair.remote.query(lazy=True, filters="month == 9") is None


def test_lazy_query_computes_on_dask_worker_processes(daily, connect, dask_cluster):
    from distributed import get_task_stream

    local = zc.open_collection(daily.store_url("daily"))
    connection = connect(daily.uri)
    lazy = connection.open_collection("daily").query(lazy=True, variables=["time", "ssh"])
    main_peers = daily.log.peers_of()
    gets = daily.log.count("DO_GET")
    with dask_cluster.as_current(), get_task_stream(dask_cluster) as stream:
        eager = computed(lazy)
    assert daily.log.count("DO_GET") - gets == 24
    assert_same(local.query(variables=["time", "ssh"]), eager)
    workers = set(dask_cluster.scheduler_info()["workers"])
    fetches = [t for t in stream.data if "_fetch_remote" in str(t["key"])]
    assert len(fetches) == 24  # one task per partition endpoint, each run on a worker process
    assert {t["worker"] for t in fetches} <= workers
    assert os.getpid() not in set(dask_cluster.run(os.getpid).values())
    # the partitions came over the workers' own connections, none of this process's pool
    worker_peers = daily.log.peers_of("DO_GET")
    assert worker_peers and worker_peers.isdisjoint(main_peers)


# -- async twins ---------------------------------------------------------------------------------
async def _scenario(collection: Any) -> list[Any]:
    """The same sequence of async calls, on the engine's collection or the remote one."""
    results: list[Any] = [await collection.partitions_async()]
    results.append(signature(await collection.query_async(filters="month == 1")))
    results.append(
        await collection.insert_async(
            make_dataset("2024-02-10", 30, seed=7, offset=1.0), merge="time_series"
        )
    )
    results.append(await collection.insert_async(make_dataset("2024-03-05", 3, seed=8)))
    results.append(await collection.map_async(_summary, variables=["time", "ssh"]))
    results.append(await collection.update_async(_triple_ssh, filters="month == 2"))
    both = await asyncio.gather(
        collection.query_async(variables=["ssh"]),
        collection.query_async(selection=zc.RowSelection("2024-02-15", "2024-03-02")),
    )
    results.extend(signature(ds) for ds in both)
    results.append(await collection.drop_partitions_async(filters="month == 3"))
    results.append(await collection.repair_catalog_async())
    results.append(await collection.partitions_async(filters="month >= 2"))
    try:
        await collection.query_async(filters="cycle == 2")
    except zc.ExpressionError as exc:
        results.append(type(exc))
    return results


def test_async_twins_equal_the_engine(writable):
    expected = asyncio.run(_scenario(writable.reference))
    got = asyncio.run(_scenario(writable.remote))
    assert got == expected
    assert_same_state(writable)


def test_engine_async_url_dispatch(served):
    async def scenario() -> Any:
        created = await zc.aio.create_collection(
            served.url("alti"), schema=make_schema(), axis="time", partitioning=MONTHLY
        )
        await created.insert_async(make_dataset("2024-01-01", 3))
        opened = await zc.aio.open_collection(served.url("alti"), mode="rw")
        return created, opened, await opened.query_async()

    created, opened, result = asyncio.run(scenario())
    assert isinstance(created, zcc.RemoteCollection)
    assert isinstance(opened, zcc.RemoteCollection)
    assert opened.read_only is False
    assert_same(zc.open_collection(served.store_url("alti")).query(), result)


def test_update_moving_rows_out_of_their_partition_writes_the_original_path(writable):
    def shift(ds: zc.Dataset) -> zc.Dataset:
        time = ds["time"]
        moved = time.with_data(time.to_numpy() + numpy.timedelta64(40, "D"))
        return ds.replace({**ds.all_variables(), "time": moved})

    assert writable.remote.update(shift, filters="month == 1") == writable.reference.update(
        shift, filters="month == 1"
    )
    assert_same_state(writable)


def test_unsorted_rows_are_sent_grouped_by_partition(start_server: Any) -> None:
    """The server writes a partition once the stream has passed it (here: at once); the
    client sends each partition's rows together, so rows in any order insert as locally."""
    served = start_server("local", put_buffer_bytes=0)
    local = _make_local(served.store_url("c"))
    rows = make_dataset("2024-01-20", 30, seed=3)
    shuffled = rows.isel("time", numpy.random.default_rng(5).permutation(30 * PER_DAY))
    reference = _make_local(served.store_url("reference"))
    reference.insert(shuffled)
    remote = zc.open_collection(served.url("c"), mode="rw")
    assert remote.insert(shuffled) == ["year=2024/month=01", "year=2024/month=02"]
    assert_same(reference.query(), local.query())


def test_insert_stream_sends_one_put(start_server: Any) -> None:
    served = start_server("local", put_buffer_bytes=0)
    local = _make_local(served.store_url("c"))
    pieces = [make_dataset(f"2024-0{m}-10", 5, minutes=m) for m in (1, 2, 3)]
    remote = zc.open_collection(served.url("c"), mode="rw")
    before = served.log.count("DO_PUT")
    written = remote.insert_stream(iter(pieces), merge="time_series")
    assert written == ["year=2024/month=01", "year=2024/month=02", "year=2024/month=03"]
    assert served.log.count("DO_PUT") == before + 1
    reference = _make_local(served.store_url("reference"))
    reference.insert_stream(pieces, merge="time_series")
    assert_same(reference.query(), local.query())
    # a dataset of the stream the client refuses abandons the whole put
    bad = pieces[2].select(["/time", "/ssh"])  # other variables than the first dataset's
    with pytest.raises(zc.SchemaError):
        remote.insert_stream([make_dataset("2024-05-01", 3), bad], buffer_bytes=0)
    assert list(local.partitions()) == list(reference.partitions())
