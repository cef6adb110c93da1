"""Unit tests of the in-memory data model: Dataset, Group, Variable, repr and the xarray bridge."""

from __future__ import annotations

import dask.array as da
import numpy
import pytest
import xarray
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st

N = 5  # rows along ``time``
R = 3  # ``range`` (in /data_01/ku)
X = 2  # ``x_ac`` (root)


def _schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("x_ac", size=X)
        .with_attribute("title", "demo")
        .with_variable("time", dtype="int64", dimensions=("time",))
        .with_variable("ssh", dtype="float32", dimensions=("time", "x_ac"), attrs={"units": "m"})
        .with_group("/data_01", attrs={"mission": "m1"})
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .with_dimension("range", size=R, group="/data_01/ku")
        .with_attribute("band", "Ku", group="/data_01/ku")
        .with_variable(
            "power",
            dtype="float32",
            dimensions=("time", "range"),
            fill_value=numpy.float32("nan"),
            attrs={"units": "W"},
            group="/data_01/ku",
        )
        .with_dimension("range", size=R, group="/data_01/c")
        .with_variable("power", dtype="float64", dimensions=("time", "range"), group="/data_01/c")
        .build()
    )


def _arrays() -> dict[str, numpy.ndarray]:
    return {
        "time": numpy.arange(N, dtype="int64"),
        "ssh": numpy.arange(N * X, dtype="float32").reshape(N, X),
        "data_01/flag": numpy.arange(N, dtype="uint8"),
        "data_01/ku/power": numpy.arange(N * R, dtype="float32").reshape(N, R),
        "data_01/c/power": -numpy.arange(N * R, dtype="float64").reshape(N, R),
    }


def _dataset(schema: zc.DatasetSchema | None = None) -> zc.Dataset:
    schema = schema or _schema()
    by_path = schema.all_variables()
    return zc.Dataset(
        schema, {key: zc.Variable(by_path["/" + key], data) for key, data in _arrays().items()}
    )


def _var(dtype: str = "float32", dims: tuple[str, ...] = ("x",), **kw: object) -> zc.VariableSchema:
    return zc.VariableSchema("v", dtype, dims, **kw)  # type: ignore[arg-type]


# -- construction -----------------------------------------------------------------------------


def test_dataset_from_mapping_routes_paths_into_nested_groups() -> None:
    ds = _dataset()
    assert isinstance(ds, zc.Dataset)
    assert ds.name == "/"
    assert ds.parent is None
    assert ds.is_root()
    assert list(ds.variables) == ["time", "ssh"]
    assert list(ds.groups) == ["data_01"]
    data_01 = ds.groups["data_01"]
    assert data_01.parent is ds
    assert not data_01.is_root()
    assert list(data_01.variables) == ["flag"]
    assert list(data_01.groups) == ["ku", "c"]
    ku = data_01.groups["ku"]
    assert ku.long_name() == "/data_01/ku"
    assert ku.schema is ds.schema.get_group("/data_01/ku")
    # group attributes come from the schema
    assert ds.attrs == {"title": "demo"}
    assert data_01.attrs == {"mission": "m1"}
    assert ku.attrs == {"band": "Ku"}
    # the data is the very array given (no copy)
    assert ku.variables["power"].data is not None
    numpy.testing.assert_array_equal(ku.variables["power"].data, _arrays()["data_01/ku/power"])


def test_dataset_from_iterable_places_variables_at_the_root() -> None:
    schema = _schema()
    time = numpy.arange(N, dtype="int64")
    ds = zc.Dataset(schema, [zc.Variable(schema.variables["time"], time)], attrs={"a": 1})
    assert list(ds.variables) == ["time"]
    assert ds["time"].data is time
    assert ds.groups == {}
    assert ds.attrs == {"a": 1}  # explicit attrs win over the schema's


def test_dataset_leading_slash_keys_are_accepted() -> None:
    schema = _schema()
    power = schema.all_variables()["/data_01/ku/power"]
    ds = zc.Dataset(schema, {"/data_01/ku/power": zc.Variable(power, numpy.zeros((N, R), "f4"))})
    assert ds["data_01/ku/power"].shape == (N, R)


