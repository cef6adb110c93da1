"""Partitioning strategies: keys, paths, JSON forms, splitting and row grouping."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import numpy
import pytest
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection.partitioning import (
    Date,
    GroupedSequence,
    Partitioning,
    Sequence,
    check_schema,
    from_json,
    partition_rows,
    register,
    sort_paths,
)
from zcollection.partitioning.base import PartitionKey

RESOLUTIONS = ("Y", "M", "D", "h", "m", "s")
FAST = settings(max_examples=60, deadline=None)


def time_dataset(values: Any, dtype: str = "datetime64[ns]") -> zc.Dataset:
    """Return a dataset holding one ``time`` variable along ``time``."""
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("time", dtype=dtype, dimensions=("time",))
        .build()
    )
    return zc.Dataset(schema, [zc.Variable(schema.variables["time"], numpy.asarray(values, dtype))])


def int_dataset(dtype: str = "int64", **columns: Any) -> zc.Dataset:
    """Return a dataset with one integer variable per column along ``num_lines``."""
    builder = zc.Schema().with_dimension("num_lines")
    for name in columns:
        builder = builder.with_variable(name, dtype=dtype, dimensions=("num_lines",))
    schema = builder.build()
    return zc.Dataset(
        schema,
        [zc.Variable(schema.variables[n], numpy.asarray(v, dtype)) for n, v in columns.items()],
    )


def rows_of(rows: Any) -> list[int]:
    """Return the row numbers selected by a slice or an index array."""
    if isinstance(rows, slice):
        return list(range(rows.start, rows.stop))
    assert isinstance(rows, numpy.ndarray) and rows.dtype == numpy.int64
    return rows.tolist()


def check_against_model(
    partitioning: Partitioning, dataset: zc.Dataset, model_keys: list[PartitionKey]
) -> None:
    """Compare partition_rows with a pure-Python grouping of the per-row model keys."""
    expected: dict[PartitionKey, list[int]] = {}
    for row, key in enumerate(model_keys):
        expected.setdefault(key, []).append(row)
    result = partition_rows(partitioning, dataset)
    assert [key for key, _ in result] == sorted(expected, key=lambda k: [v for _, v in k])
    seen: list[int] = []
    for key, rows in result:
        got = rows_of(rows)
        assert got == expected[key]
        contiguous = got == list(range(got[0], got[-1] + 1))
        assert isinstance(rows, slice) == contiguous
        seen.extend(got)
    assert sorted(seen) == list(range(len(model_keys)))


# -- Date -----------------------------------------------------------------------------------
def python_date_key(value: numpy.datetime64, resolution: str) -> PartitionKey:
    """Key of a datetime64[s] value computed with the standard library."""
    moment = value.astype("datetime64[s]").item()
    assert isinstance(moment, datetime.datetime)
    names = ("year", "month", "day", "hour", "minute", "second")
    parts = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    count = RESOLUTIONS.index(resolution) + 1
    return tuple(zip(names[:count], parts[:count], strict=True))


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_date_axis_and_paths(resolution: str) -> None:
    partitioning = Date("time", resolution=resolution)
    count = RESOLUTIONS.index(resolution) + 1
    assert partitioning.axis == ("year", "month", "day", "hour", "minute", "second")[:count]
    assert partitioning.dimension == "time"
    assert partitioning.resolution == resolution
    key = tuple(zip(partitioning.axis, (2024, 3, 1, 7, 5, 9)[:count], strict=True))
    path = partitioning.encode(key)
    assert path == "/".join(["year=2024", "month=03", "day=01", "hour=07", "minute=05",
                             "second=09"][:count])  # fmt: skip
    assert partitioning.decode(path) == key


@FAST
@given(
    resolution=st.sampled_from(RESOLUTIONS),
    moment=st.datetimes(
        min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)
    ),
)
def test_date_encode_decode_round_trip(resolution: str, moment: datetime.datetime) -> None:
    partitioning = Date(("time",), resolution=resolution, dimension="time")
    key = python_date_key(numpy.datetime64(moment, "s"), resolution)
    path = partitioning.encode(key)
    assert partitioning.decode(path) == key
    assert partitioning.decode("/" + path + "/") == key
    assert path.startswith(f"year={moment.year:04d}")


@pytest.mark.parametrize(
    "path",
    [
        "year=2024",
        "year=2024/month=03/day=01",
        "year=2024/month=3",
        "year=2024/month=13",
        "year=2024/month=00",
        "year=2024/mon=03",
        "year=2024/month=xx",
        "year=24/month=03",
        "month=03/year=2024",
        "year=2024/month=+3",
        "",
    ],
)
def test_date_decode_rejects_bad_paths(path: str) -> None:
    with pytest.raises(zc.PartitionError):
        Date("time", resolution="M").decode(path)


def test_date_decode_checks_the_calendar() -> None:
    partitioning = Date("time", resolution="D")
    assert partitioning.decode("year=2024/month=02/day=29") == (
        ("year", 2024),
        ("month", 2),
        ("day", 29),
    )
    for path in (
        "year=2023/month=02/day=29",
        "year=2024/month=04/day=31",
        "year=1900/month=02/day=29",
    ):
        with pytest.raises(zc.PartitionError, match="does not exist"):
            partitioning.decode(path)
    with pytest.raises(zc.PartitionError):
        Date("time", resolution="s").decode("year=2024/month=01/day=01/hour=24/minute=00/second=00")


def test_date_encode_rejects_bad_keys() -> None:
    partitioning = Date("time", resolution="M")
    for key in (
        (("year", 2024),),
        (("year", 2024), ("day", 3)),
        (("year", 2024), ("month", 3.0)),
        (("year", 2024), ("month", True)),
        (("year", 2024), ("month", 13)),
        "year=2024",
    ):
        with pytest.raises(zc.PartitionError):
            partitioning.encode(key)  # type: ignore[arg-type]


def test_date_constructor_validation() -> None:
    assert Date(("time",), resolution="D").variable == "time"
    with pytest.raises(zc.PartitionError, match="resolution"):
        Date("time", resolution="W")
    with pytest.raises(zc.PartitionError, match="exactly one"):
        Date(("time", "other"), resolution="D")
    with pytest.raises(zc.PartitionError):
        Date((), resolution="D")


def test_date_split_contiguous_runs() -> None:
    values = ["2024-01-31T23:59", "2024-02-01", "2024-02-29T12:00", "2024-01-05", "2024-01-06"]
    dataset = time_dataset(values)
    partitioning = Date("time", resolution="M")
    assert list(partitioning.split(dataset)) == [
        ((("year", 2024), ("month", 1)), slice(0, 1)),
        ((("year", 2024), ("month", 2)), slice(1, 3)),
        ((("year", 2024), ("month", 1)), slice(3, 5)),
    ]
    result = partition_rows(partitioning, dataset)
    assert [key for key, _ in result] == [
        (("year", 2024), ("month", 1)),
        (("year", 2024), ("month", 2)),
    ]
    assert rows_of(result[0][1]) == [0, 3, 4]
    assert result[1][1] == slice(1, 3)


def test_date_before_epoch_is_floored() -> None:
    dataset = time_dataset(["1969-12-31T23:59:59.999999999", "1970-01-01"])
    keys = [key for key, _ in Date("time", resolution="s").split(dataset)]
    assert keys[0] == (
        ("year", 1969),
        ("month", 12),
        ("day", 31),
        ("hour", 23),
        ("minute", 59),
        ("second", 59),
    )
    assert keys[1][0] == ("year", 1970)


def test_date_rejects_nat_and_wrong_dtypes() -> None:
    with pytest.raises(zc.PartitionError, match="NaT"):
        list(Date("time", resolution="D").split(time_dataset(["2024-01-01", "NaT"])))
    with pytest.raises(zc.PartitionError, match="datetime64"):
        partition_rows(Date("time", resolution="D"), time_dataset([1, 2], dtype="int64"))
    with pytest.raises(zc.PartitionError, match="missing"):
        partition_rows(Date("date", resolution="D", dimension="time"), time_dataset(["2024-01-01"]))
    with pytest.raises(zc.PartitionError, match="1-D along"):
        partition_rows(Date("time", resolution="D", dimension="x"), time_dataset(["2024-01-01"]))


@FAST
@given(
    resolution=st.sampled_from(RESOLUTIONS),
    seconds=st.lists(
        st.integers(min_value=-(10**9), max_value=10**9) | st.sampled_from([0, 59, 60, 3600]),
        min_size=0,
        max_size=60,
    ),
    unit=st.sampled_from(["s", "ms", "ns"]),
)
def test_date_partition_rows_against_model(resolution: str, seconds: list[int], unit: str) -> None:
    values = (numpy.asarray(seconds, dtype="int64").astype("datetime64[s]")).astype(
        f"datetime64[{unit}]"
    )
    dataset = time_dataset(values, dtype=f"datetime64[{unit}]")
    partitioning = Date("time", resolution=resolution)
    model = [python_date_key(value, resolution) for value in values]
    check_against_model(partitioning, dataset, model)
    runs = list(partitioning.split(dataset))
    assert [row for _, run in runs for row in rows_of(run)] == list(range(len(seconds)))
    for key, run in runs:
        assert all(model[row] == key for row in rows_of(run))
    for (key, run), (next_key, _) in itertools.pairwise(runs):
        assert key != next_key and run.stop > run.start


# -- Sequence -------------------------------------------------------------------------------
def test_sequence_paths_without_padding_and_negative_values() -> None:
    partitioning = Sequence(("cycle", "pass"), dimension="num_lines")
    key = (("cycle", 31), ("pass", 100))
    assert partitioning.encode(key) == "cycle=31/pass=100"
    assert partitioning.decode("cycle=31/pass=100") == key
    assert partitioning.encode((("cycle", -1), ("pass", 0))) == "cycle=-1/pass=0"
    assert partitioning.decode("cycle=-1/pass=0") == (("cycle", -1), ("pass", 0))
    for bad in (
        "cycle=01/pass=1",
        "cycle=+1/pass=1",
        "cycle=-0/pass=1",
        "cycle=1",
        "pass=1/cycle=1",
    ):
        with pytest.raises(zc.PartitionError):
            partitioning.decode(bad)


@FAST
@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=4))
def test_sequence_encode_decode_round_trip(values: list[int]) -> None:
    names = tuple(f"v{i}" for i in range(len(values)))
    partitioning = Sequence(names, dimension="x")
    key = tuple(zip(names, values, strict=True))
    assert partitioning.decode(partitioning.encode(key)) == key


def test_sequence_constructor_validation() -> None:
    assert Sequence("cycle", dimension=None).dimension == "cycle"
    for variables in ((), ("a", "a"), ("a=b",), ("a/b",), ("",)):
        with pytest.raises(zc.PartitionError):
            Sequence(variables, dimension="x")


def test_sequence_split_and_partition_rows() -> None:
    dataset = int_dataset(cycle=[1, 1, 2, 2, 1, 10], pass_=[3, 3, 3, 3, 3, 3])
    partitioning = Sequence(("cycle", "pass_"), dimension="num_lines")
    assert [(k, s) for k, s in partitioning.split(dataset)] == [
        ((("cycle", 1), ("pass_", 3)), slice(0, 2)),
        ((("cycle", 2), ("pass_", 3)), slice(2, 4)),
        ((("cycle", 1), ("pass_", 3)), slice(4, 5)),
        ((("cycle", 10), ("pass_", 3)), slice(5, 6)),
    ]
    result = partition_rows(partitioning, dataset)
    assert [k[0][1] for k, _ in result] == [1, 2, 10]
    assert rows_of(result[0][1]) == [0, 1, 4]


def test_sequence_rejects_non_integers() -> None:
    dataset = int_dataset("float64", cycle=[1.0, 2.0])
    with pytest.raises(zc.PartitionError, match="integers"):
        partition_rows(Sequence("cycle", dimension="num_lines"), dataset)
    with pytest.raises(zc.PartitionError, match="integers"):
        list(Sequence("cycle", dimension="num_lines").split(int_dataset("bool", cycle=[True])))


@FAST
@given(
    columns=st.integers(min_value=1, max_value=3).flatmap(
        lambda width: st.lists(
            st.tuples(*[st.integers(min_value=-12, max_value=12)] * width),
            min_size=0,
            max_size=80,
        ).map(lambda rows: (width, rows))
    ),
    dtype=st.sampled_from(["int8", "int32", "int64"]),
)
def test_sequence_partition_rows_against_model(columns: tuple[int, list[Any]], dtype: str) -> None:
    width, rows = columns
    names = [f"k{i}" for i in range(width)]
    data = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    dataset = int_dataset(dtype, **data)
    partitioning = Sequence(tuple(names), dimension="num_lines")
    model = [tuple(zip(names, row, strict=True)) for row in rows]
    check_against_model(partitioning, dataset, model)


def test_partition_rows_large_input_is_grouped() -> None:
    keys = numpy.tile(numpy.array([3, 1, 2, 1]), 250_000)
    result = partition_rows(Sequence("k", dimension="num_lines"), int_dataset(k=keys))
    assert [key for key, _ in result] == [(("k", 1),), (("k", 2),), (("k", 3),)]
    assert len(result[0][1]) == 500_000  # type: ignore[arg-type]
    assert rows_of(result[2][1])[:3] == [0, 4, 8]


def test_partition_rows_on_an_empty_dataset() -> None:
    assert partition_rows(Sequence("k", dimension="num_lines"), int_dataset(k=[])) == []
    assert list(Date("time", resolution="D").split(time_dataset([]))) == []


# -- GroupedSequence --------------------------------------------------------------------------
def test_grouped_sequence_bucketing() -> None:
    partitioning = GroupedSequence(("cycle", "pass"), dimension="num_lines", size=10, start=1)
    assert (partitioning.size, partitioning.start) == (10, 1)
    columns = {"cycle": [5, 5, 5, 5, 5], "pass": [1, 10, 11, 0, -9]}
    dataset = int_dataset("int64", **columns)
    keys = [key for key, _ in partition_rows(partitioning, dataset)]
    assert keys == [
        (("cycle", 5), ("pass", -9)),
        (("cycle", 5), ("pass", 1)),
        (("cycle", 5), ("pass", 11)),
    ]
    assert partitioning.encode(keys[0]) == "cycle=5/pass=-9"
    with pytest.raises(zc.PartitionError, match="multiple"):
        partitioning.decode("cycle=5/pass=10")
    with pytest.raises(zc.PartitionError):
        partitioning.encode((("cycle", 5), ("pass", 2)))


def test_grouped_sequence_unsigned_below_start_does_not_wrap() -> None:
    partitioning = GroupedSequence("n", dimension="num_lines", size=4, start=6)
    keys = [key for key, _ in partition_rows(partitioning, int_dataset("uint8", n=[0, 255]))]
    assert keys == [(("n", -2),), (("n", 254),)]


@FAST
@given(
    values=st.lists(st.integers(min_value=-1000, max_value=1000), min_size=1, max_size=60),
    size=st.integers(min_value=2, max_value=50),
    start=st.integers(min_value=-100, max_value=100),
)
def test_grouped_sequence_against_model(values: list[int], size: int, start: int) -> None:
    partitioning = GroupedSequence("n", dimension="num_lines", size=size, start=start)
    model: list[PartitionKey] = [(("n", (v - start) // size * size + start),) for v in values]
    dataset = int_dataset(n=values)
    check_against_model(partitioning, dataset, model)
    for key, _ in partition_rows(partitioning, dataset):
        assert partitioning.decode(partitioning.encode(key)) == key
        low = key[0][1]
        assert all(low <= v < low + size for v, m in zip(values, model, strict=True) if m == key)


def test_grouped_sequence_validation() -> None:
    for size in (1, 0, -3, 2.5, True):
        with pytest.raises(zc.PartitionError):
            GroupedSequence("n", dimension="x", size=size)  # type: ignore[arg-type]
    with pytest.raises(zc.PartitionError):
        GroupedSequence("n", dimension="x", size=2, start="0")  # type: ignore[arg-type]


# -- JSON and registry ----------------------------------------------------------------------
ALL = [
    Date("time", resolution="M"),
    Date("t", resolution="s", dimension="obs"),
    Sequence(("cycle", "pass"), dimension="num_lines"),
    GroupedSequence(("cycle", "pass"), dimension="num_lines", size=10, start=3),
]


@pytest.mark.parametrize("partitioning", ALL, ids=repr)
def test_json_round_trip(partitioning: Partitioning) -> None:
    payload = partitioning.to_json()
    restored = from_json(payload)
    assert type(restored) is type(partitioning)
    assert restored == partitioning and hash(restored) == hash(partitioning)
    assert restored.to_json() == payload
    assert Partitioning.from_json(payload) == partitioning
    assert type(partitioning).from_json(payload) == partitioning


def test_json_forms_match_the_on_disk_format() -> None:
    assert Date("time", resolution="M").to_json() == {
        "name": "date",
        "variable": "time",
        "resolution": "M",
        "dimension": "time",
    }
    assert Sequence(("cycle", "pass"), dimension="num_lines").to_json() == {
        "name": "sequence",
        "variables": ["cycle", "pass"],
        "dimension": "num_lines",
    }
    assert GroupedSequence(("a", "b"), dimension="d", size=10).to_json() == {
        "name": "grouped-sequence",
        "variables": ["a", "b"],
        "dimension": "d",
        "size": 10,
        "start": 0,
    }
    legacy = {"name": "date", "variables": ["time"], "resolution": "D", "dimension": "time"}
    assert from_json(legacy) == Date("time", resolution="D")
    assert Date("a", resolution="D") != Date("a", resolution="M")
    assert Sequence("a", dimension="d") != GroupedSequence("a", dimension="d", size=2)


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "nope"},
        {"variables": ["a"]},
        ["date"],
        {"name": "date", "resolution": "M"},
        {"name": "date", "variable": "time"},
        {"name": "date", "variable": "time", "resolution": "Q"},
        {"name": "date", "variable": 3, "resolution": "M"},
        {"name": "sequence", "dimension": "x"},
        {"name": "sequence", "variables": "abc", "dimension": "x"},
        {"name": "sequence", "variables": [], "dimension": "x"},
        {"name": "grouped-sequence", "variables": ["a"], "dimension": "x"},
        {"name": "grouped-sequence", "variables": ["a"], "dimension": "x", "size": 1},
    ],
)
def test_from_json_rejects_bad_payloads(payload: Any) -> None:
    with pytest.raises(zc.PartitionError):
        from_json(payload)


def test_register_a_custom_partitioning() -> None:
    class Parity(Sequence):
        name = "test-parity"

        def to_json(self) -> dict[str, Any]:
            return {**super().to_json(), "name": self.name}

    assert register(Parity) is Parity
    assert register(Parity) is Parity
    restored = from_json({"name": "test-parity", "variables": ["n"], "dimension": "x"})
    assert isinstance(restored, Parity)

    class Clash(Sequence):
        name = "sequence"

    with pytest.raises(zc.PartitionError, match="already registered"):
        register(Clash)


# -- paths and schemas ----------------------------------------------------------------------
def test_sort_paths_numeric_order() -> None:
    sequence = Sequence(("num",), dimension="x")
    paths = ["num=10", "num=2", "num=-1", "num=100", "num=-20"]
    assert sort_paths(sequence, paths) == ["num=-20", "num=-1", "num=2", "num=10", "num=100"]
    date = Date("time", resolution="M")
    assert sort_paths(date, ["year=2024/month=10", "year=2023/month=12", "year=2024/month=02"]) == [
        "year=2023/month=12",
        "year=2024/month=02",
        "year=2024/month=10",
    ]
    with pytest.raises(zc.PartitionError):
        sort_paths(sequence, ["num=1", "other=2"])


def make_schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("x", size=3)
        .with_variable("time", dtype="datetime64[us]", dimensions=("time",))
        .with_variable("cycle", dtype="uint16", dimensions=("time",))
        .with_variable("grid", dtype="int32", dimensions=("time", "x"))
        .with_variable("xs", dtype="int32", dimensions=("x",))
        .with_variable("ssh", dtype="float32", dimensions=("time",))
        .with_variable("deep", dtype="int32", dimensions=("time",), group="sub")
        .build()
    )


def test_check_schema_accepts_valid_key_variables() -> None:
    schema = make_schema()
    check_schema(Date("time", resolution="D"), schema)
    check_schema(Sequence("cycle", dimension="time"), schema)
    check_schema(GroupedSequence(("cycle",), dimension="time", size=5), schema)


@pytest.mark.parametrize(
    ("partitioning", "message"),
    [
        (Date("missing", resolution="D", dimension="time"), "not a variable"),
        (Sequence("deep", dimension="time"), "not a variable"),
        (Sequence("grid", dimension="time"), "1-D"),
        (Sequence("xs", dimension="time"), "1-D"),
        (Sequence("cycle", dimension="x"), "1-D"),
        (Sequence("ssh", dimension="time"), "integers"),
        (Sequence("time", dimension="time"), "integers"),
        (Date("cycle", resolution="D", dimension="time"), "datetime64"),
    ],
)
def test_check_schema_rejects(partitioning: Partitioning, message: str) -> None:
    with pytest.raises(zc.PartitionError, match=message):
        check_schema(partitioning, make_schema())
