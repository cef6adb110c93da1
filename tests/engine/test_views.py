"""Views: extra variables overlaid on a base collection, run on every store back-end."""

from __future__ import annotations

import asyncio
import json
import sys

import numpy
import pytest
import zcollection as zc
from zcollection._sync import run_sync
from zcollection.view import View, ViewReference, create_view, open_view

NAN32 = numpy.float32("nan")


def _conftest():
    """Return tests/conftest.py (loaded by pytest under a name of its choosing)."""
    for module in list(sys.modules.values()):
        if hasattr(module, "BACKEND_FACTORIES") and hasattr(module, "Backend"):
            return module
    raise RuntimeError("tests/conftest.py is not loaded")


#: Views run in-process over a Store; the ``remote-*`` back-ends serve collections through a
#: Flight server instead, so they are left out here.
STORE_KINDS = sorted(k for k in _conftest().BACKEND_FACTORIES if not k.startswith("remote"))


@pytest.fixture(params=STORE_KINDS)
def backend(request, tmp_path):
    """Each store back-end of tests/conftest.py (the remote ones excepted)."""
    return _conftest().BACKEND_FACTORIES[request.param](request, tmp_path)


def _base(backend, make_altimetry, monthly, *, days=45, name="base"):
    """A base collection of January and February 2024 (``days`` days from Jan 1st)."""
    ds = make_altimetry("2024-01-01", days)
    col = zc.create_collection(
        backend.url(name), schema=ds.schema, axis="time", partitioning=monthly
    )
    col.insert(ds)
    return col, ds


def _view_variables():
    return [
        zc.VariableSchema(
            "ssh_corr", dtype="float32", dimensions=("time", "x_ac"), fill_value=NAN32
        ),
        zc.VariableSchema("flag", dtype="int8", dimensions=("time",), fill_value=-1),
    ]


def _create_view(backend, base, *, variables=None, name="view", overwrite=False):
    return View.create(
        zc.open_store(backend.url(name)),
        base=base,
        variables=variables if variables is not None else _view_variables(),
        reference=backend.url("base"),
        overwrite=overwrite,
    )


def _corrected(ds):
    return {
        "ssh_corr": ds["ssh"].to_numpy() * 2,
        "flag": numpy.ones(ds["time"].shape[0], dtype="int8"),
    }


def _read_view_config(backend, name="view"):
    store = zc.open_store(backend.url(name), read_only=True)
    raw = run_sync(store.read_meta_async("_zcollection_view.json"))
    assert raw is not None
    return json.loads(raw)


# -- ViewReference -------------------------------------------------------------------------


def test_view_reference_json_round_trip():
    ref = ViewReference("s3://bucket/base")
    assert ref.to_json() == {"uri": "s3://bucket/base"}
    assert ViewReference.from_json(ref.to_json()) == ref
    with pytest.raises(ValueError):
        ViewReference.from_json({"path": "x"})
    with pytest.raises(ValueError):
        ViewReference("  ")
    with pytest.raises(TypeError):
        ViewReference(42)  # type: ignore[arg-type]


# -- create / open -------------------------------------------------------------------------