def test_dataset_duplicate_variable_is_a_value_error() -> None:
    schema = _schema()
    time = zc.Variable(schema.variables["time"], numpy.arange(N))
    with pytest.raises(ValueError, match="time"):
        zc.Dataset(schema, [time, time])


def test_dataset_with_pre_built_groups() -> None:
    schema = _schema()
    data_01 = zc.Group(schema.get_group("/data_01"), attrs={"mission": "custom"}, name="data_01")
    flag = zc.Variable(schema.all_variables()["/data_01/flag"], numpy.zeros(N, "u1"))
    data_01.add_variable(flag)
    ds = zc.Dataset(schema, groups=[data_01])
    assert ds.get_group("/data_01") is data_01
    assert data_01.parent is ds
    assert ds["/data_01/flag"] is flag
    assert data_01.attrs == {"mission": "custom"}


# -- navigation -------------------------------------------------------------------------------


def test_path_access_and_misses() -> None:
    ds = _dataset()
    power = ds["/data_01/ku/power"]
    assert power is ds.get_variable("/data_01/ku/power")
    assert power is ds.get_variable("data_01/ku/power")
    assert power.dtype == numpy.float32
    assert ds["time"] is ds.variables["time"]
    ku = ds.get_group("/data_01/ku")
    assert ku.get_variable("power") is power  # relative to the group
    assert ku.get_variable("/time") is ds["time"]  # absolute: from the root
    assert ku.get_group("/data_01") is ds.groups["data_01"]
    assert ds.get_group("/") is ds
    for missing in ("nope", "/data_01/nope", "/nope/power", "/data_01/ku", "/", ""):
        with pytest.raises(KeyError):
            ds.get_variable(missing)
    for missing in ("/nope", "/data_01/ku/power", "ku"):
        with pytest.raises(KeyError):
            ds.get_group(missing)
    assert "/data_01/ku/power" in ds
    assert "power" not in ds
    assert 3 not in ds


def test_find_variable_group_and_dimension() -> None:
    ds = _dataset()
    # depth first: ku comes before c, the root before any group
    assert ds.find_variable("power") is ds["/data_01/ku/power"]
    assert ds.find_variable("time") is ds["time"]
    assert ds.get_group("/data_01/c").find_variable("power") is ds["/data_01/c/power"]
    assert ds.find_variable("nope") is None
    assert ds.get_group("/data_01/ku").find_variable("time") is None  # searches down, not up
    assert ds.find_group("c") is ds.get_group("/data_01/c")
    assert ds.find_group("nope") is None
    assert ds.find_group("/") is None  # the subtree, self excluded
    ku = ds.get_group("/data_01/ku")
    # inheritance: ``time`` is declared on the root, ``range`` on ku
    assert ku.find_dimension("time") == zc.Dimension("time")
    assert ku.find_dimension("range") == zc.Dimension("range", size=R)
    assert ds.find_dimension("range") is None
    assert ku.find_dimension("nope") is None


def test_walk_and_iter_groups_are_depth_first() -> None:
    ds = _dataset()
    assert [path for path, _ in ds.walk()] == ["/", "/data_01", "/data_01/ku", "/data_01/c"]
    assert next(group for _, group in ds.walk()) is ds
    assert [g.long_name() for g in ds.iter_groups()] == ["/data_01", "/data_01/ku", "/data_01/c"]
    data_01 = ds.get_group("data_01")
    assert [path for path, _ in data_01.walk()] == ["/data_01", "/data_01/ku", "/data_01/c"]


