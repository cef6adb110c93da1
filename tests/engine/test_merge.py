"""Tests of the merge strategies against a pure-Python model."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy
import pytest
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection import merge

NAT = numpy.iinfo(numpy.int64).min
MS = 1_000_000  # nanoseconds per millisecond

# A model row: (key, row id). Keys are Python ints/floats, nanoseconds for datetime axes,
# and None (datetime) or NaN (float) for missing values.
Row = tuple[Any, int]


# -- dataset construction ---------------------------------------------------------------------


def _schema(axis_dtype: str, *, group: bool = False) -> Any:
    builder = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("x", size=3)
        .with_variable("time", dtype=axis_dtype, dimensions=("time",))
        .with_variable("v", dtype="float32", dimensions=("time", "x"))
        .with_variable("c", dtype="int64", dimensions=("x",))
    )
    if group:
        builder = builder.with_variable("w", dtype="int64", dimensions=("time",), group="grp")
    return builder.build()


def _axis_array(keys: list[Any], kind: str) -> numpy.ndarray:
    if kind == "datetime":
        ints = numpy.array([NAT if k is None else k for k in keys], dtype=numpy.int64)
        return ints.view("datetime64[ns]")
    return numpy.array(keys, dtype="int64" if kind == "int" else "float64")


def _dtype(kind: str) -> str:
    return {"int": "int64", "float": "float64", "datetime": "datetime64[ns]"}[kind]


def make(rows: list[Row], kind: str, c: int = 0, *, group: bool = False) -> zc.Dataset:
    """Build a dataset whose ``v`` row ``r`` is ``[id, id + .25, id + .5]``."""
    schema = _schema(_dtype(kind), group=group)
    keys = [k for k, _ in rows]
    ids = numpy.array([i for _, i in rows], dtype="float32").reshape(-1, 1)
    v = ids + numpy.array([0.0, 0.25, 0.5], dtype="float32")
    variables = [
        zc.Variable(schema.variables["time"], _axis_array(keys, kind)),
        zc.Variable(schema.variables["v"], v),
        zc.Variable(schema.variables["c"], numpy.full(3, c, dtype="int64")),
    ]
    if group:
        w_schema = schema.groups["grp"].variables["w"]
        w = numpy.array([i for _, i in rows], dtype="int64") * 10
        variables.append(zc.Variable(w_schema, w))
        return zc.Dataset(
            schema,
            {"time": variables[0], "v": variables[1], "c": variables[2], "grp/w": variables[3]},
        )
    return zc.Dataset(schema, variables)


def rows_of(ds: zc.Dataset, kind: str) -> list[Row]:
    """Read back the (key, id) rows of a dataset, checking ``v`` stayed row-consistent."""
    axis = ds.get_variable("time").to_numpy()
    v = ds.get_variable("v").to_numpy()
    assert v.shape == (axis.shape[0], 3)
    ids = v[:, 0]
    numpy.testing.assert_array_equal(v[:, 1], ids + 0.25)
    numpy.testing.assert_array_equal(v[:, 2], ids + 0.5)
    if kind == "datetime":
        keys: list[Any] = [None if k == NAT else int(k) for k in axis.view(numpy.int64)]
    elif kind == "float":
        keys = [float(k) for k in axis]
    else:
        keys = [int(k) for k in axis]
    return [(k, int(i)) for k, i in zip(keys, ids, strict=True)]


def same_rows(actual: list[Row], expected: list[Row]) -> bool:
    def norm(rows: list[Row]) -> list[tuple[Any, int]]:
        return [("missing" if _invalid(k) else k, i) for k, i in rows]

    return norm(actual) == norm(expected)


# -- the model --------------------------------------------------------------------------------


def _invalid(key: Any) -> bool:
    return key is None or (isinstance(key, float) and math.isnan(key))


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (1, 0) if _invalid(r[0]) else (0, r[0]))


def model_concat(existing: list[Row], inserted: list[Row]) -> list[Row]:
    return existing + inserted


def model_time_series(existing: list[Row], inserted: list[Row]) -> list[Row]:
    if not inserted:
        return existing
    if not existing:
        return inserted
    valid = [k for k, _ in inserted if not _invalid(k)]
    if not valid:
        kept = existing
    else:
        lo, hi = min(valid), max(valid)
        kept = [r for r in existing if _invalid(r[0]) or not lo <= r[0] <= hi]
    return _sorted(kept + inserted)


def model_upsert(existing: list[Row], inserted: list[Row], tolerance: float = 0) -> list[Row]:
    if not inserted:
        return existing
    if not existing:
        return inserted

    def matched(key: Any) -> bool:
        if _invalid(key):
            return False
        return any(not _invalid(k) and abs(key - k) <= tolerance for k, _ in inserted)

    kept = [r for r in existing if not matched(r[0])]
    return _sorted(kept + inserted)


# -- hypothesis strategies --------------------------------------------------------------------


def _keys(kind: str) -> st.SearchStrategy[Any]:
    if kind == "int":
        return st.integers(-6, 6)
    if kind == "float":
        return st.one_of(st.integers(-12, 12).map(lambda i: i / 2), st.just(math.nan))
    return st.one_of(st.integers(0, 40).map(lambda i: i * 100 * MS), st.none())


@st.composite
def sides(draw: st.DrawFn, kinds: tuple[str, ...] = ("int", "float", "datetime")) -> Any:
    kind = draw(st.sampled_from(kinds))
    keys = _keys(kind)
    existing_keys = draw(st.lists(keys, max_size=8))
    inserted_keys = draw(st.lists(keys, max_size=8))
    existing = [(k, i) for i, k in enumerate(existing_keys)]
    inserted = [(k, 1000 + i) for i, k in enumerate(inserted_keys)]
    return kind, existing, inserted


def _run(strategy: Any, existing: list[Row], inserted: list[Row], kind: str, **kw: Any) -> Any:
    ds_existing = make(existing, kind, c=1)
    ds_inserted = make(inserted, kind, c=2)
    result = strategy(ds_existing, ds_inserted, axis="time", partitioning_dim="time", **kw)
    return result, ds_existing, ds_inserted


def _check_immutable(result: zc.Dataset, source: zc.Dataset) -> None:
    numpy.testing.assert_array_equal(
        result.get_variable("c").to_numpy(), source.get_variable("c").to_numpy()
    )


FAST = settings(max_examples=120, deadline=None)


# -- strategies against the model -------------------------------------------------------------


def test_replace_returns_inserted() -> None:
    existing = make([(1, 0), (2, 1)], "int", c=1)
    inserted = make([(5, 1000)], "int", c=2)
    assert merge.replace(existing, inserted, axis="time", partitioning_dim="time") is inserted


@FAST
@given(sides())
def test_concat_matches_model(case: Any) -> None:
    kind, existing, inserted = case
    result, _, ds_inserted = _run(merge.concat, existing, inserted, kind)
    assert same_rows(rows_of(result, kind), model_concat(existing, inserted))
    _check_immutable(result, ds_inserted)


@FAST
@given(sides())
def test_time_series_matches_model(case: Any) -> None:
    kind, existing, inserted = case
    result, _, ds_inserted = _run(merge.time_series, existing, inserted, kind)
    assert same_rows(rows_of(result, kind), model_time_series(existing, inserted))
    if inserted and existing:
        _check_immutable(result, ds_inserted)


@FAST
@given(sides())
def test_upsert_exact_matches_model(case: Any) -> None:
    kind, existing, inserted = case
    result, _, ds_inserted = _run(merge.upsert, existing, inserted, kind)
    assert same_rows(rows_of(result, kind), model_upsert(existing, inserted))
    if inserted and existing:
        _check_immutable(result, ds_inserted)


@FAST
@given(sides(("int", "float")), st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0]))
def test_upsert_numeric_tolerance_matches_model(case: Any, tolerance: float) -> None:
    kind, existing, inserted = case
    result, _, _ = _run(merge.upsert, existing, inserted, kind, tolerance=tolerance)
    assert same_rows(rows_of(result, kind), model_upsert(existing, inserted, tolerance))


@FAST
@given(sides(("datetime",)), st.sampled_from([0, 50, 99, 100, 150, 250, 1000]))
def test_upsert_datetime_tolerance_matches_model(case: Any, tolerance_ms: int) -> None:
    kind, existing, inserted = case
    strategy = merge.upsert_within(numpy.timedelta64(tolerance_ms, "ms"))
    result, _, _ = _run(strategy, existing, inserted, kind)
    expected = model_upsert(existing, inserted, tolerance_ms * MS)
    assert same_rows(rows_of(result, kind), expected)


@FAST
@given(sides())
def test_nested_group_variables_follow_rows(case: Any) -> None:
    kind, existing, inserted = case
    ds_existing = make(existing, kind, group=True)
    ds_inserted = make(inserted, kind, group=True)
    result = merge.upsert(ds_existing, ds_inserted, axis="time", partitioning_dim="time")
    ids = [i for _, i in rows_of(result, kind)]
    numpy.testing.assert_array_equal(
        result.get_variable("grp/w").to_numpy(), numpy.array(ids, dtype="int64") * 10
    )


# -- concrete behaviour -----------------------------------------------------------------------


def test_datetime_tolerance_example() -> None:
    t0 = numpy.datetime64("2024-01-01T00:00:00", "ns")
    existing_t = t0 + numpy.array([0, 1000, 2000, 3000], dtype="timedelta64[ms]")
    inserted_t = t0 + numpy.array([1300, 2600], dtype="timedelta64[ms]")
    existing = make([(int(t), i) for i, t in enumerate(existing_t.view("int64"))], "datetime")
    inserted = make(
        [(int(t), 1000 + i) for i, t in enumerate(inserted_t.view("int64"))], "datetime"
    )
    tolerance = numpy.timedelta64(500, "ms")
    result = merge.upsert(
        existing, inserted, axis="time", partitioning_dim="time", tolerance=tolerance
    )
    # 1000 ms matches 1300 (300 ms away); 3000 matches 2600 (400 ms); 2000 is 600 ms from both.
    assert [i for _, i in rows_of(result, "datetime")] == [0, 1000, 2, 1001]
    exact = merge.upsert(existing, inserted, axis="time", partitioning_dim="time")
    assert [i for _, i in rows_of(exact, "datetime")] == [0, 1, 1000, 2, 1001, 3]


def test_coarse_datetime_axis_with_fine_tolerance() -> None:
    schema = _schema("datetime64[s]")

    def build(seconds: list[int], first_id: int) -> zc.Dataset:
        ids = numpy.arange(first_id, first_id + len(seconds), dtype="float32")
        v = ids[:, None] + numpy.array([0.0, 0.25, 0.5], dtype="float32")
        return zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["time"], numpy.array(seconds, dtype="M8[s]")),
                zc.Variable(schema.variables["v"], v),
                zc.Variable(schema.variables["c"], numpy.zeros(3, dtype="int64")),
            ],
        )

    result = merge.upsert(
        build([0, 10], 0),
        build([1, 12], 1000),
        axis="time",
        partitioning_dim="time",
        tolerance=numpy.timedelta64(1500, "ms"),
    )
    numpy.testing.assert_array_equal(result.get_variable("v").to_numpy()[:, 0], [1000, 1, 1001])


def test_float_tolerance_example() -> None:
    existing = make([(0.0, 0), (1.0, 1), (2.0, 2)], "float")
    inserted = make([(1.05, 1000), (2.5, 1001)], "float")
    result = merge.upsert_within(0.1)(existing, inserted, axis="time", partitioning_dim="time")
    assert rows_of(result, "float") == [(0.0, 0), (1.05, 1000), (2.0, 2), (2.5, 1001)]


def test_int64_extremes_do_not_overflow() -> None:
    big = numpy.iinfo(numpy.int64).max
    existing = make([(-big, 0), (big - 1, 1)], "int")
    inserted = make([(big, 1000)], "int")
    result = merge.upsert(existing, inserted, axis="time", partitioning_dim="time", tolerance=2.0)
    # A wrapping subtraction would put -big within 2 of big.
    assert rows_of(result, "int") == [(-big, 0), (big, 1000)]


def test_datetime_extremes_do_not_overflow() -> None:
    lowest, highest = NAT + 1, numpy.iinfo(numpy.int64).max
    strategy = merge.upsert_within(numpy.timedelta64(10, "ns"))
    kw = {"axis": "time", "partitioning_dim": "time"}
    existing = make([(lowest, 0), (highest - 5, 1)], "datetime")
    result = strategy(existing, make([(highest, 1000)], "datetime"), **kw)
    assert rows_of(result, "datetime") == [(lowest, 0), (highest, 1000)]
    # An inserted NaT is no candidate, even for the value right next to NaT's bit pattern.
    result = strategy(existing, make([(None, 1000)], "datetime"), **kw)
    assert same_rows(rows_of(result, "datetime"), [(lowest, 0), (highest - 5, 1), (None, 1000)])


def test_unsigned_axis_with_tolerance() -> None:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("time", dtype="uint8", dimensions=("time",))
        .with_variable("v", dtype="int64", dimensions=("time",))
        .build()
    )

    def build(axis: list[int], v: list[int]) -> zc.Dataset:
        return zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["time"], numpy.array(axis, dtype="uint8")),
                zc.Variable(schema.variables["v"], numpy.array(v, dtype="int64")),
            ],
        )

    result = merge.upsert(
        build([0, 5, 250], [0, 1, 2]),
        build([4, 255], [10, 11]),
        axis="time",
        partitioning_dim="time",
        tolerance=1,
    )
    numpy.testing.assert_array_equal(result.get_variable("v").to_numpy(), [0, 10, 2, 11])


def test_stable_order_keeps_existing_before_inserted() -> None:
    # NaT never matches, so the existing NaT survives and sorts before the inserted one.
    existing = make([(None, 0), (5 * MS, 1), (None, 2)], "datetime")
    inserted = make([(None, 1000), (3 * MS, 1001)], "datetime")
    result = merge.upsert(existing, inserted, axis="time", partitioning_dim="time")
    assert [i for _, i in rows_of(result, "datetime")] == [1001, 1, 0, 2, 1000]
    # time_series keeps duplicated existing keys outside the window in their original order.
    existing = make([(7, 0), (1, 1), (7, 2), (1, 3)], "int")
    inserted = make([(3, 1000), (3, 1001)], "int")
    result = merge.time_series(existing, inserted, axis="time", partitioning_dim="time")
    assert [i for _, i in rows_of(result, "int")] == [1, 3, 1000, 1001, 0, 2]


@pytest.mark.parametrize("kind", ["int", "float", "datetime"])
def test_large_inputs_sort_stably(kind: str) -> None:
    # Large enough that an unstable sort (quicksort/SIMD) would reorder equal keys.
    rng = numpy.random.default_rng(42)
    scale = 100 * MS if kind == "datetime" else 1
    existing: list[Row] = [(int(k) * scale, i) for i, k in enumerate(rng.integers(0, 8, 300))]
    keys = rng.integers(4, 12, 300)
    inserted: list[Row] = [(int(k) * scale, 1000 + i) for i, k in enumerate(keys)]
    if kind == "float":
        existing = [(float(k), i) for k, i in existing]
        inserted = [(float(k), i) for k, i in inserted]
    for strategy, model in ((merge.upsert, model_upsert), (merge.time_series, model_time_series)):
        result, _, _ = _run(strategy, existing, inserted, kind)
        assert same_rows(rows_of(result, kind), model(existing, inserted))


@pytest.mark.parametrize("strategy", [merge.time_series, merge.upsert])
def test_empty_sides_short_circuit(strategy: Any) -> None:
    existing = make([(3, 0), (1, 1)], "int")
    inserted = make([(2, 1000)], "int")
    empty = make([], "int")
    assert strategy(existing, empty, axis="time", partitioning_dim="time") is existing
    assert strategy(empty, inserted, axis="time", partitioning_dim="time") is inserted
    assert strategy(empty, empty, axis="time", partitioning_dim="time") is empty


def test_lazy_data_is_supported() -> None:
    da = pytest.importorskip("dask.array")
    existing = make([(1, 0), (2, 1), (3, 2)], "int")
    inserted = make([(2, 1000)], "int")
    lazy = existing.replace(
        {
            name: var.with_data(da.from_array(var.to_numpy(), chunks=2))
            for name, var in existing.all_variables().items()
        }
    )
    result = merge.upsert(lazy, inserted, axis="time", partitioning_dim="time")
    assert rows_of(result, "int") == [(1, 0), (2, 1000), (3, 2)]


# -- errors -----------------------------------------------------------------------------------


def _without_time(ds: zc.Dataset) -> zc.Dataset:
    schema = ds.schema.select(["v", "c"])
    return zc.Dataset(schema, {k: v for k, v in ds.all_variables().items() if k != "time"})


@pytest.mark.parametrize("strategy", [merge.time_series, merge.upsert, merge.upsert_within(1.0)])
def test_missing_axis_raises_value_error(strategy: Any) -> None:
    ds = make([(1, 0)], "int")
    for existing, inserted in ((_without_time(ds), ds), (ds, _without_time(ds))):
        with pytest.raises(ValueError, match="axis 'time'"):
            strategy(existing, inserted, axis="time", partitioning_dim="time")
    with pytest.raises(ValueError, match="axis 'nope'"):
        strategy(ds, ds, axis="nope", partitioning_dim="time")


@pytest.mark.parametrize("strategy", [merge.time_series, merge.upsert])
def test_axis_must_be_1d_along_partitioning_dim(strategy: Any) -> None:
    ds = make([(1, 0), (2, 1)], "int")
    with pytest.raises(ValueError, match="1-D"):
        strategy(ds, ds, axis="v", partitioning_dim="time")
    with pytest.raises(ValueError, match="partitioning dimension"):
        strategy(ds, ds, axis="c", partitioning_dim="time")


def test_bad_tolerances() -> None:
    ds_float = make([(1.0, 0)], "float")
    ds_time = make([(MS, 0)], "datetime")
    with pytest.raises(ValueError):
        merge.upsert_within(-1.0)
    with pytest.raises(ValueError):
        merge.upsert_within(math.nan)
    with pytest.raises(ValueError):
        merge.upsert_within(numpy.timedelta64("NaT", "ms"))
    with pytest.raises(ValueError):
        merge.upsert_within(numpy.timedelta64(-1, "ms"))
    with pytest.raises(TypeError):
        merge.upsert_within("1s")
    with pytest.raises(TypeError):
        merge.upsert_within(True)
    with pytest.raises(TypeError):
        merge.upsert_within(numpy.timedelta64(1, "s"))(
            ds_float, ds_float, axis="time", partitioning_dim="time"
        )
    with pytest.raises(TypeError):
        merge.upsert_within(1.0)(ds_time, ds_time, axis="time", partitioning_dim="time")


def test_concat_with_different_variables_raises() -> None:
    ds = make([(1, 0)], "int")
    with pytest.raises(ValueError):
        merge.concat(ds, _without_time(ds), axis="time", partitioning_dim="time")


# -- registry and JSON ------------------------------------------------------------------------


def test_resolve_names_and_callables() -> None:
    assert set(merge.STRATEGIES) == {"replace", "concat", "time_series", "upsert"}
    for name, strategy in merge.STRATEGIES.items():
        assert merge.resolve(name) is strategy
        assert merge.resolve(strategy) is strategy
        assert isinstance(strategy, merge.MergeCallable)
    assert merge.resolve(None) is None
    custom = merge.upsert_within(0.5)
    assert merge.resolve(custom) is custom
    assert isinstance(custom, merge.MergeCallable)


def test_resolve_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError, match="upsert_within") as info:
        merge.resolve("upsert_within")
    assert "time_series" in str(info.value)
    with pytest.raises(KeyError):
        merge.resolve("nope")
    with pytest.raises(TypeError):
        merge.resolve(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tolerance", "encoded"),
    [
        (numpy.timedelta64(500, "ms"), {"value": 500, "unit": "ms"}),
        (numpy.timedelta64(30, "us").astype("m8[10us]"), {"value": 30, "unit": "us"}),
        (0.25, 0.25),
        (2, 2.0),
        (None, None),
    ],
)
def test_upsert_within_json_round_trip(tolerance: Any, encoded: Any) -> None:
    strategy = merge.upsert_within(tolerance)
    payload = merge.to_json(strategy)
    assert payload == {"name": "upsert_within", "tolerance": encoded}
    restored = merge.from_json(json.loads(json.dumps(payload)))
    assert restored == strategy
    assert restored.tolerance == strategy.tolerance  # type: ignore[attr-defined]


def test_round_tripped_strategy_behaves_the_same() -> None:
    existing = make([(0, 0), (10 * MS, 1), (20 * MS, 2)], "datetime")
    inserted = make([(11 * MS, 1000)], "datetime")
    strategy = merge.upsert_within(numpy.timedelta64(2, "ms"))
    restored = merge.from_json(json.loads(json.dumps(merge.to_json(strategy))))
    kw = {"axis": "time", "partitioning_dim": "time"}
    assert rows_of(restored(existing, inserted, **kw), "datetime") == rows_of(
        strategy(existing, inserted, **kw), "datetime"
    )
    assert [i for _, i in rows_of(restored(existing, inserted, **kw), "datetime")] == [0, 1000, 2]


def test_named_strategies_json() -> None:
    for name, strategy in merge.STRATEGIES.items():
        assert merge.to_json(strategy) == {"name": name}
        assert merge.to_json(name) == {"name": name}
        assert merge.from_json({"name": name}) is strategy


def test_json_errors() -> None:
    def custom(
        existing: zc.Dataset, inserted: zc.Dataset, *, axis: str, partitioning_dim: str
    ) -> zc.Dataset:
        return inserted

    with pytest.raises(ValueError, match="custom"):
        merge.to_json(custom)
    with pytest.raises(KeyError):
        merge.to_json("nope")
    with pytest.raises(KeyError):
        merge.from_json({"name": "nope"})
    for bad in (
        {},
        {"name": 3},
        {"name": "upsert_within", "tolerance": "1s"},
        {"name": "upsert_within", "tolerance": {"value": 1.5, "unit": "ms"}},
        {"name": "upsert_within", "tolerance": {"value": 1, "unit": "parsec"}},
        {"name": "upsert_within", "tolerance": -1.0},
    ):
        with pytest.raises(ValueError):
            merge.from_json(bad)
