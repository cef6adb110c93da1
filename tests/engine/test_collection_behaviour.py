"""The collection behaviour suite, run on every store back-end of the ``backend`` fixture."""

from __future__ import annotations

import asyncio
import threading
import time as clock

import numpy
import pytest
import zcollection as zc
from zcollection.merge import upsert_within


def _create(backend, schema, partitioning, *, axis="time", name="coll", catalog=False):
    return zc.create_collection(
        backend.url(name),
        schema=schema,
        axis=axis,
        partitioning=partitioning,
        catalog_enabled=catalog,
    )


@pytest.fixture(params=[False, True], ids=["no-catalog", "catalog"])
def catalog(request):
    return request.param


# -- create / open -------------------------------------------------------------------------


def test_create_then_open_keeps_schema_axis_partitioning(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 3)
    col = _create(backend, ds.schema, monthly)
    assert col.read_only is False
    opened = zc.open_collection(backend.url(), mode="r")
    assert opened.read_only is True
    assert opened.axis == "time"
    assert opened.partitioning.to_json() == monthly.to_json()
    assert opened.schema == ds.schema.with_partition_axis("time")
    assert opened.schema.variables["x_ac"].immutable is True
    assert opened.schema.variables["ssh"].immutable is False


def test_create_twice_raises_exists_and_overwrite_replaces(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 3)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    with pytest.raises(zc.CollectionExistsError):
        _create(backend, ds.schema, monthly)
    assert list(zc.open_collection(backend.url()).partitions()) == ["year=2024/month=01"]
    fresh = zc.create_collection(
        backend.url(), schema=ds.schema, axis="time", partitioning=monthly, overwrite=True
    )
    assert list(fresh.partitions()) == []


def test_open_missing_collection_raises_and_creates_nothing(backend, tmp_path):
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(backend.url("missing"), mode="rw")
    assert backend.snapshot("missing") == {}
    if backend.kind == "local":
        assert not (tmp_path / "missing").exists()


def test_open_rejects_unknown_mode(backend, monthly, make_altimetry):
    _create(backend, make_altimetry("2024-01-01", 1).schema, monthly)
    with pytest.raises(ValueError, match="mode"):
        zc.open_collection(backend.url(), mode="w+")


# -- insert / query ------------------------------------------------------------------------


def test_insert_query_round_trip_in_key_order(backend, monthly, make_altimetry, catalog):
    ds = make_altimetry("2023-11-20", 80)  # Nov 2023 .. Feb 2024
    col = _create(backend, ds.schema, monthly, catalog=catalog)
    written = col.insert(ds)
    expected = [
        "year=2023/month=11",
        "year=2023/month=12",
        "year=2024/month=01",
        "year=2024/month=02",
    ]
    assert written == expected
    assert list(col.partitions()) == expected
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["time"].to_numpy(), ds["time"].to_numpy())
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), ds["ssh"].to_numpy())
    numpy.testing.assert_array_equal(result["x_ac"].to_numpy(), ds["x_ac"].to_numpy())
    assert result.attrs == {"title": "test"}
    assert result["ssh"].attrs == {"units": "m"}


def test_query_filters_and_variables(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 70)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    result = col.query(filters="year == 2024 and month >= 2", variables=["time"])
    assert result is not None
    assert list(result.all_variables()) == ["time"]
    times = ds["time"].to_numpy()
    numpy.testing.assert_array_equal(
        result["time"].to_numpy(), times[times >= numpy.datetime64("2024-02-01")]
    )
    assert col.query(filters="year == 1999") is None
    only_immutable = col.query(variables=["x_ac"])
    assert only_immutable is not None
    assert list(only_immutable.all_variables()) == ["x_ac"]


def test_query_result_carries_no_bookkeeping_attributes(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 3)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    result = col.query()
    assert result is not None
    for _, group in result.walk():
        assert not any(key.startswith("_zc") for key in group.attrs)