def test_all_variables_keys() -> None:
    ds = _dataset()
    assert list(ds.all_variables()) == list(_arrays())
    assert ds.all_variables()["data_01/ku/power"] is ds["/data_01/ku/power"]
    # relative to the group it is called on
    assert list(ds.get_group("/data_01").all_variables()) == ["flag", "ku/power", "c/power"]
    # the keys can be passed back to Dataset
    again = zc.Dataset(ds.schema, ds.all_variables())
    assert list(again.all_variables()) == list(ds.all_variables())
    assert [p for p, _ in again.walk()] == [p for p, _ in ds.walk()]


def test_dimensions_come_from_the_groups_own_variables() -> None:
    ds = _dataset()
    assert ds.dimensions == {"time": N, "x_ac": X}
    assert ds.get_group("/data_01/ku").dimensions == {"time": N, "range": R}
    assert ds.get_group("/data_01").dimensions == {"time": N}


# -- sizes ------------------------------------------------------------------------------------


def test_nbytes_recurses_over_the_tree() -> None:
    ds = _dataset()
    expected = sum(a.nbytes for a in _arrays().values())
    assert ds.nbytes == expected
    assert ds.get_group("/data_01").nbytes == N * 1 + N * R * 4 + N * R * 8
    assert ds.get_group("/data_01/c").nbytes == N * R * 8
    assert ds["ssh"].nbytes == N * X * 4


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=0, max_size=3),
    st.sampled_from(["i1", "u2", "f4", "f8", "c16", "M8[s]", "U3", "S5", "?"]),
)
def test_variable_nbytes_matches_numpy(shape: list[int], dtype: str) -> None:
    dims = tuple(f"d{i}" for i in range(len(shape)))
    array = numpy.zeros(shape, dtype=dtype)
    var = zc.Variable(zc.VariableSchema("v", dtype, dims), array)
    assert var.nbytes == array.nbytes
    assert var.shape == tuple(shape)
    assert var.sizes == dict(zip(dims, shape, strict=True))
    lazy = zc.Variable(var.schema, da.from_array(array))
    assert lazy.nbytes == array.nbytes
    assert lazy.shape == tuple(shape)


def test_is_lazy() -> None:
    ds = _dataset()
    assert ds.is_lazy is False
    assert ds["time"].is_lazy is False
    lazy = zc.Variable(ds["/data_01/c/power"].schema, da.zeros((N, R), chunks=2))
    assert lazy.is_lazy is True
    ds.get_group("/data_01/c")._variables["power"] = lazy  # swap in a lazy variable deep down
    assert ds.get_group("/data_01/c").is_lazy is True
    assert ds.is_lazy is True  # walks descendants
    assert ds.get_group("/data_01/ku").is_lazy is False
    assert zc.Variable(_var(), None).is_lazy is True
    assert zc.Variable(_var(), [1.0, 2.0]).is_lazy is False  # array-likes become numpy


# -- structure edits --------------------------------------------------------------------------


def test_add_variable_checks_names_and_sizes() -> None:
    ds = _dataset()
    ssh2 = zc.VariableSchema("ssh2", "f4", ("time", "x_ac"))
    with pytest.raises(ValueError, match="time"):
        ds.add_variable(zc.Variable(ssh2, numpy.zeros((N + 1, X), "f4")))
    with pytest.raises(ValueError, match="x_ac"):
        ds.add_variable(zc.Variable(ssh2, numpy.zeros((N, X + 1), "f4")))
    assert "ssh2" not in ds.variables  # a refused variable is not registered
    with pytest.raises(ValueError, match="already exists"):
        ds.add_variable(zc.Variable(ds.schema.variables["time"], numpy.arange(N)))
    ds.add_variable(zc.Variable(ssh2, numpy.ones((N, X), "f4")))
    assert ds["ssh2"].shape == (N, X)
    # a placeholder has no size to disagree with
    ds.add_variable(zc.Variable(zc.VariableSchema("ph", "f4", ("time",)), None))
    assert ds["ph"].data is None
    # in a nested group, against that group's variables
    other = zc.VariableSchema("other", "f4", ("time", "range"))
    with pytest.raises(ValueError, match="range"):
        ds.get_group("/data_01/c").add_variable(zc.Variable(other, numpy.zeros((N, R + 1), "f4")))


