"""Unit tests of the schema layer (builder, groups, JSON, selection, partition axis), the error
tree and the process-wide settings."""

from __future__ import annotations

import inspect
import json
from typing import Any

import numpy
import pytest
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection import errors
from zcollection.errors import FormatVersionError, SchemaError

# -- helpers ----------------------------------------------------------------------------------


def _nested() -> zc.DatasetSchema:
    """Root ``time`` axis, ``/data_01`` with attrs, ``/data_01/ku`` declaring ``range``."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=4096)
        .with_dimension("x_ac", size=240, chunks=120)
        .with_attribute("title", "nested")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",))
        .with_group("/data_01", attrs={"mission": "demo"})
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .with_dimension("range", size=16, chunks=8, group="/data_01/ku")
        .with_attribute("band", "Ku", group="/data_01/ku")
        .with_variable(
            "power",
            dtype="float32",
            dimensions=("time", "range"),
            fill_value=numpy.float32("nan"),
            group="/data_01/ku",
        )
        .with_variable("gain", dtype="float64", dimensions=("range",), group="/data_01/ku")
        .build()
    )


def _same_scalar(a: Any, b: Any) -> bool:
    """Equality of two numpy scalars that treats NaN == NaN and NaT == NaT."""
    if a is None or b is None:
        return a is None and b is None
    a, b = numpy.asarray(a), numpy.asarray(b)
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind in "mM":
        return bool(numpy.isnat(a) == numpy.isnat(b) and (numpy.isnat(a) or a == b))
    if a.dtype.kind in "fc":
        return bool(numpy.array_equal(a, b, equal_nan=True))
    return bool(a == b)


# -- builder ----------------------------------------------------------------------------------


def test_builder_methods_return_the_same_builder() -> None:
    builder = zc.Schema()
    assert isinstance(builder, zc.SchemaBuilder)
    assert builder.with_dimension("time") is builder
    assert builder.with_variable("t", dtype="int64", dimensions=("time",)) is builder
    assert builder.with_attribute("a", 1) is builder
    assert builder.with_group("/g", attrs={"b": 2}) is builder
    schema = builder.build()
    assert isinstance(schema, zc.DatasetSchema)
    assert schema.name == "/"
    assert schema.attrs == {"a": 1}
    assert schema.groups["g"].attrs == {"b": 2}


def test_builder_declares_nested_groups_lazily_and_inherits_dimensions() -> None:
    schema = _nested()
    assert list(schema.groups) == ["data_01"]
    data_01 = schema.groups["data_01"]
    assert data_01.name == "data_01"
    assert data_01.attrs == {"mission": "demo"}
    ku = schema.get_group("/data_01/ku")
    assert ku.attrs == {"band": "Ku"}
    assert ku.dimensions["range"] == zc.Dimension("range", size=16, chunks=8)
    # ``time`` is declared on the root only: the ku variable inherits it
    assert "time" not in ku.dimensions
    assert ku.variables["power"].dimensions == ("time", "range")


def test_builder_relative_and_absolute_group_paths_are_the_same_group() -> None:
    schema = (
        zc.Schema()
        .with_dimension("x", size=2)
        .with_variable("a", dtype="i4", dimensions=("x",), group="g/h")
        .with_variable("b", dtype="i4", dimensions=("x",), group="/g/h/")
        .build()
    )
    assert list(schema.get_group("/g/h").variables) == ["a", "b"]


def test_dimensions_argument_may_be_a_single_string() -> None:
    schema = zc.Schema().with_dimension("x").with_variable("v", dtype="f8", dimensions="x").build()
    assert schema.variables["v"].dimensions == ("x",)


@pytest.mark.parametrize(
    ("dims_at", "used_at"),
    [
        (None, None),  # nowhere
        ("/a", "/b"),  # a sibling's dimension is not visible
        ("/a", None),  # a child's dimension is not visible from the root
        ("/a/b", "/a"),  # nor from its parent
    ],
)
def test_variable_using_an_invisible_dimension_is_a_schema_error(
    dims_at: str | None, used_at: str | None
) -> None:
    builder = zc.Schema()
    if dims_at is not None:
        builder.with_dimension("r", size=3, group=dims_at)
    if used_at is not None:
        builder.with_group(used_at)
    builder.with_variable("v", dtype="f4", dimensions=("r",), group=used_at)
    with pytest.raises(SchemaError, match="'r'"):
        builder.build()


def test_dimension_declared_on_a_grand_parent_is_visible() -> None:
    schema = (
        zc.Schema()
        .with_dimension("r", size=3, group="/a")
        .with_variable("v", dtype="f4", dimensions=("r",), group="/a/b/c")
        .build()
    )
    assert "/a/b/c/v" in schema.all_variables()


def test_duplicate_names_are_schema_errors() -> None:
    with pytest.raises(SchemaError):
        zc.Schema().with_dimension("x").with_dimension("x")
    with pytest.raises(SchemaError):
        zc.Schema().with_dimension("x", group="g").with_dimension("x", group="/g")
    builder = zc.Schema().with_dimension("x").with_variable("v", dtype="i1", dimensions="x")
    with pytest.raises(SchemaError):
        builder.with_variable("v", dtype="f8", dimensions="x")
    # a name is either a variable or a group, never both
    with pytest.raises(SchemaError):
        builder.with_group("/v")
    with pytest.raises(SchemaError):
        builder.with_variable("w", dtype="i1", dimensions="x", group="/v/sub")
    builder.with_group("/g")
    with pytest.raises(SchemaError):
        builder.with_variable("g", dtype="i1", dimensions="x")
    # the same dimension name in two groups is allowed (each group scopes its own)
    zc.Schema().with_dimension("x", size=1, group="a").with_dimension("x", size=2, group="b")


def test_duplicates_given_directly_to_the_immutable_classes_are_schema_errors() -> None:
    x = zc.Dimension("x")
    with pytest.raises(SchemaError, match="duplicate"):
        zc.GroupSchema(name="g", dimensions=[x, zc.Dimension("x", size=2)])
    var = zc.VariableSchema("v", "f4", ("x",))
    with pytest.raises(SchemaError, match="duplicate"):
        zc.DatasetSchema(dimensions=[x], variables=[var, var])
    with pytest.raises(SchemaError):
        zc.DatasetSchema(dimensions=[x], variables=[var], groups=[zc.GroupSchema(name="v")])
    with pytest.raises(SchemaError):  # mapping key disagrees with the item's own name
        zc.DatasetSchema(dimensions={"y": x})


@pytest.mark.parametrize(
    "dtype",
    [
        object,
        "O",
        [("a", "f4"), ("b", "i4")],
        ("f4", (2,)),
        "V8",
        "datetime64",
        "M8",
        "timedelta64",
        "m8",
        "U",
        "S",
        "no-such-dtype",
    ],
    ids=repr,
)
def test_invalid_dtypes_are_schema_errors(dtype: Any) -> None:
    with pytest.raises(SchemaError):
        zc.Schema().with_dimension("x").with_variable("v", dtype=dtype, dimensions=("x",))
    with pytest.raises(SchemaError):
        zc.VariableSchema.from_json({"name": "v", "dtype": str(dtype), "dimensions": ["x"]})


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", "<f4"),
        ("datetime64[ns]", "<M8[ns]"),
        ("timedelta64[s]", "<m8[s]"),
        ("U16", "<U16"),
        ("S3", "|S3"),
        (bool, "|b1"),
        (numpy.uint64, "<u8"),
        ("complex64", "<c8"),
    ],
)
def test_dtype_is_serialised_as_numpy_dtype_str(dtype: Any, expected: str) -> None:
    var = zc.VariableSchema("v", dtype, ("x",))
    assert var.dtype == numpy.dtype(dtype)
    assert var.to_json()["dtype"] == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": "i1", "fill_value": 1000},  # overflow
        {"dtype": "u2", "fill_value": -1},  # overflow
        {"dtype": "f4", "fill_value": "abc"},  # not a number
        {"dtype": "M8[ns]", "fill_value": "not a date"},
    ],
)
def test_fill_value_that_does_not_fit_the_dtype_is_a_schema_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        zc.VariableSchema("v", dimensions=("x",), **kwargs)


def test_variable_validation() -> None:
    with pytest.raises(SchemaError):
        zc.VariableSchema("v", "f4", ("x", "x"))  # repeated dimension
    for bad in ("", "a/b", ".", "..", "a\x00b"):
        with pytest.raises(SchemaError):
            zc.VariableSchema(bad, "f4", ("x",))
        with pytest.raises(SchemaError):
            zc.VariableSchema("v", "f4", (bad,))
    with pytest.raises(SchemaError):
        zc.VariableSchema("v", "f4", ("x",), attrs={"a": object()})
    with pytest.raises(SchemaError):
        zc.VariableSchema("v", "f4", ("x",), codecs={"name": "zstd"})  # type: ignore[arg-type]


def test_group_attributes_must_be_json_data() -> None:
    builder = zc.Schema().with_attribute("when", object())
    with pytest.raises(SchemaError):
        builder.build()
    with pytest.raises(SchemaError):
        zc.GroupSchema(name="g", attrs={"a": {1, 2}})


def test_attributes_are_stored_as_plain_json() -> None:
    schema = (
        zc.Schema()
        .with_dimension("x")
        .with_attribute("n", numpy.int32(3))
        .with_variable(
            "v",
            dtype="f4",
            dimensions="x",
            attrs={"scale": numpy.float32(0.5), "a": numpy.arange(3)},
        )
        .build()
    )
    payload = json.loads(json.dumps(schema.to_json(), allow_nan=False))
    assert payload["attrs"] == {"n": 3}
    assert payload["variables"][0]["attrs"] == {"scale": 0.5, "a": [0, 1, 2]}


def test_group_path_with_dot_components_is_rejected() -> None:
    for path in ("/a/../b", "./a", "/a/."):
        with pytest.raises(SchemaError):
            zc.Schema().with_group(path)
    with pytest.raises(SchemaError):
        zc.Schema().with_group("/")


# -- Dimension -----------------------------------------------------------------------------


def test_dimension_json_round_trip() -> None:
    dim = zc.Dimension("time", size=10, chunks=5, shards=10)
    assert dim.to_json() == {"name": "time", "size": 10, "chunks": 5, "shards": 10}
    assert zc.Dimension.from_json(dim.to_json()) == dim
    assert zc.Dimension.from_json({"name": "t"}) == zc.Dimension("t")
    assert zc.Dimension("t").to_json() == {
        "name": "t",
        "size": None,
        "chunks": None,
        "shards": None,
    }
    assert json.loads(json.dumps(dim.to_json())) == dim.to_json()


def test_dimension_numpy_integers_become_python_ints() -> None:
    dim = zc.Dimension("x", size=numpy.int64(4), chunks=numpy.uint8(2))
    assert type(dim.size) is int
    assert type(dim.chunks) is int
    assert json.dumps(dim.to_json())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": -1},
        {"size": 1.5},
        {"chunks": 0},
        {"shards": 0},
        {"chunks": "2"},
        {"chunks": 3, "shards": 4},  # shards must be a multiple of chunks
    ],
)
def test_invalid_dimension_is_a_schema_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        zc.Dimension("x", **kwargs)


@pytest.mark.parametrize("payload", [{"size": 3}, ["x"], {"name": "x", "size": "big"}])
def test_invalid_dimension_json_is_a_schema_error(payload: Any) -> None:
    with pytest.raises(SchemaError):
        zc.Dimension.from_json(payload)


# -- JSON ---------------------------------------------------------------------------------------


def test_schema_json_has_the_on_disk_shape() -> None:
    payload = _nested().to_json()
    assert set(payload) == {"name", "dimensions", "variables", "groups", "attrs", "format_version"}
    assert payload["name"] == "/"
    assert payload["format_version"] == 1
    assert payload["attrs"] == {"title": "nested"}
    assert [d["name"] for d in payload["dimensions"]] == ["time", "x_ac"]
    assert payload["dimensions"][1] == {"name": "x_ac", "size": 240, "chunks": 120, "shards": None}
    time = payload["variables"][0]
    assert set(time) == {
        "name",
        "dtype",
        "dimensions",
        "fill_value",
        "codecs",
        "attrs",
        "role",
        "immutable",
    }
    assert time["dtype"] == "<M8[ns]"
    assert time["dimensions"] == ["time"]
    assert time["role"] == "user"
    assert time["immutable"] is False
    assert time["codecs"] == zc.codecs.profile("cloud-balanced").to_json()
    (data_01,) = payload["groups"]
    assert data_01["name"] == "data_01"
    assert data_01["attrs"] == {"mission": "demo"}
    (ku,) = data_01["groups"]
    assert ku["name"] == "ku"
    assert ku["dimensions"] == [{"name": "range", "size": 16, "chunks": 8, "shards": None}]
    power = ku["variables"][0]
    assert power["fill_value"] == "NaN"
    # strict JSON: the non-finite fill value is a string
    json.dumps(payload, allow_nan=False)


def test_nested_schema_json_round_trip() -> None:
    schema = _nested().with_partition_axis("time")
    text = json.dumps(schema.to_json(), allow_nan=False)
    restored = zc.DatasetSchema.from_json(json.loads(text))
    assert restored == schema
    assert list(restored.all_variables()) == list(schema.all_variables())
    assert restored.get_group("/data_01/ku").attrs == {"band": "Ku"}
    assert restored.all_variables()["/data_01/ku/gain"].immutable is True
    assert restored.all_variables()["/data_01/ku/power"].immutable is False
    assert _same_scalar(
        restored.all_variables()["/data_01/ku/power"].fill_value, numpy.float32("nan")
    )


def test_format_version_missing_means_one_and_newer_is_refused() -> None:
    payload = _nested().to_json()
    del payload["format_version"]
    assert zc.DatasetSchema.from_json(payload).format_version == 1
    payload["format_version"] = 2
    with pytest.raises(FormatVersionError, match="2"):
        zc.DatasetSchema.from_json(payload)
    for bad in (0, -1, "1", 1.0, None):
        payload["format_version"] = bad
        with pytest.raises(SchemaError):
            zc.DatasetSchema.from_json(payload)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"variables": [{"name": "v"}]},  # no dtype
        {"variables": "abc"},
        {"dimensions": [3]},
        {"variables": [{"name": "v", "dtype": "f4", "dimensions": ["x"]}]},  # undeclared x
        {"variables": [{"name": "v", "dtype": "f4", "dimensions": [], "fill_value": "Nope"}]},
        {"variables": [{"name": "v", "dtype": "f4", "dimensions": [], "role": "boss"}]},
        {"variables": [{"name": "v", "dtype": "f4", "dimensions": [], "codecs": []}]},
    ],
)
def test_invalid_schema_json_is_a_schema_error(payload: Any) -> None:
    with pytest.raises(SchemaError):
        zc.DatasetSchema.from_json(payload)


def test_variable_json_defaults() -> None:
    var = zc.VariableSchema.from_json({"name": "v", "dtype": "<i4", "dimensions": ["x"]})
    assert var.fill_value is None
    assert var.role is zc.VariableRole.USER
    assert var.immutable is False
    assert var.attrs == {}
    assert var.codecs == zc.codecs.auto_codecs(var.dtype)


_UNITS = ["D", "h", "m", "s", "ms", "us", "ns"]
_INT64 = numpy.iinfo(numpy.int64)


@st.composite
def _dtype_and_fill(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["f", "c", "i", "u", "b", "M", "m", "U", "S"]))
    if kind == "f":
        size = draw(st.sampled_from([2, 4, 8]))
        return f"f{size}", draw(st.none() | st.floats(width=8 * size))  # type: ignore[arg-type]
    if kind == "c":
        size = draw(st.sampled_from([8, 16]))
        return f"c{size}", draw(st.none() | st.complex_numbers(width=8 * size))
    if kind in "iu":
        size = draw(st.sampled_from([1, 2, 4, 8]))
        info = numpy.iinfo(f"{kind}{size}")
        return f"{kind}{size}", draw(st.none() | st.integers(int(info.min), int(info.max)))
    if kind == "b":
        return "?", draw(st.none() | st.booleans())
    if kind in "mM":
        dtype = f"{kind}8[{draw(st.sampled_from(_UNITS))}]"
        value = draw(st.none() | st.just("NaT") | st.integers(int(_INT64.min) + 1, int(_INT64.max)))
        if isinstance(value, int):
            return dtype, numpy.int64(value).view(dtype)
        if value == "NaT":
            nat = numpy.datetime64 if kind == "M" else numpy.timedelta64
            return dtype, nat("NaT", draw(st.sampled_from(_UNITS)))
        return dtype, None
    width = draw(st.integers(1, 8))
    if kind == "U":
        text = st.text(st.characters(blacklist_characters="\x00"), max_size=width)
        return f"U{width}", draw(st.none() | text)
    raw = st.binary(max_size=width).filter(lambda b: not b.endswith(b"\x00"))
    return f"S{width}", draw(st.none() | raw)


@settings(max_examples=300, deadline=None)
@given(_dtype_and_fill())
def test_variable_json_round_trip_keeps_dtype_and_fill_value(case: tuple[str, Any]) -> None:
    dtype, fill = case
    var = zc.VariableSchema(
        "v", dtype, ("x",), fill_value=fill, attrs={"k": [1, "a"]}, role=zc.VariableRole.AUX
    )
    # the fill value is normalised to a numpy scalar of the variable dtype
    expected = None if fill is None else numpy.asarray(fill).astype(dtype)[()]
    assert _same_scalar(var.fill_value, expected)
    payload = var.to_json()
    text = json.dumps(payload, allow_nan=False)  # strict JSON, even for NaN / inf / NaT
    restored = zc.VariableSchema.from_json(json.loads(text))
    assert restored.dtype == numpy.dtype(dtype)
    assert _same_scalar(restored.fill_value, var.fill_value)
    assert restored.dimensions == ("x",)
    assert restored.attrs == {"k": [1, "a"]}
    assert restored.role is zc.VariableRole.AUX
    assert restored.codecs == var.codecs
    assert restored == var


@pytest.mark.parametrize(
    ("dtype", "fill", "encoded"),
    [
        ("f4", float("nan"), "NaN"),
        ("f8", float("inf"), "Infinity"),
        ("f2", float("-inf"), "-Infinity"),
        ("f8", 1.5, 1.5),
        ("c8", complex(float("nan"), float("-inf")), ["NaN", "-Infinity"]),
        ("M8[ns]", numpy.datetime64("NaT", "s"), "NaT"),
        ("M8[ns]", "NaT", "NaT"),
        ("m8[ms]", numpy.timedelta64("NaT", "D"), "NaT"),
        ("M8[s]", numpy.datetime64("1970-01-01T00:00:10"), 10),
        ("M8[D]", numpy.datetime64("2020-01-01"), 18262),
        ("m8[s]", numpy.timedelta64(5, "s"), 5),
        ("i2", -1, -1),
        ("u8", 2**64 - 1, 2**64 - 1),
        ("?", True, True),
        ("U3", "ab", "ab"),
    ],
)
def test_fill_value_json_encoding(dtype: str, fill: Any, encoded: Any) -> None:
    var = zc.VariableSchema("v", dtype, ("x",), fill_value=fill)
    assert var.to_json()["fill_value"] == encoded
    assert _same_scalar(zc.VariableSchema.from_json(var.to_json()).fill_value, var.fill_value)


@st.composite
def _schemas(draw: st.DrawFn) -> zc.DatasetSchema:
    builder = zc.Schema().with_dimension("time", chunks=draw(st.none() | st.integers(1, 64)))
    builder.with_attribute("title", draw(st.text(max_size=5)))
    names = st.text("abcdefgh", min_size=1, max_size=3)
    paths = draw(st.lists(st.lists(names, max_size=3), max_size=4))
    used: set[tuple[str, ...]] = set()
    for i, parts in enumerate(paths):
        group = "/".join(f"g{p}" for p in parts) or None
        key = tuple(parts)
        if key not in used:
            used.add(key)
            builder.with_dimension(f"d{i}", size=draw(st.integers(0, 10)), group=group)
            dims = ("time", f"d{i}")
        else:
            dims = ("time",)
        dtype, fill = draw(_dtype_and_fill())
        builder.with_variable(f"v{i}", dtype=dtype, dimensions=dims, fill_value=fill, group=group)
    return builder.build()


@settings(max_examples=60, deadline=None)
@given(_schemas())
def test_dataset_schema_json_round_trip(schema: zc.DatasetSchema) -> None:
    restored = zc.DatasetSchema.from_json(json.loads(json.dumps(schema.to_json(), allow_nan=False)))
    assert restored == schema
    assert list(restored.all_variables()) == list(schema.all_variables())
    for path, var in schema.all_variables().items():
        other = restored.all_variables()[path]
        assert other.dtype == var.dtype
        assert _same_scalar(other.fill_value, var.fill_value)
    assert [g.name for g in restored.iter_groups()] == [g.name for g in schema.iter_groups()]
    assert restored.dim_chunks == schema.dim_chunks


# -- navigation ---------------------------------------------------------------------------


def test_all_variables_keys_are_absolute_paths_in_depth_first_order() -> None:
    assert list(_nested().all_variables()) == [
        "/time",
        "/x_ac",
        "/data_01/flag",
        "/data_01/ku/power",
        "/data_01/ku/gain",
    ]


def test_get_group_and_iter_groups() -> None:
    schema = _nested()
    assert schema.get_group("/") is schema
    assert schema.get_group("") is schema
    assert schema.get_group("data_01/ku") is schema.get_group("/data_01/ku")
    assert schema.get_group("/data_01").get_group("ku").name == "ku"
    for missing in ("/nope", "/data_01/nope", "/data_01/ku/power", "ku"):
        with pytest.raises(KeyError):
            schema.get_group(missing)
    assert [g.name for g in schema.iter_groups()] == ["data_01", "ku"]


def test_dim_sizes_is_root_only_and_dim_chunks_spans_the_tree() -> None:
    schema = _nested()
    assert schema.dim_sizes == {"time": None, "x_ac": 240}
    assert schema.dim_chunks == {"time": 4096, "x_ac": 120, "range": 8}


def test_variables_by_role() -> None:
    schema = _nested().with_partition_axis("time")
    assert [v.name for v in schema.variables_by_role()] == ["time", "x_ac"]
    assert [v.name for v in schema.variables_by_role(immutable=True)] == ["x_ac"]
    assert [v.name for v in schema.variables_by_role(immutable=False)] == ["time"]
    assert isinstance(schema.variables_by_role(), tuple)
    assert list(schema.all_variables_by_role()) == list(schema.all_variables())
    assert list(schema.all_variables_by_role(immutable=True)) == ["/x_ac", "/data_01/ku/gain"]
    assert list(schema.all_variables_by_role(immutable=False)) == [
        "/time",
        "/data_01/flag",
        "/data_01/ku/power",
    ]


def test_group_schema_with_group_inserts_a_copy() -> None:
    schema = _nested()
    extra = zc.GroupSchema(
        name="c",
        dimensions=[zc.Dimension("range_c", size=4)],
        variables=[zc.VariableSchema("power", "f4", ("time", "range_c"))],
        attrs={"band": "C"},
    )
    updated = schema.with_group("/data_01", extra)
    assert isinstance(updated, zc.DatasetSchema)
    assert "/data_01/c/power" in updated.all_variables()
    assert updated.get_group("/data_01/c").attrs == {"band": "C"}
    assert "/data_01/c/power" not in schema.all_variables()  # the original is untouched
    # intermediate groups are created
    deeper = schema.with_group("x/y", extra)
    assert "/x/y/c/power" in deeper.all_variables()
    # at the root
    assert "/c/power" in schema.with_group("/", extra).all_variables()
    # a group whose variables use an undeclared dimension is refused
    orphan = zc.GroupSchema(name="o", variables=[zc.VariableSchema("v", "f4", ("nope",))])
    with pytest.raises(SchemaError):
        schema.with_group("/", orphan)
    # a group cannot be inserted under a variable
    with pytest.raises(SchemaError):
        schema.with_group("/time", extra)


def test_variable_with_immutable_returns_a_copy() -> None:
    var = zc.VariableSchema("v", "f4", ("x",), fill_value=1.0, attrs={"a": 1})
    frozen = var.with_immutable(True)
    assert frozen.immutable is True
    assert var.immutable is False
    assert frozen.name == var.name
    assert frozen.dtype == var.dtype
    assert frozen.attrs == var.attrs
    assert frozen != var
    assert frozen.with_immutable(False) == var
    assert var.ndim == 1


def test_schemas_are_immutable() -> None:
    schema = _nested()
    with pytest.raises(AttributeError):
        schema.format_version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        schema.variables["time"].immutable = True  # type: ignore[misc]


# -- select -----------------------------------------------------------------------------------


def test_select_by_short_name_keeps_root_dimensions_and_prunes_empty_groups() -> None:
    schema = _nested()
    selected = schema.select(["time"])
    assert list(selected.all_variables()) == ["/time"]
    assert selected.groups == {}
    assert selected.dimensions == schema.dimensions
    assert selected.attrs == schema.attrs
    assert selected.select("time") == selected  # a single string is one name


def test_select_by_absolute_path() -> None:
    schema = _nested()
    selected = schema.select(["/data_01/ku/power", "/x_ac"])
    assert list(selected.all_variables()) == ["/x_ac", "/data_01/ku/power"]
    ku = selected.get_group("/data_01/ku")
    assert ku.dimensions == schema.get_group("/data_01/ku").dimensions
    assert ku.attrs == {"band": "Ku"}
    assert selected.get_group("/data_01").variables == {}  # kept: it leads to ku
    # the relative spelling of a path is accepted too
    assert schema.select(["data_01/flag"]).all_variables().keys() == {"/data_01/flag"}


def test_select_unknown_name_is_a_schema_error() -> None:
    schema = _nested()
    with pytest.raises(SchemaError, match="nope"):
        schema.select(["time", "nope"])
    with pytest.raises(SchemaError):
        schema.select(["power"])  # a short name resolves against the root only
    with pytest.raises(SchemaError):
        schema.select(["/data_01"])  # a group is not a variable


# -- with_partition_axis --------------------------------------------------------------------


def test_with_partition_axis_tags_every_variable_of_the_tree() -> None:
    schema = _nested()
    tagged = schema.with_partition_axis("time")
    assert isinstance(tagged, zc.DatasetSchema)
    flags = {path: v.immutable for path, v in tagged.all_variables().items()}
    assert flags == {
        "/time": False,
        "/x_ac": True,
        "/data_01/flag": False,
        "/data_01/ku/power": False,
        "/data_01/ku/gain": True,
    }
    # the original is not modified
    assert not any(v.immutable for v in schema.all_variables().values())
    # tagging is idempotent and keeps everything else
    assert tagged.with_partition_axis("time") == tagged
    assert tagged.get_group("/data_01/ku").attrs == {"band": "Ku"}
    assert tagged.format_version == schema.format_version


def test_with_partition_axis_unsets_a_stale_immutable_flag() -> None:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("n", size=3)
        .with_variable("a", dtype="i8", dimensions=("n",))
        .with_variable("b", dtype="i8", dimensions=("n",))
        .build()
    )
    tagged = schema.with_partition_axis("n")
    assert [v.immutable for v in tagged.variables.values()] == [False, False]


def test_with_partition_axis_requires_a_root_dimension() -> None:
    schema = _nested()
    with pytest.raises(SchemaError, match="range"):
        schema.with_partition_axis("range")  # declared on /data_01/ku only
    with pytest.raises(SchemaError):
        schema.with_partition_axis("nope")


def test_with_partition_axis_refuses_another_unbounded_dimension() -> None:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("time_20hz")
        .with_variable("time", dtype="M8[ns]", dimensions=("time",))
        .with_variable("v", dtype="f4", dimensions=("time_20hz",), group="/hf")
        .build()
    )
    with pytest.raises(SchemaError, match="time_20hz"):
        schema.with_partition_axis("time")


def test_with_partition_axis_resolves_dimensions_per_group() -> None:
    # two sibling groups both declare ``range``: sized in one, unbounded in the other
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("range", size=4, group="/ku")
        .with_dimension("range", group="/c")
        .with_variable("p", dtype="f4", dimensions=("time", "range"), group="/ku")
        .with_variable("p", dtype="f4", dimensions=("time", "range"), group="/c")
        .build()
    )
    with pytest.raises(SchemaError, match="/c/p"):
        schema.with_partition_axis("time")
    # the other way round: the unbounded declaration comes first in the tree
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("range", group="/c")
        .with_dimension("range", size=4, group="/ku")
        .with_variable("p", dtype="f4", dimensions=("range",), group="/ku")
        .build()
    )
    assert schema.with_partition_axis("time").all_variables()["/ku/p"].immutable is True


def test_with_partition_axis_a_child_may_size_an_unbounded_root_dimension() -> None:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("range")
        .with_dimension("range", size=8, group="/ku")
        .with_variable("p", dtype="f4", dimensions=("time", "range"), group="/ku")
        .build()
    )
    assert schema.with_partition_axis("time").all_variables()["/ku/p"].immutable is False


# -- errors -------------------------------------------------------------------------------------


def _error_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ZCollectionError)
    ]


def test_every_error_class_is_registered_under_a_unique_code() -> None:
    classes = _error_classes()
    assert len(classes) >= 13
    codes = [cls.code for cls in classes]  # type: ignore[attr-defined]
    assert len(set(codes)) == len(codes), codes
    assert set(errors.ERROR_CLASSES.values()) == set(classes)
    for code, cls in errors.ERROR_CLASSES.items():
        assert issubclass(cls, zc.ZCollectionError)
        assert cls.code == code
        assert isinstance(code, str) and code.isupper()
        assert getattr(zc, cls.__name__) is cls  # exported at the top level


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (zc.ExpressionError, ValueError),
        (zc.SchemaError, ValueError),
        (zc.PartitionError, ValueError),
        (zc.InvalidURLError, ValueError),
        (zc.CatalogDisabledError, RuntimeError),
        (zc.ConflictError, zc.StoreError),
        (zc.PartitionExistsError, zc.CollectionExistsError),
    ],
)
def test_error_hierarchy(cls: type[Exception], base: type[Exception]) -> None:
    assert issubclass(cls, base)
    assert issubclass(cls, zc.ZCollectionError)
    with pytest.raises(base):
        raise cls("boom")


def test_error_codes_are_stable() -> None:
    assert errors.ERROR_CLASSES["SCHEMA_ERROR"] is zc.SchemaError
    assert errors.ERROR_CLASSES["READ_ONLY"] is zc.ReadOnlyError
    assert errors.ERROR_CLASSES["FORMAT_VERSION"] is zc.FormatVersionError


# -- config -------------------------------------------------------------------------------------


def test_config_default_and_validation() -> None:
    zc.config.reset()
    assert zc.config["partition.concurrency"] == 8
    assert "partition.concurrency" in zc.config
    zc.config["partition.concurrency"] = 2
    assert zc.config["partition.concurrency"] == 2
    for bad in (0, -3, "4", 1.5, None):
        with pytest.raises(ValueError):
            zc.config["partition.concurrency"] = bad
    assert zc.config["partition.concurrency"] == 2  # a refused value changes nothing
    del zc.config["partition.concurrency"]
    assert zc.config["partition.concurrency"] == 8


def test_config_unknown_key() -> None:
    with pytest.raises(KeyError):
        zc.config["partition.concurency"] = 4
    with pytest.raises(KeyError):
        zc.config["no.such.key"]
    assert "partition.concurency" not in zc.config


def test_config_refuses_a_bool_concurrency() -> None:
    with pytest.raises(ValueError):
        zc.config["partition.concurrency"] = True