def test_sequence_partitions_listed_in_numeric_order(backend):
    schema = (
        zc.Schema()
        .with_dimension("num")
        .with_variable("cycle", dtype="int32", dimensions=("num",))
        .with_variable("value", dtype="float64", dimensions=("num",))
        .build()
    )
    part = zc.partitioning.Sequence(("cycle",), dimension="num")
    col = _create(backend, schema, part, axis="num")
    cycles = numpy.array([10, 2, 1, -1, 10, 2], dtype="int32")
    values = numpy.arange(6, dtype="float64")
    col.insert(
        zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["cycle"], cycles),
                zc.Variable(schema.variables["value"], values),
            ],
        )
    )
    assert list(col.partitions()) == ["cycle=-1", "cycle=1", "cycle=2", "cycle=10"]
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["cycle"].to_numpy(), [-1, 1, 2, 2, 10, 10])
    # rows of one partition keep their arrival order
    numpy.testing.assert_array_equal(result["value"].to_numpy(), [3, 2, 1, 5, 0, 4])
    assert list(col.partitions(filters="cycle == -1")) == ["cycle=-1"]


def test_non_contiguous_rows_of_one_partition_all_land(backend, monthly, make_altimetry):
    a = make_altimetry("2024-01-01", 2, seed=1)
    b = make_altimetry("2024-02-01", 2, seed=2)
    c = make_altimetry("2024-01-10", 2, seed=3)
    mixed = zc.data.ops.concat([a, b, c], "time")
    col = _create(backend, a.schema, monthly)
    assert col.insert(mixed) == ["year=2024/month=01", "year=2024/month=02"]
    jan = col.query(filters="month == 1")
    assert jan is not None
    expected = numpy.concatenate([a["ssh"].to_numpy(), c["ssh"].to_numpy()])
    numpy.testing.assert_array_equal(jan["ssh"].to_numpy(), expected)


def test_nested_groups_round_trip(backend):
    schema = (
        zc.Schema()
        .with_dimension("time", chunks=16)
        .with_variable("time", dtype="datetime64[us]", dimensions=("time",))
        .with_group("/data_01/ku", attrs={"band": "Ku"})
        .with_dimension("range", size=3, group="/data_01/ku")
        .with_variable("power", dtype="float32", dimensions=("time", "range"), group="/data_01/ku")
        .with_variable("calib", dtype="float64", dimensions=("range",), group="/data_01/ku")
        .build()
    )
    t = numpy.datetime64("2024-03-30", "us") + numpy.arange(10) * numpy.timedelta64(12, "h")
    power = numpy.arange(30, dtype="float32").reshape(10, 3)
    calib = numpy.array([0.5, 1.5, 2.5])
    ds = zc.Dataset(
        schema,
        {
            "time": zc.Variable(schema.variables["time"], t),
            "data_01/ku/power": zc.Variable(
                schema.get_group("/data_01/ku").variables["power"], power
            ),
            "data_01/ku/calib": zc.Variable(
                schema.get_group("/data_01/ku").variables["calib"], calib
            ),
        },
    )
    col = _create(backend, schema, zc.partitioning.Date("time", resolution="M"))
    assert col.insert(ds) == ["year=2024/month=03", "year=2024/month=04"]
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["/data_01/ku/power"].to_numpy(), power)
    numpy.testing.assert_array_equal(result["/data_01/ku/calib"].to_numpy(), calib)
    assert result.get_group("/data_01/ku").attrs == {"band": "Ku"}
    sub = col.query(variables=["/data_01/ku/power"])
    assert sub is not None
    assert list(sub.all_variables()) == ["data_01/ku/power"]


# -- merges ----------------------------------------------------------------------------------


def test_insert_replaces_partition_by_default(backend, monthly, make_altimetry):
    col = _create(backend, make_altimetry("2024-01-01", 1).schema, monthly)
    col.insert(make_altimetry("2024-01-01", 10, seed=1))
    second = make_altimetry("2024-01-05", 2, seed=2)
    col.insert(second)
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["time"].to_numpy(), second["time"].to_numpy())


@pytest.mark.parametrize("merge", ["concat", "time_series", "upsert"])
def test_insert_with_merge_strategies(backend, monthly, make_altimetry, merge):
    first = make_altimetry("2024-01-01", 10, seed=1)
    second = make_altimetry("2024-01-05", 10, seed=2)
    col = _create(backend, first.schema, monthly)
    col.insert(first)
    col.insert(second, merge=merge)
    result = col.query()
    assert result is not None
    t1, t2 = first["time"].to_numpy(), second["time"].to_numpy()
    got = result["time"].to_numpy()
    if merge == "concat":
        numpy.testing.assert_array_equal(got, numpy.concatenate([t1, t2]))
    elif merge == "time_series":
        kept = t1[(t1 < t2.min()) | (t1 > t2.max())]
        numpy.testing.assert_array_equal(got, numpy.sort(numpy.concatenate([kept, t2])))
    else:
        kept = t1[~numpy.isin(t1, t2)]
        numpy.testing.assert_array_equal(got, numpy.sort(numpy.concatenate([kept, t2])))
    # the inserted rows carry the inserted values
    idx = len(t1) + numpy.arange(len(t2)) if merge == "concat" else numpy.searchsorted(got, t2)
    numpy.testing.assert_array_equal(result["ssh"].to_numpy()[idx], second["ssh"].to_numpy())