def test_add_group_duplicate_is_a_value_error() -> None:
    ds = _dataset()
    with pytest.raises(ValueError, match="data_01"):
        ds.add_group(zc.Group(zc.GroupSchema(name="data_01"), name="data_01"))
    extra = zc.Group(zc.GroupSchema(name="extra"), name="extra")
    assert ds.add_group(extra) is extra
    assert extra.parent is ds
    assert extra.long_name() == "/extra"
    assert ds.get_group("/extra") is extra


def test_update_attributes_and_live_attrs() -> None:
    ds = _dataset()
    ds.update_attributes(title="new", version=2)
    assert ds.attrs == {"title": "new", "version": 2}
    ds.attrs["live"] = True  # the mapping is the group's own storage
    assert ds.attrs["live"] is True
    ku = ds.get_group("/data_01/ku")
    ku.update_attributes(extra=1)
    assert ku.attrs == {"band": "Ku", "extra": 1}
    # the schema is not touched
    assert ds.schema.attrs == {"title": "demo"}
    assert ds.schema.get_group("/data_01/ku").attrs == {"band": "Ku"}


def test_variable_attrs_is_a_copy() -> None:
    ds = _dataset()
    attrs = ds["ssh"].attrs
    assert attrs == {"units": "m"}
    attrs["units"] = "cm"
    attrs["new"] = 1
    assert ds["ssh"].attrs == {"units": "m"}
    assert ds["ssh"].schema.attrs == {"units": "m"}


# -- Variable ---------------------------------------------------------------------------------


def test_variable_properties() -> None:
    schema = _var("int16", ("a", "b"), fill_value=-1, attrs={"k": "v"})
    data = numpy.zeros((2, 3), "int16")
    var = zc.Variable(schema, data)
    assert var.name == "v"
    assert var.dimensions == ("a", "b")
    assert var.ndim == 2
    assert var.dtype == numpy.int16
    assert var.fill_value == -1
    assert var.shape == (2, 3)
    assert var.sizes == {"a": 2, "b": 3}
    assert var.data is data
    numpy.testing.assert_array_equal(numpy.asarray(var), data)


def test_variable_ndim_mismatch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="dimension"):
        zc.Variable(_var(dims=("x",)), numpy.zeros((2, 2)))
    with pytest.raises(ValueError):
        zc.Variable(_var(dims=("x", "y")), da.zeros(3))
    with pytest.raises(ValueError):
        zc.Variable(_var(dims=("x",)), 1.0)  # a scalar is 0-D
    with pytest.raises(TypeError):
        zc.Variable({"name": "v"}, numpy.zeros(2))  # type: ignore[arg-type]


def test_to_numpy_dispatch() -> None:
    data = numpy.arange(4.0)
    var = zc.Variable(_var("float64"), data)
    assert var.to_numpy() is data  # no copy
    lazy = zc.Variable(_var("float64"), da.from_array(data, chunks=2) * 2)
    result = lazy.to_numpy()
    assert isinstance(result, numpy.ndarray)
    numpy.testing.assert_array_equal(result, data * 2)
    listed = zc.Variable(_var("float64"), [1.0, 2.0, 3.0])
    result = listed.to_numpy()
    assert isinstance(result, numpy.ndarray)
    numpy.testing.assert_array_equal(result, [1.0, 2.0, 3.0])


def test_placeholder_variable() -> None:
    var = zc.Variable(_var(dims=("x", "y")), None)
    assert var.data is None
    assert var.shape == ()
    assert var.nbytes == 0
    assert var.is_lazy is True
    assert "placeholder" in repr(var)


def test_variable_isel() -> None:
    data = numpy.arange(12).reshape(3, 4)
    var = zc.Variable(_var("int64", ("a", "b")), data)
    numpy.testing.assert_array_equal(var.isel("b", slice(1, 3)).data, data[:, 1:3])
    numpy.testing.assert_array_equal(var.isel("a", numpy.array([2, 0])).data, data[[2, 0]])
    assert var.isel("other", slice(0, 1)) is var


