"""Bit-for-bit round trips of every dtype through the Dataset <-> Arrow mapping."""

from __future__ import annotations

from typing import Any

import numpy
import pyarrow as pa
import pytest
import zcollection_proto as zp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zcollection.data import Dataset, Variable
from zcollection.schema import DatasetSchema, SchemaBuilder
from zcollection_proto import _elements

TIME_UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]

DTYPES = [
    "|b1",
    "|i1",
    "<i2",
    "<i4",
    "<i8",
    "|u1",
    "<u2",
    "<u4",
    "<u8",
    "<f2",
    "<f4",
    "<f8",
    "<c8",
    "<c16",
    *(f"<M8[{unit}]" for unit in TIME_UNITS),
    *(f"<m8[{unit}]" for unit in TIME_UNITS),
    "<M8[15s]",
    "<m8[250ms]",
    "|S1",
    "|S7",
    "<U1",
    "<U5",
    ">i2",
    ">u8",
    ">f4",
    ">f8",
    ">c8",
    ">M8[ns]",
    ">m8[D]",
    ">U3",
]

#: Variables of the generated datasets: key -> dimensions ("time" is the axis).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "v1": ("time",),
    "v2": ("time", "x"),
    "v3": ("x", "time"),
    "v4": ("time", "x", "y"),
    "grp/sub/v5": ("x", "time", "y"),
    "grp/v6": ("y", "x", "time"),
    "imm1": ("x",),
    "imm0": (),
    "grp/imm2": ("y", "x"),
}
PARTITIONED = [key for key, dims in LAYOUTS.items() if "time" in dims]
IMMUTABLE = [key for key, dims in LAYOUTS.items() if "time" not in dims]

FILL_VALUES: dict[str, Any] = {
    "b": True,
    "i": 1,
    "u": 1,
    "f": float("nan"),
    "c": complex(float("nan"), 0.0),
    "M": "NaT",
    "m": "NaT",
    "S": b"z",
    "U": "\u00e9",
}


def _uint(size: int, dtype: numpy.dtype[Any]) -> numpy.dtype[Any]:
    order = dtype.byteorder if dtype.byteorder in "<>" else "<"
    return numpy.dtype(f"{order}u{size}")