def test_insert_with_upsert_within_tolerance(backend, monthly, make_altimetry):
    first = make_altimetry("2024-01-01", 2, seed=1)
    col = _create(backend, first.schema, monthly)
    col.insert(first)
    jittered = make_altimetry("2024-01-01", 2, seed=2)
    shifted = jittered["time"].to_numpy() + numpy.timedelta64(200, "ms")
    moved = jittered.replace(
        {**jittered.all_variables(), "time": jittered["time"].with_data(shifted)}
    )
    col.insert(moved, merge=upsert_within(numpy.timedelta64(500, "ms")))
    result = col.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["time"].to_numpy(), shifted)


def test_unknown_merge_name_raises_keyerror_and_writes_nothing(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 2)
    col = _create(backend, ds.schema, monthly)
    before = backend.snapshot()
    with pytest.raises(KeyError):
        col.insert(ds, merge="nope")
    assert backend.snapshot() == before


def test_overwrite_false_refuses_existing_partition_before_writing(
    backend, monthly, make_altimetry
):
    col = _create(backend, make_altimetry("2024-01-01", 1).schema, monthly)
    col.insert(make_altimetry("2024-01-01", 3))
    before = backend.snapshot()
    with pytest.raises(zc.PartitionExistsError):
        col.insert(make_altimetry("2023-12-30", 5), overwrite=False)
    assert backend.snapshot() == before
    assert col.insert(make_altimetry("2024-03-01", 1), overwrite=False) == ["year=2024/month=03"]


# -- map / update / drop / catalog -------------------------------------------------------------


def test_map_returns_results_per_partition(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-30", 4)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    counts = col.map(lambda part: part["time"].shape[0], variables=["time"])
    assert counts == {"year=2024/month=01": 8, "year=2024/month=02": 8}
    seen = col.map(lambda part: sorted(part.all_variables()), filters="month == 2")
    assert seen == {"year=2024/month=02": ["ssh", "time", "x_ac"]}


def test_update_rewrites_and_drops_absent_variables(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-30", 4)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)

    def double(part):
        ssh = part["ssh"]
        return part.replace({**part.all_variables(), "ssh": ssh.with_data(ssh.to_numpy() * 2)})

    assert col.update(double, filters="month == 2") == ["year=2024/month=02"]
    result = col.query()
    assert result is not None
    expected = ds["ssh"].to_numpy().copy()
    expected[8:] *= 2
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), expected)

    col.update(lambda part: part.select(["time"]), filters="month == 1")
    after = col.query(filters="month == 1")
    assert after is not None
    assert numpy.isnan(after["ssh"].to_numpy()).all()  # dropped: read back as fill values
    numpy.testing.assert_array_equal(after["time"].to_numpy(), ds["time"].to_numpy()[:8])


def test_drop_partitions(backend, monthly, make_altimetry, catalog):
    ds = make_altimetry("2023-12-01", 70)
    col = _create(backend, ds.schema, monthly, catalog=catalog)
    col.insert(ds)
    assert col.drop_partitions(filters="year == 2024 and month == 1") == ["year=2024/month=01"]
    assert list(col.partitions()) == ["year=2023/month=12", "year=2024/month=02"]
    assert col.drop_partitions() == ["year=2023/month=12", "year=2024/month=02"]
    assert list(col.partitions()) == []
    assert col.query() is None
    assert not any(k.startswith("year=") for k in backend.snapshot())


def test_repair_catalog(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 40)
    col = _create(backend, ds.schema, monthly, catalog=True)
    col.insert(ds)
    store = zc.open_store(backend.store_url())
    store.write_bytes("_catalog/state.json", b'{"format_version": 1, "paths": []}')
    assert col.repair_catalog() == ["year=2024/month=01", "year=2024/month=02"]
    assert list(zc.open_collection(backend.url()).partitions()) == [
        "year=2024/month=01",
        "year=2024/month=02",
    ]
    plain = _create(backend, ds.schema, monthly, name="plain")
    with pytest.raises(RuntimeError):
        plain.repair_catalog()