# -- select / isel ----------------------------------------------------------------------------


def test_dataset_select() -> None:
    ds = _dataset()
    ds.update_attributes(extra="kept")
    ds.get_group("/data_01/ku").update_attributes(note="kept too")
    sub = ds.select(["ssh", "/data_01/ku/power"])
    assert sub.get_group("/data_01/ku").attrs == {"band": "Ku", "note": "kept too"}
    assert list(sub.all_variables()) == ["ssh", "data_01/ku/power"]
    assert sub["ssh"] is ds["ssh"]  # variables are shared, not copied
    assert list(sub.schema.all_variables()) == ["/ssh", "/data_01/ku/power"]
    assert "c" not in sub.schema.get_group("/data_01").groups  # empty groups are pruned
    assert "c" not in sub.get_group("/data_01").groups
    assert sub.attrs["extra"] == "kept"
    assert list(ds.select("time").all_variables()) == ["time"]
    with pytest.raises(zc.SchemaError):
        ds.select(["nope"])
    assert list(ds.all_variables()) == list(_arrays())  # the source is untouched


def test_dataset_isel() -> None:
    ds = _dataset()
    ds.get_group("/data_01/ku").update_attributes(note="kept")
    sub = ds.isel("time", slice(1, 4))
    assert sub.dimensions == {"time": 3, "x_ac": X}
    numpy.testing.assert_array_equal(sub["time"].data, [1, 2, 3])
    numpy.testing.assert_array_equal(
        sub["/data_01/ku/power"].data, _arrays()["data_01/ku/power"][1:4]
    )
    assert sub.get_group("/data_01/ku").attrs == {"band": "Ku", "note": "kept"}
    picked = ds.isel("time", numpy.array([4, 0]))
    numpy.testing.assert_array_equal(picked["/data_01/flag"].data, [4, 0])
    # a variable not spanning the dimension is kept as is
    only_x = ds.isel("x_ac", slice(0, 1))
    assert only_x["time"].data is ds["time"].data
    assert only_x["ssh"].shape == (N, 1)
    assert ds["time"].shape == (N,)  # the source is untouched


# -- repr -------------------------------------------------------------------------------------


def test_dataset_repr_is_size_aware() -> None:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("time", dtype="int64", dimensions=("time",))
        .with_variable("v", dtype="float32", dimensions=("time",), group="/g")
        .with_variable("w", dtype="float32", dimensions=("time",), group="/g/h")
        .build()
    )
    n = 256  # time: 2 kB, v: 1 kB, w: 1 kB
    all_vars = schema.all_variables()
    ds = zc.Dataset(
        schema,
        {
            "time": zc.Variable(all_vars["/time"], numpy.arange(n, dtype="int64")),
            "g/v": zc.Variable(all_vars["/g/v"], numpy.zeros(n, "float32")),
            "g/h/w": zc.Variable(all_vars["/g/h/w"], numpy.zeros(n, "float32")),
        },
        attrs={"title": "t"},
    )
    text = repr(ds)
    lines = text.splitlines()
    assert lines[0] == "<zcollection.data.dataset.Dataset '/'> Size: 4.00 kB"
    assert "Dimensions: (time: 256)" in lines[1]
    assert "Data variables:" in lines
    (time_line,) = [line for line in lines if line.strip().startswith("time (time)")]
    assert "int64" in time_line
    assert "2.00 kB" in time_line
    assert "numpy.ndarray" in time_line
    assert "Groups:" in lines
    (group_line,) = [line for line in lines if line.strip().startswith("g ")]
    assert "2.00 kB" in group_line
    assert "(1 variable, 1 subgroup)" in group_line
    assert "title: 't'" in text
    group_text = repr(ds.get_group("/g"))
    assert group_text.startswith("<zcollection.data.group.Group '/g'> Size: 2.00 kB")


