"""The Parquet indexer: build, lookup, and Parquet round trips on local paths and store URLs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import numpy
import pytest
import zcollection as zc

pa = pytest.importorskip("pyarrow")

from zcollection.indexing import Indexer  # noqa: E402


def _collection(backend, make_altimetry, monthly):
    """January 2024 (31 days) and the first 10 days of February, 4 rows a day."""
    ds = make_altimetry("2024-01-01", 41)
    col = zc.create_collection(backend.url(), schema=ds.schema, axis="time", partitioning=monthly)
    col.insert(ds)
    return col, ds


def by_day(ds):
    """One index row per day: the day, its weekday (0 = Monday) and its row range."""
    time = ds["time"].to_numpy()
    days = time.astype("datetime64[D]")
    unique, first = numpy.unique(days, return_index=True)
    stop = numpy.append(first[1:], len(time))
    weekday = ((unique.astype("int64") + 3) % 7).astype("int8")
    return {"day": unique, "weekday": weekday, "_start": first, "_stop": stop}


def _rows(col, ranges):
    """Return the times of the rows named by a lookup result."""
    parts = []
    for path, spans in ranges.items():
        key = dict(col.partitioning.decode(path))
        part = col.query(filters=f"year == {key['year']} and month == {key['month']}")
        times = part["time"].to_numpy()
        parts.extend(times[start:stop] for start, stop in spans)
    return numpy.concatenate(parts) if parts else numpy.array([], dtype="M8[ns]")


@pytest.fixture
def indexed(tmp_path, make_altimetry, monthly):
    backend_url = str(tmp_path / "coll")
    ds = make_altimetry("2024-01-01", 41)
    col = zc.create_collection(backend_url, schema=ds.schema, axis="time", partitioning=monthly)
    col.insert(ds)
    return col, ds, Indexer.build(col, builder=by_day)


# -- build ---------------------------------------------------------------------------------


def test_build_and_lookup(backend, make_altimetry, monthly):
    col, _ = _collection(backend, make_altimetry, monthly)
    index = Indexer.build(col, builder=by_day, variables=["time"])
    assert index.key_columns == ("day", "weekday")
    assert len(index) == 41
    table = index.table
    assert table.column_names == ["day", "weekday", "_partition", "_start", "_stop"]
    assert table["_partition"].to_pylist()[:1] == ["year=2024/month=01"]
    assert table["_partition"].to_pylist()[-1] == "year=2024/month=02"

    found = index.lookup(day=numpy.datetime64("2024-01-05"))
    assert found == {"year=2024/month=01": [(16, 20)]}
    found = index.lookup(day=[numpy.datetime64("2024-01-31"), numpy.datetime64("2024-02-02")])
    assert found == {"year=2024/month=01": [(120, 124)], "year=2024/month=02": [(4, 8)]}
    times = _rows(col, found)
    expected_days = numpy.array(["2024-01-31", "2024-02-02"], dtype="M8[D]")
    assert set(times.astype("M8[D]").tolist()) == set(expected_days.tolist())
    assert times.size == 8


def test_lookup_and_in_and_merging(indexed):
    col, _, index = indexed
    # Mondays of January (Jan 1st, 2024 was a Monday)
    mondays = index.lookup(weekday=0, day=numpy.arange("2024-01-01", "2024-02-01", dtype="M8[D]"))
    assert mondays == {
        "year=2024/month=01": [(0, 4), (28, 32), (56, 60), (84, 88), (112, 116)],
    }
    # consecutive days are merged into one range; partitions in key order
    weekend = index.lookup(weekday={5, 6})
    assert list(weekend) == ["year=2024/month=01", "year=2024/month=02"]
    assert weekend["year=2024/month=01"][0] == (20, 28)
    times = _rows(col, weekend)
    assert ((times.astype("M8[D]").astype("int64") + 3) % 7 >= 5).all()
    assert times.size == 4 * (8 + 3)  # Jan 6-7, 13-14, 20-21, 27-28; Feb 3-4, 10
    # everything, merged into one range per partition
    assert index.lookup() == {
        "year=2024/month=01": [(0, 124)],
        "year=2024/month=02": [(0, 40)],
    }
    # tuples, ndarrays and empty sets
    assert index.lookup(weekday=(0,)) == index.lookup(weekday=numpy.array([0], dtype="int64"))
    assert index.lookup(weekday=[]) == {}
    assert index.lookup(weekday=9) == {}
    assert index.lookup(day="2024-01-02") == {"year=2024/month=01": [(4, 8)]}


def test_lookup_unknown_column_raises_key_error(indexed):
    _, _, index = indexed
    with pytest.raises(KeyError, match="nope"):
        index.lookup(nope=1)
    with pytest.raises(KeyError):
        index.lookup(_start=0)
    with pytest.raises(TypeError):
        index.lookup(weekday="Monday")


def test_build_with_structured_arrays_and_filters(tmp_path, make_altimetry, monthly):
    ds = make_altimetry("2024-01-01", 41)
    col = zc.create_collection(
        str(tmp_path / "coll"), schema=ds.schema, axis="time", partitioning=monthly
    )
    col.insert(ds)

    def halves(part):
        n = part["time"].shape[0]
        out = numpy.zeros(2, dtype=[("half", "i4"), ("_start", "i8"), ("_stop", "i8")])
        out["half"] = [0, 1]
        out["_start"] = [0, n // 2]
        out["_stop"] = [n // 2, n]
        return out

    index = Indexer.build(col, builder=halves, filters="month == 2")
    assert index.key_columns == ("half",)
    assert index.lookup(half=1) == {"year=2024/month=02": [(20, 40)]}


def test_build_error_cases(indexed):
    col = indexed[0]
    with pytest.raises(ValueError, match="_stop"):
        Indexer.build(col, builder=lambda part: {"k": numpy.arange(2), "_start": numpy.arange(2)})
    with pytest.raises(TypeError):
        Indexer.build(col, builder=lambda part: [1, 2, 3])
    with pytest.raises(TypeError):
        Indexer.build(col, builder=lambda part: numpy.arange(3))
    with pytest.raises(ValueError, match="length"):
        Indexer.build(
            col,
            builder=lambda part: {
                "k": numpy.arange(3),
                "_start": numpy.arange(2),
                "_stop": numpy.arange(2) + 1,
            },
        )
    with pytest.raises(ValueError, match="1-D"):
        Indexer.build(
            col,
            builder=lambda part: {
                "k": numpy.zeros((2, 2)),
                "_start": numpy.arange(2),
                "_stop": numpy.arange(2) + 1,
            },
        )
    with pytest.raises(ValueError, match="_partition"):
        Indexer.build(
            col,
            builder=lambda part: {
                "_partition": numpy.array(["x"]),
                "_start": numpy.array([0]),
                "_stop": numpy.array([1]),
            },
        )
    with pytest.raises(ValueError, match="_start <= _stop"):
        Indexer.build(
            col,
            builder=lambda part: {"_start": numpy.array([3]), "_stop": numpy.array([1])},
        )
    with pytest.raises(ValueError, match="integers"):
        Indexer.build(
            col,
            builder=lambda part: {"_start": numpy.array([0.5]), "_stop": numpy.array([1.0])},
        )


def test_empty_outputs_and_empty_collections(indexed, tmp_path, make_altimetry, monthly):
    col = indexed[0]
    index = Indexer.build(
        col,
        builder=lambda part: {
            "k": numpy.array([], dtype="int32"),
            "_start": numpy.array([], dtype="int64"),
            "_stop": numpy.array([], dtype="int64"),
        },
    )
    assert len(index) == 0
    assert index.key_columns == ("k",)
    assert index.lookup(k=1) == {}
    nothing = Indexer.build(col, builder=by_day, filters="year == 1999")
    assert len(nothing) == 0
    assert nothing.key_columns == ()
    assert nothing.lookup() == {}


def test_async_build(indexed):
    col, _, index = indexed
    built = asyncio.run(Indexer.build_async(col, builder=by_day))
    assert built.table.equals(index.table)


# -- Indexer(table) ------------------------------------------------------------------------


def test_indexer_from_a_table():
    table = pa.table(
        {
            "pass": pa.array([1, 2, 1], pa.int32()),
            "_partition": ["cycle=1", "cycle=1", "cycle=2"],
            "_start": pa.array([0, 10, 0], pa.int32()),
            "_stop": [10, 20, 5],
        }
    )
    index = Indexer(table)
    assert index.table["_start"].type == pa.int64()
    assert index.lookup(**{"pass": 1}) == {"cycle=1": [(0, 10)], "cycle=2": [(0, 5)]}
    with pytest.raises(TypeError):
        Indexer({"_start": [0]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="_partition"):
        Indexer(pa.table({"_start": [0], "_stop": [1]}))


def test_lookup_merges_overlaps_and_drops_empty_ranges():
    table = pa.table(
        {
            "k": [1, 1, 1, 1, 1],
            "_partition": ["b", "b", "a", "b", "b"],
            "_start": [5, 0, 3, 3, 20],
            "_stop": [9, 4, 3, 6, 30],
        }
    )
    assert Indexer(table).lookup(k=1) == {"b": [(0, 9), (20, 30)]}


# -- Parquet round trips -------------------------------------------------------------------


def test_write_read_local_path(indexed, tmp_path):
    _, _, index = indexed
    path = tmp_path / "sub" / "index.parquet"
    index.write(str(path))
    assert path.exists()
    import pyarrow.parquet as pq

    assert pq.read_table(path).equals(index.table)
    again = Indexer.read(str(path))
    assert again.table.equals(index.table)
    assert again.key_columns == index.key_columns
    assert again.lookup(weekday=0) == index.lookup(weekday=0)
    # PathLike and file:// URLs
    assert Indexer.read(path).table.equals(index.table)
    index.write(path.as_uri().replace("index.parquet", "other.parquet"))
    assert Indexer.read((tmp_path / "sub" / "other.parquet").as_uri()).table.equals(index.table)


def test_write_read_store_url(indexed):
    _, _, index = indexed
    url = f"memory://idx-{uuid.uuid4().hex[:8]}/indexes/by_day.parquet"
    index.write(url)
    store = zc.open_store(url.rsplit("/", 1)[0])
    assert store.exists("by_day.parquet")
    again = Indexer.read(url)
    assert again.table.equals(index.table)
    assert again.lookup(day="2024-02-10") == {"year=2024/month=02": [(36, 40)]}


def test_write_read_on_every_backend(backend, indexed):
    if backend.kind.startswith("remote"):
        pytest.skip("an index file goes to a store URL, not to a Flight server")
    _, _, index = indexed
    url = backend.url("indexes") + "/index.parquet"
    if backend.kind == "icechunk":
        # an icechunk repository holds only Zarr nodes, not Parquet files
        with pytest.raises(zc.InvalidURLError, match="icechunk"):
            index.write(url)
        with pytest.raises(zc.InvalidURLError, match="icechunk"):
            Indexer.read(url)
        return
    index.write(url)
    assert Indexer.read(url).table.equals(index.table)

    async def scenario():
        await index.write_async(url)
        return await Indexer.read_async(url)

    assert asyncio.run(scenario()).table.equals(index.table)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Indexer.read(str(tmp_path / "missing.parquet"))
    with pytest.raises(FileNotFoundError):
        Indexer.read(f"memory://idx-{uuid.uuid4().hex[:8]}/missing.parquet")
    with pytest.raises(zc.InvalidURLError):
        Indexer.read("memory://index.parquet")
    with pytest.raises(zc.InvalidURLError):
        Indexer.read("memory://store/")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="_start"):
        Indexer.read(str(tmp_path / "plain.parquet"))


# -- packaging -----------------------------------------------------------------------------


def test_importing_zcollection_does_not_import_pyarrow():
    code = (
        "import sys, zcollection as zc\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported eagerly'\n"
        "assert zc.indexing.Indexer.__name__ == 'Indexer'\n"
        "assert 'pyarrow' in sys.modules\n"
        "from zcollection.indexing.parquet import Indexer\n"
        "assert Indexer is zc.indexing.Indexer\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