def test_catalog_with_bad_checksum_is_not_trusted(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 40)
    col = _create(backend, ds.schema, monthly, catalog=True)
    col.insert(ds)
    store = zc.open_store(backend.store_url())
    store.write_bytes(
        "_catalog/state.json",
        b'{"format_version": 1, "paths": ["year=2024/month=01"], "checksum": "sha256:00"}',
    )
    assert list(col.partitions()) == ["year=2024/month=01", "year=2024/month=02"]


# -- read-only and bad input -------------------------------------------------------------------


def test_read_only_collection_refuses_every_write(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 3)
    _create(backend, ds.schema, monthly, catalog=True).insert(ds)
    before = backend.snapshot()
    ro = zc.open_collection(backend.url(), mode="r")
    with pytest.raises(zc.ReadOnlyError):
        ro.insert(ds)
    with pytest.raises(zc.ReadOnlyError):
        ro.update(lambda part: part)
    with pytest.raises(zc.ReadOnlyError):
        ro.drop_partitions(filters="month == 1")
    with pytest.raises(zc.ReadOnlyError):
        ro.repair_catalog()
    assert backend.snapshot() == before


def _bad_datasets(make_altimetry):
    good = make_altimetry("2024-01-01", 2)
    schema = good.schema
    n = good["time"].shape[0]

    def with_var(name, var):
        return good.replace({**good.all_variables(), name: var})

    wrong_dtype = with_var("ssh", good["ssh"].with_data(good["ssh"].to_numpy().astype("float64")))
    bad_x = zc.Schema().with_dimension("time").with_dimension("x_ac", size=5)
    bad_x = bad_x.with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
    bad_x = bad_x.with_variable("ssh", dtype="float32", dimensions=("time", "x_ac")).build()
    wrong_shape = zc.Dataset(
        bad_x,
        [
            zc.Variable(bad_x.variables["time"], good["time"].to_numpy()),
            zc.Variable(bad_x.variables["ssh"], numpy.zeros((n, 5), "float32")),
        ],
    )
    extra = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("other", dtype="int8", dimensions=("time",))
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .build()
    )
    unknown = zc.Dataset(
        extra,
        [
            zc.Variable(extra.variables["time"], good["time"].to_numpy()),
            zc.Variable(extra.variables["other"], numpy.zeros(n, "int8")),
        ],
    )
    swapped = zc.Schema().with_dimension("time").with_dimension("x_ac", size=4)
    swapped = swapped.with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
    swapped = swapped.with_variable("ssh", dtype="float32", dimensions=("x_ac", "time")).build()
    dim_mismatch = zc.Dataset(
        swapped,
        [
            zc.Variable(swapped.variables["time"], good["time"].to_numpy()),
            zc.Variable(swapped.variables["ssh"], numpy.zeros((4, n), "float32")),
        ],
    )
    no_time = good.select(["ssh", "x_ac"])
    missing_ssh = good.select(["time", "x_ac"])
    return {
        "wrong dtype": (wrong_dtype, zc.SchemaError),
        "wrong shape": (wrong_shape, zc.SchemaError),
        "unknown variable": (unknown, zc.SchemaError),
        "dimension mismatch": (dim_mismatch, zc.SchemaError),
        "missing partitioning variable": (no_time, zc.PartitionError),
        "missing partitioned variable": (missing_ssh, zc.SchemaError),
    }, schema


@pytest.mark.parametrize(
    "case",
    [
        "wrong dtype",
        "wrong shape",
        "unknown variable",
        "dimension mismatch",
        "missing partitioning variable",
        "missing partitioned variable",
    ],
)
def test_bad_insert_raises_and_changes_nothing(backend, monthly, make_altimetry, case):
    cases, schema = _bad_datasets(make_altimetry)
    col = _create(backend, schema, monthly, catalog=True)
    col.insert(make_altimetry("2024-01-01", 1))
    before = backend.snapshot()
    dataset, error = cases[case]
    with pytest.raises(error):
        col.insert(dataset)
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    "filters", ["year ==", "__import__('os').system('true')", "unknown == 1", "year.real > 0"]
)
def test_bad_filters_raise_expression_error_before_io(backend, monthly, make_altimetry, filters):
    ds = make_altimetry("2024-01-01", 2)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    before = backend.snapshot()
    for call in (
        lambda: list(col.partitions(filters=filters)),
        lambda: col.query(filters=filters),
        lambda: col.map(len, filters=filters),
        lambda: col.drop_partitions(filters=filters),
        lambda: col.update(lambda p: p, filters=filters),
    ):
        with pytest.raises(zc.ExpressionError):
            call()
    assert backend.snapshot() == before