def _special_elements(dtype: numpy.dtype[Any]) -> list[bytes]:
    """Bit patterns worth testing for ``dtype``: NaN payloads, NaT, infinities, -0."""
    kind, size = dtype.kind, dtype.itemsize
    patterns: dict[int, list[int]] = {
        2: [0x7E00, 0x7D01, 0xFE00, 0x7C00, 0x8000],
        4: [0x7FC00000, 0x7F800001, 0xFFC00001, 0x7FFFFFFF, 0x80000000],
        8: [0x7FF8000000000000, 0x7FF0000000000001, 0xFFF8DEAD0000BEEF, 0x8000000000000000],
    }
    if kind in "fmM" and size in patterns:
        return [numpy.array(p, dtype=_uint(size, dtype)).tobytes() for p in patterns[size]]
    if kind == "c" and size // 2 in patterns:
        half = [
            numpy.array(p, dtype=_uint(size // 2, dtype)).tobytes() for p in patterns[size // 2]
        ]
        return [a + b for a in half for b in half[:2]]
    return []


def elements(dtype: numpy.dtype[Any]) -> st.SearchStrategy[bytes]:
    """The raw bytes of one element of ``dtype``."""
    if dtype.kind == "b":
        return st.sampled_from([b"\x00", b"\x01"])
    raw = st.binary(min_size=dtype.itemsize, max_size=dtype.itemsize)
    options = [raw]
    specials = _special_elements(dtype)
    if specials:
        options.append(st.sampled_from(specials))
    if dtype.kind == "U":
        width = dtype.itemsize // 4
        chars = st.integers(0, 0x10FFFF).map(chr)  # NUL and lone surrogates included
        text = st.text(alphabet=chars, max_size=width)
        options.append(text.map(lambda s: numpy.array(s, dtype=dtype).tobytes()))
    if dtype.kind == "S":
        options.append(
            st.binary(max_size=dtype.itemsize).map(lambda b: numpy.array(b, dtype=dtype).tobytes())
        )
    return st.one_of(options)


@st.composite
def arrays(draw: st.DrawFn, dtype: numpy.dtype[Any], shape: tuple[int, ...]) -> Any:
    count = int(numpy.prod(shape, dtype=numpy.int64))
    items = draw(st.lists(elements(dtype), min_size=count, max_size=count))
    return numpy.frombuffer(b"".join(items), dtype=dtype, count=count).reshape(shape).copy()


def build_schema(dtype: numpy.dtype[Any], nx: int, ny: int, fill: bool) -> DatasetSchema:
    builder = (
        SchemaBuilder()
        .with_dimension("time", chunks=16)
        .with_dimension("x", size=nx)
        .with_dimension("y", size=ny)
        .with_attribute("title", "round trip")
        .with_group("/grp", attrs={"level": 1})
    )
    for key, dims in LAYOUTS.items():
        group, _, name = key.rpartition("/")
        builder.with_variable(
            name,
            dtype=dtype,
            dimensions=dims,
            fill_value=FILL_VALUES.get(dtype.kind, float("nan")) if fill else None,
            attrs={"key": key, "scale": 0.5},
            group="/" + group if group else None,
        )
    return builder.build()


@st.composite
def datasets(draw: st.DrawFn, dtype: numpy.dtype[Any], max_rows: int = 5) -> Dataset:
    rows = draw(st.integers(0, max_rows))
    nx = draw(st.integers(1, 3))
    ny = draw(st.integers(1, 2))
    schema = build_schema(dtype, nx, ny, draw(st.booleans()))
    sizes = {"time": rows, "x": nx, "y": ny}
    known = schema.all_variables()
    variables = {}
    for key, dims in LAYOUTS.items():
        data = draw(arrays(dtype, tuple(sizes[d] for d in dims)))
        variables[key] = Variable(known["/" + key], data)
    return Dataset(schema, variables)


def ipc(table: pa.Table) -> pa.Table:
    """Send ``table`` through an Arrow IPC stream (what Flight does)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def assert_same_bits(expected: Dataset, actual: Dataset, keys: list[str]) -> None:
    assert sorted(actual.all_variables()) == sorted(keys)
    for key in keys:
        want = numpy.asarray(expected[key].data)
        got = actual[key].data
        assert isinstance(got, numpy.ndarray)
        assert got.dtype == want.dtype, key
        assert got.dtype.str == want.dtype.str, key
        assert got.shape == want.shape, key
        assert got.tobytes() == want.tobytes(), key
        assert got.flags.writeable and got.flags.c_contiguous
        assert actual[key].schema == expected[key].schema


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_is_bit_for_bit(dtype: str, data: st.DataObject) -> None:
    ds = data.draw(datasets(numpy.dtype(dtype)))
    table = ipc(zp.dataset_to_table(ds, axis="time"))
    assert table.column_names == ["v1", "v2", "v3", "v4", "grp/v6", "grp/sub/v5"]
    back = zp.table_to_dataset(table)
    assert_same_bits(ds, back, PARTITIONED)
    assert back.schema == ds.schema.select(PARTITIONED)
    assert back.attrs == {"title": "round trip"}
    assert back.get_group("/grp").attrs == {"level": 1}

    immutable = ipc(zp.immutable_to_table(ds, axis="time"))
    assert immutable.num_rows == 1
    assert_same_bits(ds, zp.immutable_from_table(immutable), IMMUTABLE)
    assert_same_bits(ds, zp.table_to_dataset(immutable), IMMUTABLE)

    assert table.schema.equals(zp.arrow_schema(ds.schema, axis="time"), check_metadata=True)
    assert immutable.schema.equals(
        zp.immutable_arrow_schema(ds.schema, axis="time"), check_metadata=True
    )


@pytest.mark.parametrize("dtype", ["<f8", "<M8[ns]", "<m8[as]", "<U3", "|S4", "<c8"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batches_are_capped_zero_copy_and_reassemble(dtype: str, data: st.DataObject) -> None:
    ds = data.draw(datasets(numpy.dtype(dtype), max_rows=40))
    max_bytes = data.draw(st.integers(1, 2_000))
    whole = zp.dataset_to_table(ds, axis="time")
    batches = list(zp.dataset_to_batches(ds, axis="time", max_bytes=max_bytes))
    assert batches
    assert sum(b.num_rows for b in batches) == whole.num_rows
    for batch in batches:
        assert batch.schema.equals(whole.schema, check_metadata=True)
        assert batch.nbytes <= max_bytes or batch.num_rows == 1
    if len(batches) > 1:
        # Zero-copy: every batch slices the same buffers.
        first = batches[0].column(0)
        addresses = {b.column(0).buffers()[-1].address for b in batches}
        assert addresses == {first.buffers()[-1].address}
    assert_same_bits(ds, zp.batches_to_dataset(whole.schema, batches), PARTITIONED)
    # As a Flight stream delivers them: each batch read back from IPC.
    received = [ipc(pa.Table.from_batches([b])) for b in batches]
    assert_same_bits(ds, zp.batches_to_dataset(received[0].schema, received), PARTITIONED)


def test_nat_travels_as_null_and_comes_back() -> None:
    for unit in TIME_UNITS:
        schema = (
            SchemaBuilder()
            .with_dimension("time")
            .with_variable("t", dtype=f"M8[{unit}]", dimensions=("time",))
            .with_variable("d", dtype=f"m8[{unit}]", dimensions=("time",))
            .build()
        )
        t = numpy.array([0, numpy.iinfo(numpy.int64).min, 7], dtype="i8").view(f"M8[{unit}]")
        d = t.view(f"m8[{unit}]")
        ds = Dataset(
            schema,
            {"t": Variable(schema.variables["t"], t), "d": Variable(schema.variables["d"], d)},
        )
        table = zp.dataset_to_table(ds, axis="time")
        assert table.column("t").null_count == 1
        assert table.column("d").null_count == 1
        if unit in ("s", "ms", "us", "ns"):
            assert table.schema.field("t").type == pa.timestamp(unit)
            assert table.schema.field("d").type == pa.duration(unit)
        else:
            assert table.schema.field("t").type == pa.int64()
            assert table.schema.field("t").metadata[b"zcollection.dtype"] == f"<M8[{unit}]".encode()
        back = zp.table_to_dataset(ipc(table))
        assert back["t"].data.tobytes() == t.tobytes()
        assert back["d"].data.tobytes() == d.tobytes()
        assert numpy.isnat(back["t"].data[1])


def _schema_with(dtype: str, dims: tuple[str, ...], sizes: dict[str, int | None]) -> DatasetSchema:
    builder = SchemaBuilder()
    for name, size in sizes.items():
        builder.with_dimension(name, size=size)
    return builder.with_variable("v", dtype=dtype, dimensions=dims).build()


def test_complex_is_a_tensor_of_real_imaginary_pairs() -> None:
    schema = _schema_with("c16", ("time",), {"time": None})
    data = numpy.array([1 + 2j, -3.5 - 0j], dtype="c16")
    table = zp.dataset_to_table(
        Dataset(schema, {"v": Variable(schema.variables["v"], data)}), axis="time"
    )
    field = table.schema.field("v")
    assert isinstance(field.type, pa.FixedShapeTensorType)
    assert field.type.value_type == pa.float64()
    assert field.type.shape == [2]
    assert field.type.dim_names == ["complex"]
    assert field.metadata[b"zcollection.encoding"] == b"complex"
    assert table.column("v").combine_chunks().to_numpy_ndarray().tolist() == [
        [1.0, 2.0],
        [-3.5, -0.0],
    ]


def test_strings_are_raw_fixed_width_buffers() -> None:
    schema = (
        SchemaBuilder()
        .with_dimension("time")
        .with_variable("s", dtype="S4", dimensions=("time",))
        .with_variable("u", dtype="<U3", dimensions=("time",))
        .build()
    )
    s = numpy.array([b"a\x00b", b"", b"abcd"], dtype="S4")
    u = numpy.array(["\x00x", "\U0001f600\u00e9", ""], dtype="<U3")
    ds = Dataset(
        schema, {"s": Variable(schema.variables["s"], s), "u": Variable(schema.variables["u"], u)}
    )
    table = zp.dataset_to_table(ds, axis="time")
    assert table.schema.field("s").type == pa.binary(4)
    assert table.schema.field("u").type == pa.binary(12)
    assert table.column("s").to_pylist() == [b"a\x00b\x00", b"\x00" * 4, b"abcd"]
    assert table.column("u").to_pylist()[1].decode("utf-32-le") == "\U0001f600\u00e9\x00"
    back = zp.table_to_dataset(table)
    assert back["s"].data.tobytes() == s.tobytes()
    assert back["s"].data.dtype == numpy.dtype("S4")
    assert back["u"].data.tolist() == u.tolist()


def test_transposed_and_3d_variables() -> None:
    schema = (
        SchemaBuilder()
        .with_dimension("time")
        .with_dimension("x", size=3)
        .with_dimension("y", size=2)
        .with_variable("a", dtype="i4", dimensions=("x", "time", "y"))
        .with_variable("b", dtype="f4", dimensions=("time", "x", "y"))
        .build()
    )
    a = numpy.arange(3 * 4 * 2, dtype="i4").reshape(3, 4, 2)
    b = numpy.arange(4 * 3 * 2, dtype="f4").reshape(4, 3, 2)
    ds = Dataset(
        schema, {"a": Variable(schema.variables["a"], a), "b": Variable(schema.variables["b"], b)}
    )
    table = zp.dataset_to_table(ds, axis="time")
    assert table.num_rows == 4
    field = table.schema.field("a")
    assert field.type.shape == [3, 2]
    assert field.type.dim_names == ["x", "y"]
    assert field.metadata[b"zcollection.dimensions"] == b'["x","time","y"]'
    rows = table.column("a").combine_chunks().to_numpy_ndarray()
    assert numpy.array_equal(rows, numpy.moveaxis(a, 1, 0))
    assert table.schema.field("b").type.shape == [3, 2]
    back = zp.table_to_dataset(table)
    assert numpy.array_equal(back["a"].data, a)
    assert back["a"].dimensions == ("x", "time", "y")
    assert numpy.array_equal(back["b"].data, b)


def test_other_dtypes_travel_as_raw_bytes() -> None:
    """A dtype without an Arrow type (long double, if the engine ever stores one) stays exact."""
    for dtype in (numpy.dtype(numpy.longdouble), numpy.dtype(numpy.clongdouble)):
        if dtype.itemsize <= 8 or (dtype.kind == "c" and dtype.itemsize <= 16):
            continue
        codec = _elements.element_codec(dtype)
        assert codec.encoding == _elements.RAW
        assert codec.value_type == pa.binary(dtype.itemsize)
        raw = numpy.random.default_rng(0).integers(0, 256, size=5 * dtype.itemsize, dtype="u1")
        data = raw.view(dtype)
        values, invalid = _elements.from_arrow(_elements.to_arrow(data, codec).slice(1), codec, "v")
        assert invalid is None
        assert values.tobytes() == data[1:].tobytes()