def test_create_then_open(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    assert view.base is base
    assert view.read_only is False
    assert view.variables == ("ssh_corr", "flag")
    assert view.reference == ViewReference(backend.url("base"))
    assert list(view.partitions()) == ["year=2024/month=01", "year=2024/month=02"]
    assert list(view.partitions(filters="month == 2")) == ["year=2024/month=02"]
    assert set(view.view_schema.dimensions) == {"time", "x_ac"}

    opened = View.open(zc.open_store(backend.url("view")), base=base)
    assert opened.view_schema == view.view_schema
    assert opened.reference == view.reference
    assert opened.variables == view.variables
    assert opened.store.root_uri == view.store.root_uri


def test_config_file_follows_the_on_disk_format(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    _create_view(backend, base)
    doc = _read_view_config(backend)
    assert set(doc) == {"format_version", "reference", "schema"}
    assert doc["format_version"] == 1
    assert doc["reference"] == {"uri": backend.url("base")}
    schema = doc["schema"]
    assert [d["name"] for d in schema["dimensions"]] == ["time", "x_ac"]
    assert [v["name"] for v in schema["variables"]] == ["ssh_corr", "flag"]
    assert zc.DatasetSchema.from_json(schema).variables["flag"].dimensions == ("time",)


def test_open_missing_view_raises_and_creates_nothing(backend, monthly, make_altimetry, tmp_path):
    base, _ = _base(backend, make_altimetry, monthly)
    with pytest.raises(zc.CollectionNotFoundError):
        View.open(zc.open_store(backend.url("missing")), base=base)
    with pytest.raises(zc.CollectionNotFoundError):
        open_view(backend.url("missing"))
    assert backend.snapshot("missing") == {}
    if backend.kind == "local":
        assert not (tmp_path / "missing").exists()


def test_create_twice_raises_and_overwrite_replaces(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    view.update(_corrected)
    with pytest.raises(zc.CollectionExistsError):
        _create_view(backend, base)
    # the first view is intact
    result = View.open(zc.open_store(backend.url("view")), base=base).query()
    assert result is not None
    assert (result["flag"].to_numpy() == 1).all()

    fresh = _create_view(
        backend,
        base,
        variables=[zc.VariableSchema("other", dtype="float64", dimensions=("time",))],
        overwrite=True,
    )
    assert fresh.variables == ("other",)
    result = fresh.query()
    assert result is not None
    assert "flag" not in result
    assert (result["other"].to_numpy() == 0).all()


def test_create_refuses_a_collection_store(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    zc.create_collection(backend.url("other"), schema=ds.schema, axis="time", partitioning=monthly)
    with pytest.raises(zc.CollectionExistsError):
        _create_view(backend, base, name="other")


def test_create_validates_store_and_variables(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    store = zc.open_store(backend.url("view"))
    ref = backend.url("base")

    def create(variables, target=store):
        return View.create(target, base=base, variables=variables, reference=ref)

    with pytest.raises(zc.ZCollectionError, match="store"):
        create(_view_variables(), target=zc.open_store(backend.url("base")))
    # does not span the partitioning dimension
    with pytest.raises(zc.SchemaError, match="partitioning dimension"):
        create([zc.VariableSchema("bad", dtype="float32", dimensions=("x_ac",))])
    # a dimension the base does not have
    with pytest.raises(zc.SchemaError, match="dimension"):
        create([zc.VariableSchema("bad", dtype="float32", dimensions=("time", "y"))])
    # shadowing a base variable with other dimensions
    with pytest.raises(zc.SchemaError, match="shadows"):
        create([zc.VariableSchema("ssh", dtype="float32", dimensions=("time",))])
    with pytest.raises(zc.SchemaError):
        create([])
    with pytest.raises(zc.SchemaError):
        create(["not a schema"])
    with pytest.raises(TypeError):
        View.create(store, base="not a collection", variables=_view_variables(), reference=ref)
    # nothing was written by the refused attempts
    assert backend.snapshot("view") == {}


def test_open_with_an_incompatible_base_raises(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    _create_view(backend, base)
    other_schema = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .build()
    )
    other = zc.create_collection(
        backend.url("other"), schema=other_schema, axis="time", partitioning=monthly
    )
    with pytest.raises(zc.SchemaError):
        View.open(zc.open_store(backend.url("view")), base=other)


# -- update / query ------------------------------------------------------------------------


def test_update_then_query_merges_base_and_overlay(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    written = view.update(_corrected)
    assert written == ["year=2024/month=01", "year=2024/month=02"]

    result = view.query()
    assert result is not None
    assert list(result.all_variables()) == ["time", "ssh", "x_ac", "ssh_corr", "flag"]
    numpy.testing.assert_array_equal(result["time"].to_numpy(), ds["time"].to_numpy())
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), ds["ssh"].to_numpy())
    numpy.testing.assert_array_equal(result["x_ac"].to_numpy(), ds["x_ac"].to_numpy())
    numpy.testing.assert_array_equal(result["ssh_corr"].to_numpy(), ds["ssh"].to_numpy() * 2)
    assert result["flag"].to_numpy().dtype == numpy.int8
    assert (result["flag"].to_numpy() == 1).all()
    assert result.attrs == {"title": "test"}
    assert result["ssh"].attrs == {"units": "m"}
    for _, group in result.walk():
        assert not any(key.startswith("_zc") for key in group.attrs)

    # reopened from fresh handles, the overlay is still there
    reopened = View.open(
        zc.open_store(backend.url("view")), base=zc.open_collection(backend.url("base"))
    )
    again = reopened.query(filters="month == 2", variables=["flag", "time"])
    assert again is not None
    assert list(again.all_variables()) == ["time", "flag"]
    assert again["flag"].shape == (ds["time"].shape[0] - 31 * 4,)


def test_view_partitions_sit_at_the_base_paths(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    view.update(_corrected, filters="month == 1")
    store = zc.open_store(backend.url("view"), read_only=True)
    assert sorted(store.list_dir("year=2024/month=01")) == ["flag", "ssh_corr", "zarr.json"]
    assert not any(key.startswith("year=2024/month=02") for key in store.list_prefix(""))


def test_partitions_without_overlay_are_filled(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    # nothing written yet: every view variable shows its fill value
    untouched = view.query()
    assert untouched is not None
    assert numpy.isnan(untouched["ssh_corr"].to_numpy()).all()
    assert (untouched["flag"].to_numpy() == -1).all()
    assert untouched["ssh_corr"].shape == ds["ssh"].shape

    assert view.update(_corrected, filters="month == 1") == ["year=2024/month=01"]
    result = view.query()
    assert result is not None
    january = ds["time"].to_numpy() < numpy.datetime64("2024-02-01")
    corr = result["ssh_corr"].to_numpy()
    numpy.testing.assert_array_equal(corr[january], ds["ssh"].to_numpy()[january] * 2)
    assert numpy.isnan(corr[~january]).all()
    flag = result["flag"].to_numpy()
    assert (flag[january] == 1).all()
    assert (flag[~january] == -1).all()

    february = view.query(filters="month == 2", variables=["ssh_corr"])
    assert february is not None
    assert numpy.isnan(february["ssh_corr"].to_numpy()).all()


def test_update_sees_immutables_and_existing_view_variables(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)

    def first(part):
        return {"flag": numpy.full(part["time"].shape[0], 7, dtype="int8")}

    view.update(first)
    seen = []

    def second(part):
        seen.append(sorted(part.all_variables()))
        numpy.testing.assert_array_equal(part["x_ac"].to_numpy(), ds["x_ac"].to_numpy())
        assert (part["flag"].to_numpy() == 7).all()
        assert numpy.isnan(part["ssh_corr"].to_numpy()).all()
        # "flag" is missing from the result: it keeps its values
        return {"ssh_corr": part["ssh"].to_numpy() + part["flag"].to_numpy()[:, None]}

    assert view.update(second) == ["year=2024/month=01", "year=2024/month=02"]
    assert seen == [["flag", "ssh", "ssh_corr", "time", "x_ac"]] * 2
    result = view.query()
    assert result is not None
    assert (result["flag"].to_numpy() == 7).all()
    numpy.testing.assert_allclose(result["ssh_corr"].to_numpy(), ds["ssh"].to_numpy() + 7)


def test_update_variables_whitelist(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    seen = []

    def fn(part):
        seen.append(sorted(part.all_variables()))
        return {"flag": numpy.zeros(part["time"].shape[0], dtype="int8")}

    view.update(fn, variables=["time", "flag"], filters="month == 1")
    assert seen == [["flag", "time"]]


def test_update_returning_nothing_writes_nothing(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    assert view.update(lambda part: {}) == []
    assert view.update(lambda part: {}, filters="year == 1999") == []


def test_view_wins_on_collisions(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    shadow = zc.VariableSchema(
        "ssh", dtype="float32", dimensions=("time", "x_ac"), fill_value=NAN32, attrs={"v": 2}
    )
    view = _create_view(backend, base, variables=[shadow])
    assert view.variables == ("ssh",)
    # before any overlay is written, the base values show through
    before = view.query()
    assert before is not None
    numpy.testing.assert_array_equal(before["ssh"].to_numpy(), ds["ssh"].to_numpy())

    def fix(part):
        return {"ssh": part["ssh"].to_numpy() - 100}

    view.update(fix, filters="month == 1")
    result = view.query()
    assert result is not None
    assert list(result.all_variables()) == ["time", "ssh", "x_ac"]
    assert result["ssh"].attrs == {"v": 2}
    january = ds["time"].to_numpy() < numpy.datetime64("2024-02-01")
    ssh = ds["ssh"].to_numpy()
    numpy.testing.assert_array_equal(result["ssh"].to_numpy()[january], ssh[january] - 100)
    numpy.testing.assert_array_equal(result["ssh"].to_numpy()[~january], ssh[~january])
    # the base itself is untouched
    numpy.testing.assert_array_equal(base.query()["ssh"].to_numpy(), ssh)


def test_query_variables_and_filters(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    view.update(_corrected)
    assert view.query(filters="year == 1999") is None
    mixed = view.query(variables=["flag", "/ssh", "x_ac"])
    assert mixed is not None
    assert list(mixed.all_variables()) == ["ssh", "x_ac", "flag"]
    only_view = view.query(variables="ssh_corr", filters="month == 1")
    assert only_view is not None
    assert list(only_view.all_variables()) == ["ssh_corr"]
    assert only_view["ssh_corr"].shape == (31 * 4, 4)
    only_immutable = view.query(variables=["x_ac"])
    assert only_immutable is not None
    numpy.testing.assert_array_equal(only_immutable["x_ac"].to_numpy(), ds["x_ac"].to_numpy())
    with pytest.raises(zc.SchemaError):
        view.query(variables=["nope"])
    with pytest.raises(zc.ExpressionError):
        view.query(filters="nope == 1")
    with pytest.raises(zc.ExpressionError):
        list(view.partitions(filters="month =="))


def test_update_rejects_bad_results(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    with pytest.raises(zc.SchemaError, match="unknown"):
        view.update(lambda part: {"ssh": part["ssh"].to_numpy()})
    with pytest.raises(zc.SchemaError, match="shape"):
        view.update(lambda part: {"flag": numpy.zeros(3, dtype="int8")})
    with pytest.raises(zc.SchemaError, match="float"):
        view.update(
            lambda part: {"flag": numpy.zeros(part["time"].shape[0], dtype="float64") + 0.5}
        )
    with pytest.raises(TypeError):
        view.update(lambda part: [1, 2, 3])
    with pytest.raises(RuntimeError, match="boom"):
        view.update(lambda part: (_ for _ in ()).throw(RuntimeError("boom")))
    result = view.query()
    assert result is not None
    assert (result["flag"].to_numpy() == -1).all()


def test_update_casts_compatible_dtypes_and_accepts_variables(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)

    def fn(part):
        n = part["time"].shape[0]
        return {
            "ssh_corr": part["ssh"].to_numpy().astype("float64"),
            "flag": zc.Variable(view.view_schema.variables["flag"], numpy.full(n, 3, "int8")),
        }

    view.update(fn)
    result = view.query()
    assert result is not None
    assert result["ssh_corr"].dtype == numpy.float32
    numpy.testing.assert_array_equal(result["ssh_corr"].to_numpy(), ds["ssh"].to_numpy())
    assert (result["flag"].to_numpy() == 3).all()


def test_stale_overlay_is_treated_as_absent(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    view.update(_corrected)
    # the base's January is rewritten with fewer rows: the overlay no longer lines up
    base.insert(make_altimetry("2024-01-01", 10, per_day=2, seed=3))
    result = view.query(filters="month == 1")
    assert result is not None
    assert result["flag"].shape == (20,)
    assert (result["flag"].to_numpy() == -1).all()
    february = view.query(filters="month == 2")
    assert february is not None
    assert (february["flag"].to_numpy() == 1).all()


# -- read-only -----------------------------------------------------------------------------


def test_read_only_view_refuses_updates(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    _create_view(backend, base).update(_corrected, filters="month == 1")
    before = backend.snapshot("view")
    ro = View.open(zc.open_store(backend.url("view")), base=base, read_only=True)
    assert ro.read_only is True
    with pytest.raises(zc.ReadOnlyError):
        ro.update(_corrected)
    on_ro_store = View.open(zc.open_store(backend.url("view"), read_only=True), base=base)
    assert on_ro_store.read_only is True
    with pytest.raises(zc.ReadOnlyError):
        on_ro_store.update(_corrected)
    assert backend.snapshot("view") == before
    assert ro.query() is not None


def test_view_over_a_read_only_base(backend, monthly, make_altimetry):
    _base(backend, make_altimetry, monthly)
    base = zc.open_collection(backend.url("base"), mode="r")
    view = _create_view(backend, base)
    assert view.update(_corrected) == ["year=2024/month=01", "year=2024/month=02"]
    result = view.query(variables=["flag"])
    assert result is not None
    assert (result["flag"].to_numpy() == 1).all()


def test_create_on_read_only_store_raises(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    with pytest.raises(zc.ReadOnlyError):
        View.create(
            zc.open_store(backend.url("view"), read_only=True),
            base=base,
            variables=_view_variables(),
            reference=backend.url("base"),
        )


# -- helpers by URL ------------------------------------------------------------------------


def test_open_view_opens_the_base_from_the_reference(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)
    created = create_view(
        backend.url("view"), base=base, variables=_view_variables(), reference=backend.url("base")
    )
    created.update(_corrected)
    view = open_view(backend.url("view"))
    assert view.base.read_only is True
    assert view.base.store.root_uri == base.store.root_uri
    result = view.query(variables=["ssh_corr"])
    assert result is not None
    numpy.testing.assert_array_equal(result["ssh_corr"].to_numpy(), ds["ssh"].to_numpy() * 2)
    ro = open_view(backend.url("view"), base=base, read_only=True)
    assert ro.read_only is True and ro.base is base


def test_create_view_defaults_the_reference_to_the_base_store(backend, monthly, make_altimetry):
    base, _ = _base(backend, make_altimetry, monthly)
    view = create_view(backend.url("view"), base=base, variables=_view_variables())
    assert view.reference.uri == base.store.root_uri
    reopened = open_view(backend.url("view"))
    assert list(reopened.partitions()) == list(base.partitions())


# -- async twins ---------------------------------------------------------------------------


def test_async_twins(backend, monthly, make_altimetry):
    base, ds = _base(backend, make_altimetry, monthly)

    async def scenario():
        view = await View.create_async(
            zc.open_store(backend.url("view")),
            base=base,
            variables=_view_variables(),
            reference=backend.url("base"),
        )
        written = await view.update_async(_corrected, filters="month == 2")
        opened = await View.open_async(zc.open_store(backend.url("view")), base=base)
        result = await opened.query_async(variables=["flag"])
        paths = await opened.partitions_async()
        return written, result, paths

    written, result, paths = asyncio.run(scenario())
    assert written == ["year=2024/month=02"]
    assert paths == ["year=2024/month=01", "year=2024/month=02"]
    assert result is not None
    february = ds["time"].to_numpy() >= numpy.datetime64("2024-02-01")
    numpy.testing.assert_array_equal(result["flag"].to_numpy(), numpy.where(february, 1, -1))


# -- nested groups in the base -------------------------------------------------------------


def test_view_over_a_base_with_nested_groups(backend, monthly):
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("power", dtype="float64", dimensions=("time",), group="/data_01/ku")
        .build()
    )
    base = zc.create_collection(
        backend.url("base"), schema=schema, axis="time", partitioning=monthly
    )
    n = 10
    time = numpy.datetime64("2024-03-01", "ns") + numpy.arange(n) * numpy.timedelta64(1, "D")
    bound = base.schema
    ds = zc.Dataset(
        bound,
        {
            "time": zc.Variable(bound.variables["time"], time),
            "data_01/ku/power": zc.Variable(
                bound.get_group("/data_01/ku").variables["power"], numpy.arange(n, dtype="f8")
            ),
        },
    )
    base.insert(ds)
    view = _create_view(
        backend,
        base,
        variables=[zc.VariableSchema("power", dtype="float64", dimensions=("time",))],
    )
    view.update(lambda part: {"power": part["/data_01/ku/power"].to_numpy() * 10})
    result = view.query()
    assert result is not None
    assert sorted(result.all_variables()) == ["data_01/ku/power", "power", "time"]
    numpy.testing.assert_array_equal(result["/data_01/ku/power"].to_numpy(), numpy.arange(n))
    numpy.testing.assert_array_equal(result["power"].to_numpy(), numpy.arange(n) * 10)


# -- icechunk: one commit per write block ---------------------------------------------------


def test_view_on_icechunk_is_committed_and_reopens(backend, monthly, make_altimetry):
    if backend.kind != "icechunk":
        pytest.skip("icechunk only")
    base, ds = _base(backend, make_altimetry, monthly)
    view = _create_view(backend, base)
    store = view.store
    repo = store.repository()  # type: ignore[attr-defined]
    commits_before = len(list(repo.ancestry(branch="main")))
    view.update(_corrected)
    commits_after = len(list(repo.ancestry(branch="main")))
    assert commits_after == commits_before + 1

    reopened = open_view(backend.url("view"))
    result = reopened.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["ssh_corr"].to_numpy(), ds["ssh"].to_numpy() * 2)
    assert (result["flag"].to_numpy() == 1).all()

    # a failing update commits nothing
    def half(part):
        if part["time"].to_numpy()[0] >= numpy.datetime64("2024-02-01"):
            raise RuntimeError("boom")
        return {"flag": numpy.zeros(part["time"].shape[0], dtype="int8")}

    with pytest.raises(RuntimeError):
        view.update(half)
    assert len(list(repo.ancestry(branch="main"))) == commits_after
    again = open_view(backend.url("view")).query(variables=["flag"])
    assert again is not None
    assert (again["flag"].to_numpy() == 1).all()