def test_negative_numbers_in_filters(backend):
    schema = (
        zc.Schema()
        .with_dimension("n")
        .with_variable("cycle", dtype="int64", dimensions=("n",))
        .build()
    )
    col = _create(backend, schema, zc.partitioning.Sequence(("cycle",), dimension="n"), axis="n")
    col.insert(
        zc.Dataset(schema, [zc.Variable(schema.variables["cycle"], numpy.array([-2, -1, 0, 1]))])
    )
    assert list(col.partitions(filters="cycle == -1")) == ["cycle=-1"]
    assert list(col.partitions(filters="cycle < 0")) == ["cycle=-2", "cycle=-1"]


def test_unknown_variable_in_query_raises_schema_error(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 2)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    with pytest.raises(zc.SchemaError):
        col.query(variables=["nope"])


# -- async twins and concurrency ------------------------------------------------------------


def test_async_twins(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-30", 4)

    async def scenario():
        col = await zc.aio.create_collection(
            backend.url(), schema=ds.schema, axis="time", partitioning=monthly
        )
        written = await col.insert_async(ds)
        opened = await zc.aio.open_collection(backend.url(), mode="rw")
        result = await opened.query_async(filters="month == 2")
        mapped = await opened.map_async(lambda p: p["time"].shape[0])
        updated = await opened.update_async(lambda p: p, filters="month == 1")
        return written, result, mapped, updated

    written, result, mapped, updated = asyncio.run(scenario())
    assert written == ["year=2024/month=01", "year=2024/month=02"]
    assert result is not None
    assert result["time"].shape == (8,)
    assert mapped == {"year=2024/month=01": 8, "year=2024/month=02": 8}
    assert updated == ["year=2024/month=01"]


@pytest.mark.parametrize("limit", [1, 4])
def test_partition_concurrency_is_honoured(backend, monthly, make_altimetry, limit):
    if backend.remote:
        pytest.skip("local-only: partition.concurrency bounds the engine of this process")
    ds = make_altimetry("2024-01-01", 180, per_day=1)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    zc.config["partition.concurrency"] = limit
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(_):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        clock.sleep(0.05)
        with lock:
            state["now"] -= 1

    col.map(slow)
    assert state["peak"] <= limit
    if limit > 1:
        assert state["peak"] > 1


# -- row selection on the axis (extension used by the Flight server) ---------------------------


def test_row_selection_keeps_rows_within_bounds(backend, monthly, make_altimetry):
    ds = make_altimetry("2024-01-01", 60)
    col = _create(backend, ds.schema, monthly)
    col.insert(ds)
    day = zc.RowSelection("2024-01-15", "2024-01-16")
    result = col.query(selection=day)
    assert result is not None
    times = ds["time"].to_numpy()
    keep = (times >= numpy.datetime64("2024-01-15")) & (times < numpy.datetime64("2024-01-16"))
    numpy.testing.assert_array_equal(result["time"].to_numpy(), times[keep])
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), ds["ssh"].to_numpy()[keep])
    closed = col.query(
        variables=["ssh"],
        selection=zc.RowSelection(times[3], times[5], upper_inclusive=True),
    )
    assert closed is not None
    numpy.testing.assert_array_equal(closed["ssh"].to_numpy(), ds["ssh"].to_numpy()[3:6])
    with pytest.raises(zc.SchemaError):
        col.query(selection=zc.RowSelection("not a date"))


def test_a_failing_merge_writes_nothing(backend, monthly, make_altimetry):
    col = _create(backend, make_altimetry("2024-01-01", 1).schema, monthly, catalog=True)
    col.insert(make_altimetry("2024-01-01", 40))  # January and February
    before = backend.snapshot()
    calls = []

    def fragile(existing, inserted, *, axis, partitioning_dim):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("merge failed")
        return zc.merge.concat(existing, inserted, axis=axis, partitioning_dim=partitioning_dim)

    # December 2023 is new, January and February exist: the second merge fails
    with pytest.raises(RuntimeError, match="merge failed"):
        col.insert(make_altimetry("2023-12-30", 40, seed=5), merge=fragile)
    assert backend.snapshot() == before