def test_repr_of_small_and_large_sizes() -> None:
    schema = (
        zc.Schema()
        .with_dimension("x", size=3)
        .with_variable("b", dtype="int8", dimensions=("x",))
        .build()
    )
    ds = zc.Dataset(schema, [zc.Variable(schema.variables["b"], numpy.zeros(3, "int8"))])
    assert "Size: 3 B" in repr(ds)
    big = zc.Variable(_var("float64", ("x",)), da.zeros(3 * 2**20, chunks=2**20))
    text = repr(big)
    assert "Size: 24.00 MB" in text
    assert "dask.Array" in text
    assert "x: 3145728" in text


# -- xarray bridge ----------------------------------------------------------------------------


def test_to_xarray_root_group() -> None:
    ds = _dataset()
    xds = ds.to_xarray()
    assert isinstance(xds, xarray.Dataset)
    assert set(xds.variables) == {"time", "ssh"}
    assert dict(xds.sizes) == {"time": N, "x_ac": X}
    assert xds.attrs == {"title": "demo"}
    assert xds["ssh"].dims == ("time", "x_ac")
    assert xds["ssh"].attrs == {"units": "m"}  # no fill value, no _FillValue
    numpy.testing.assert_array_equal(xds["ssh"].values, _arrays()["ssh"])
    assert set(ds.to_xarray("/").variables) == {"time", "ssh"}


def test_to_xarray_nested_group() -> None:
    ds = _dataset()
    for path in ("/data_01/ku", "data_01/ku"):
        xds = ds.to_xarray(path)
        assert set(xds.variables) == {"power"}
        assert xds.attrs == {"band": "Ku"}
        assert xds["power"].dims == ("time", "range")
        assert xds["power"].attrs["units"] == "W"
        assert numpy.isnan(xds["power"].attrs["_FillValue"])
        assert xds["power"].dtype == numpy.float32
    with pytest.raises(KeyError):
        ds.to_xarray("/nope")


def test_from_xarray() -> None:
    power = numpy.arange(6, dtype="float32").reshape(3, 2)
    flag = numpy.array([1, 0, 1], dtype="int8")
    xds = xarray.Dataset(
        {
            "power": (("time", "range"), power, {"units": "W", "_FillValue": numpy.float32(-1)}),
            "flag": (("time",), flag),
        },
        attrs={"title": "from xarray"},
    )
    ds = zc.Dataset.from_xarray(xds)
    assert isinstance(ds, zc.Dataset)
    assert ds.schema.dim_sizes == {"time": 3, "range": 2}
    assert ds.attrs == {"title": "from xarray"}
    assert ds.schema.attrs == {"title": "from xarray"}
    assert ds.groups == {}
    var = ds["power"]
    assert var.dimensions == ("time", "range")
    assert var.dtype == numpy.float32
    assert var.fill_value == numpy.float32(-1)
    assert var.attrs == {"units": "W"}  # _FillValue became the fill value
    assert ds["flag"].fill_value is None
    assert ds["flag"].dtype == numpy.int8
    # the data is shared, not copied
    assert numpy.shares_memory(ds["power"].to_numpy(), power)
    assert numpy.shares_memory(ds["flag"].to_numpy(), flag)


def test_xarray_round_trip_of_a_group() -> None:
    ds = _dataset()
    back = zc.Dataset.from_xarray(ds.to_xarray("/data_01/ku"))
    var = back["power"]
    assert var.dimensions == ("time", "range")
    assert numpy.isnan(var.fill_value)
    assert var.attrs == {"units": "W"}
    assert back.attrs == {"band": "Ku"}
    numpy.testing.assert_array_equal(var.to_numpy(), _arrays()["data_01/ku/power"])


def test_from_xarray_keeps_dask_data_lazy() -> None:
    lazy = da.arange(10, chunks=5)
    ds = zc.Dataset.from_xarray(xarray.Dataset({"a": (("t",), lazy)}))
    assert ds.is_lazy is True
    assert ds["a"].data is lazy
    numpy.testing.assert_array_equal(ds["a"].to_numpy(), numpy.arange(10))
