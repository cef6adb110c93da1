"""Bit-exact round trips of every dtype the schema accepts, through a real collection.

Each dtype is stored as non-key variables of a collection partitioned by an integer ``cycle``
variable (Sequence): 1-D and 2-D variables along the axis and an immutable variable. Values
are compared as raw bytes, so NaN payloads, signed zeros and NaT count. One collection holds a
whole family of dtypes, and the full dtype matrix runs on the memory and local stores (every
array costs a few store round trips); a representative subset runs on every back-end of the
``backend`` fixture. Every assertion names the dtype it checks.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy
import pytest
import zcollection as zc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")
FAMILIES: dict[str, list[str]] = {
    "bool-int": ["bool"]
    + [f"int{n}" for n in (8, 16, 32, 64)]
    + [f"uint{n}" for n in (8, 16, 32, 64)],
    "float-complex": ["float16", "float32", "float64", "complex64", "complex128"],
    "datetime64": [f"datetime64[{u}]" for u in UNITS],
    "timedelta64": [f"timedelta64[{u}]" for u in UNITS],
    "strings": ["<U1", "<U5", "|S1", "|S6"],
}
ALL_DTYPES = [dtype for family in FAMILIES.values() for dtype in family]
#: Width of the non-axis dimension of the 2-D and immutable variables.
WIDTH = 3
_COUNTER = itertools.count()
#: Float bit patterns: negative quiet NaN with a payload, signaling NaN, negative zero.
NAN_PATTERNS = {
    2: [0xFE01, 0x7C01, 0x8000],
    4: [0xFFC00123, 0x7F800001, 0x80000000],
    8: [0xFFF8000000000123, 0x7FF0000000000001, 0x8000000000000000],
}

FAST = settings(
    max_examples=2,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fill_for(dtype: numpy.dtype[Any]) -> Any:
    """Return the fill value declared for ``dtype`` (NaN for floats, NaT for times)."""
    kind = dtype.kind
    if kind == "b":
        return True
    if kind == "i":
        return numpy.iinfo(dtype).min
    if kind == "u":
        return numpy.iinfo(dtype).max
    if kind == "f":
        return dtype.type("nan")
    if kind == "c":
        return dtype.type(complex(math.nan, -math.inf))
    if kind in "mM":
        return dtype.type("NaT", numpy.datetime_data(dtype)[0])
    if kind == "U":
        return "é€"[: dtype.itemsize // 4]
    return b"\xfe\xff"[: dtype.itemsize]


def as_bytes(value: Any, dtype: numpy.dtype[Any]) -> bytes:
    """Return the raw bytes of ``value`` stored as ``dtype``."""
    return numpy.asarray(value, dtype=dtype).tobytes()


def names(index: int) -> tuple[str, str, str]:
    """Return the names of the 1-D, 2-D and immutable variables of dtype number ``index``."""
    return f"v1_{index}", f"v2_{index}", f"imm_{index}"


def make_schema(dtypes: list[str], *, sharded: bool = False) -> zc.DatasetSchema:
    builder = (
        zc.Schema()
        .with_dimension("num", chunks=2)
        .with_dimension("x", size=WIDTH, chunks=1, shards=2 if sharded else None)
        .with_variable("cycle", dtype="int64", dimensions=("num",))
    )
    for index, dtype in enumerate(dtypes):
        dt = numpy.dtype(dtype)
        fill = fill_for(dt)
        v1, v2, imm = names(index)
        builder = (
            builder.with_variable(v1, dtype=dt, dimensions=("num",), fill_value=fill)
            .with_variable(v2, dtype=dt, dimensions=("num", "x"), fill_value=fill)
            .with_variable(imm, dtype=dt, dimensions=("x",), fill_value=fill)
        )
    return builder.build()


@st.composite
def arrays_of(draw: st.DrawFn, dtype: numpy.dtype[Any], shape: tuple[int, ...]) -> Any:
    """Draw an array of ``dtype``: raw bit patterns for numbers, any text for strings."""
    size = math.prod(shape)
    if dtype.kind == "U":
        text = st.text(
            alphabet=st.characters(exclude_categories=("Cs",)), max_size=dtype.itemsize // 4
        )
        values = draw(st.lists(text, min_size=size, max_size=size))
        return numpy.array(values, dtype).reshape(shape)
    raw = draw(st.binary(min_size=size * dtype.itemsize, max_size=size * dtype.itemsize))
    if dtype.kind == "b":
        return (numpy.frombuffer(raw, "u1") % 2).astype(bool).reshape(shape)
    array = numpy.frombuffer(raw, dtype).reshape(shape).copy()
    flat = array.reshape(-1)
    if dtype.kind in "mM" and size:
        flat[0] = dtype.type("NaT", numpy.datetime_data(dtype)[0])
    if dtype.kind in "fc" and size:
        width = dtype.itemsize if dtype.kind == "f" else dtype.itemsize // 2
        specials = numpy.array(NAN_PATTERNS[width], f"u{width}").view(f"f{width}")
        parts = flat.view(f"f{width}")
        count = min(len(specials), parts.size)
        parts[:count] = specials[:count]
    return array


def assert_same_bytes(got: Any, expected: Any, what: str) -> None:
    got, expected = numpy.ascontiguousarray(got), numpy.ascontiguousarray(expected)
    assert got.dtype == expected.dtype, what
    assert got.shape == expected.shape, what
    assert numpy.array_equal(got.view("u1"), expected.view("u1")), (what, got, expected)


def create(backend: Any, schema: zc.DatasetSchema) -> tuple[str, zc.Collection]:
    url = backend.url(f"dt{next(_COUNTER)}")
    col = zc.create_collection(
        url,
        schema=schema,
        axis="num",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="num"),
    )
    return url, col


def build(schema: zc.DatasetSchema, cycle: Any, values: dict[str, Any]) -> zc.Dataset:
    variables = [zc.Variable(schema.variables["cycle"], numpy.asarray(cycle, dtype="int64"))]
    variables += [zc.Variable(schema.variables[name], data) for name, data in values.items()]
    return zc.Dataset(schema, variables)


#: Backends of the full dtype matrix (the ``backend`` fixture, parametrised indirectly).
FAST_BACKENDS = pytest.mark.parametrize("backend", ["local", "memory"], indirect=True)
#: One dtype of every kind (extreme time units) for every back-end.
REPRESENTATIVE = [
    "bool",
    "uint64",
    "float16",
    "complex64",
    "datetime64[as]",
    "timedelta64[W]",
    "<U3",
    "|S2",
]


def draw_values(
    data: Any, dtypes: list[numpy.dtype[Any]], rows: int, *, one_d: bool
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for index, dt in enumerate(dtypes):
        v1, v2, imm = names(index)
        values[v2] = data.draw(arrays_of(dt, (rows, WIDTH)), label=f"{v2} {dt}")
        values[imm] = data.draw(arrays_of(dt, (WIDTH,)), label=f"{imm} {dt}")
        if one_d:
            values[v1] = data.draw(arrays_of(dt, (rows,)), label=f"{v1} {dt}")
    return values


def check_round_trip(
    backend: Any, dtypes: list[str], cycle: Any, values: dict[str, Any], *, sharded: bool
) -> None:
    """Insert ``values``, reopen, query everything and one partition; compare the bytes."""
    schema = make_schema(dtypes, sharded=sharded)
    if not any(name.startswith("v1_") for name in values):
        schema = schema.select(["cycle", *values])
    url, col = create(backend, schema)
    written = col.insert(build(schema, cycle, values))
    assert written == [f"cycle={c}" for c in sorted(set(cycle.tolist()))]

    result = zc.open_collection(url).query()
    assert result is not None
    order = numpy.argsort(cycle, kind="stable")  # key order, arrival order within a key
    assert_same_bytes(result["cycle"].to_numpy(), cycle[order], "cycle")
    for name, expected in values.items():
        what = f"{name} {dtypes[int(name.rsplit('_', 1)[1])]}"
        assert result[name].dtype == expected.dtype, what
        if name.startswith("imm_"):
            assert_same_bytes(result[name].to_numpy(), expected, what)
        else:
            assert_same_bytes(result[name].to_numpy(), expected[order], what)

    first = int(cycle[order][0])
    wanted = [name for name in values if name.startswith("v2_")]
    part = col.query(filters=f"cycle == {first}", variables=wanted)
    assert part is not None
    assert sorted(part.all_variables()) == sorted(wanted)
    for name in wanted:
        assert_same_bytes(part[name].to_numpy(), values[name][cycle == first], name)


@FAST_BACKENDS
@pytest.mark.parametrize("family", sorted(FAMILIES))
@FAST
@given(data=st.data())
def test_round_trip_is_bit_exact(backend, family, data):
    """2-D and immutable variables of every dtype; 1-D ones are in the fill-value test."""
    dtypes = [numpy.dtype(d) for d in FAMILIES[family]]
    cycle = numpy.array(
        data.draw(st.lists(st.integers(0, 1), min_size=1, max_size=6), label="cycle")
    )
    values = draw_values(data, dtypes, len(cycle), one_d=False)
    check_round_trip(backend, FAMILIES[family], cycle, values, sharded=False)


@settings(FAST, max_examples=1)
@given(data=st.data())
def test_every_backend_round_trips_every_kind_sharded(backend, data):
    dtypes = [numpy.dtype(d) for d in REPRESENTATIVE]
    cycle = numpy.array([1, -1, 1])
    values = draw_values(data, dtypes, len(cycle), one_d=False)
    check_round_trip(backend, REPRESENTATIVE, cycle, values, sharded=True)


def _sample(dt: numpy.dtype[Any], shape: tuple[int, ...]) -> Any:
    """Return deterministic values of ``dt`` (random bit patterns for numbers)."""
    size = math.prod(shape)
    if dt.kind == "U":
        return numpy.array(["ü", "x", "日本"] * size, dtype=dt)[:size].reshape(shape)
    raw = numpy.random.default_rng(7).integers(0, 256, size=size * dt.itemsize, dtype="u1")
    if dt.kind == "b":
        return (raw[:size] % 2).astype(bool).reshape(shape)
    return raw.view(dt).reshape(shape)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_fill_value_survives_reopen_and_fills_what_was_never_written(backend):
    """1-D variables of every dtype (2-D ones are in the round trip), immutables never written."""
    dtypes = [numpy.dtype(d) for d in ALL_DTYPES]
    schema = make_schema(ALL_DTYPES)
    schema = schema.select(
        ["cycle", *(n for i in range(len(dtypes)) for n in names(i) if not n.startswith("v2_"))]
    )
    cycle = [1, 1, 2, 2]
    values = {names(index)[0]: _sample(dt, (4,)) for index, dt in enumerate(dtypes)}
    url, col = create(backend, schema)
    col.insert(build(schema, cycle, values))  # the immutable variables are never written

    reopened = zc.open_collection(url, mode="rw")
    for index, dt in enumerate(dtypes):
        for name in (names(index)[0], names(index)[2]):
            var = reopened.schema.variables[name]
            assert var.dtype == dt, name
            assert var.fill_value is not None, name
            assert as_bytes(var.fill_value, dt) == as_bytes(fill_for(dt), dt), name

    # a partition rewritten without its partitioned variables reads them back as fill values
    assert reopened.update(lambda ds: ds.select(["cycle"]), filters="cycle == 2") == ["cycle=2"]
    result = zc.open_collection(url).query()
    assert result is not None
    for index, dt in enumerate(dtypes):
        v1, _, imm = names(index)
        fill = fill_for(dt)
        what = f"{dt} {v1}/{imm}"
        assert_same_bytes(result[v1].to_numpy()[:2], values[v1][:2], what)
        assert_same_bytes(result[v1].to_numpy()[2:], numpy.full(2, fill, dt), what)
        assert_same_bytes(result[imm].to_numpy(), numpy.full(WIDTH, fill, dt), what)


def test_chunks_equal_to_the_fill_value_keep_their_bits(backend):
    """Zarr skips chunks equal to the fill value; NaN payloads and -0j must not be lost."""
    schema = (
        zc.Schema()
        .with_dimension("num", chunks=1)
        .with_dimension("x", size=2, chunks=1, shards=2)
        .with_variable("cycle", dtype="int64", dimensions=("num",))
        .with_variable("f", dtype="float32", dimensions=("num",), fill_value=math.nan)
        .with_variable("c", dtype="complex64", dimensions=("num",), fill_value=0j)
        .with_variable("z", dtype="float64", dimensions=("num",), fill_value=0.0)
        .with_variable("s", dtype="float64", dimensions=("num", "x"), fill_value=math.nan)
        .build()
    )
    f = numpy.array([0x7FC00001, 0xFFC00000, 0x7FC00000], "u4").view("f4")
    c = numpy.array([complex(-0.0, 0.0), complex(0.0, -0.0), 0j], "c8")
    z = numpy.array([-0.0, 0.0, -0.0])
    s = numpy.array([0x7FF8000000000001, 0xFFF8000000000000] * 3, "u8").view("f8").reshape(3, 2)
    url, col = create(backend, schema)
    col.insert(build(schema, [0, 0, 0], {"f": f, "c": c, "z": z, "s": s}))
    result = zc.open_collection(url).query()
    assert result is not None
    for name, expected in {"f": f, "c": c, "z": z, "s": s}.items():
        assert_same_bytes(result[name].to_numpy(), expected, name)


def test_fill_values_are_json_in_the_config(tmp_path):
    """Non-finite floats are strings, NaT is "NaT"; every fill value survives the JSON text."""
    url = str(tmp_path / "all")
    zc.create_collection(
        url,
        schema=make_schema(ALL_DTYPES),
        axis="num",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="num"),
    )
    with open(f"{url}/_zcollection.json", encoding="utf-8") as stream:
        config = json.load(stream)
    by_name = {v["name"]: v for v in config["schema"]["variables"]}
    reopened = zc.open_collection(url)
    for index, dtype in enumerate(ALL_DTYPES):
        dt = numpy.dtype(dtype)
        v1 = by_name[names(index)[0]]
        assert v1["dtype"] == dt.str
        fill = v1["fill_value"]
        if dt.kind == "f":
            assert fill == "NaN"
        elif dt.kind == "c":
            assert fill == ["NaN", "-Infinity"]
        elif dt.kind in "mM":
            assert fill == "NaT"
        elif dt.kind == "U":
            assert fill == fill_for(dt)
        elif dt.kind in "iu":
            assert fill == int(fill_for(dt))
        elif dt.kind == "b":
            assert fill is True
        stored = reopened.schema.variables[names(index)[0]].fill_value
        assert as_bytes(stored, dt) == as_bytes(fill_for(dt), dt), dtype


@FAST_BACKENDS
@pytest.mark.parametrize("dtype", [">i4", ">f8", ">c8", ">M8[ns]", ">m8[s]", ">U3", "<M8[10ms]"])
def test_non_native_byte_order_and_unit_multiples_round_trip(backend, dtype):
    dt = numpy.dtype(dtype)
    schema = make_schema([dtype])
    v1, v2, imm = names(0)
    if dt.kind == "U":
        data = numpy.array([["a", "é", "€€€"], ["", "z", "ab"]], dtype=dt)
    else:
        data = numpy.arange(2 * WIDTH).astype(dt).reshape(2, WIDTH)
    url, col = create(backend, schema)
    col.insert(build(schema, [3, 1], {v1: data[:, 0], v2: data, imm: data[1]}))
    result = zc.open_collection(url).query()
    assert result is not None
    assert zc.open_collection(url).schema.variables[v2].dtype == dt
    # values are exact; the arrays may come back in native byte order
    native = dt.newbyteorder("=")
    got = result[v2].to_numpy()
    assert got.dtype in (dt, native)
    assert_same_bytes(got.astype(native), data[::-1].astype(native), v2)


@pytest.mark.parametrize(
    "dtype", ["object", "V8", "datetime64", "timedelta64", "<U0", "S0", "longdouble", "clongdouble"]
)
def test_unstorable_dtypes_are_rejected_by_the_schema(dtype):
    dt = numpy.dtype(dtype)
    if dtype in ("longdouble", "clongdouble") and dt.itemsize <= (8 if dt.kind == "f" else 16):
        pytest.skip("extended precision is plain double on this platform")
    with pytest.raises(zc.SchemaError):
        zc.Schema().with_dimension("n").with_variable("v", dtype=dtype, dimensions=("n",))
