"""``insert_stream``: a stream of datasets inserted as one insert, partitions written early."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc
from zcollection.data.ops import concat

from ..conftest import Backend, altimetry_dataset, altimetry_schema


def _create(url: str, monthly: Any) -> Any:
    return zc.create_collection(url, schema=altimetry_schema(), axis="time", partitioning=monthly)


def _pieces(dataset: zc.Dataset, size: int) -> list[zc.Dataset]:
    rows = dataset["time"].to_numpy().size
    return [dataset.isel("time", slice(i, i + size)) for i in range(0, rows, size)]


def _assert_same(got: zc.Dataset | None, expected: zc.Dataset | None) -> None:
    assert got is not None and expected is not None
    for name in ("time", "ssh", "x_ac"):
        a, b = got[name].to_numpy(), expected[name].to_numpy()
        assert a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("merge", [None, "concat", "time_series", "upsert"])
@pytest.mark.parametrize("buffer_bytes", [0, None])
def test_stream_gives_what_one_insert_gives(
    backend: Backend, monthly: Any, merge: str | None, buffer_bytes: int | None
) -> None:
    base = altimetry_dataset("2024-01-10", 60, seed=1)
    new = altimetry_dataset("2024-02-03", 75, per_day=6, seed=2)
    streamed, reference = _create(backend.url("s"), monthly), _create(backend.url("r"), monthly)
    streamed.insert(base)
    reference.insert(base)
    written = streamed.insert_stream(_pieces(new, 37), merge=merge, buffer_bytes=buffer_bytes)
    expected = reference.insert(new, merge=merge)
    assert written == expected == ["year=2024/month=02", "year=2024/month=03", "year=2024/month=04"]
    assert list(streamed.partitions()) == list(reference.partitions())
    _assert_same(streamed.query(), reference.query())


def test_an_async_stream_is_accepted(backend: Backend, monthly: Any) -> None:
    data = altimetry_dataset("2024-01-01", 70)
    collection = _create(backend.url(), monthly)

    async def stream() -> AsyncIterator[zc.Dataset]:
        for piece in _pieces(data, 50):
            await asyncio.sleep(0)
            yield piece

    written = asyncio.run(collection.insert_stream_async(stream(), buffer_bytes=0))
    assert written == ["year=2024/month=01", "year=2024/month=02", "year=2024/month=03"]
    _assert_same(collection.query(), data)


def test_an_empty_stream_writes_nothing(backend: Backend, monthly: Any) -> None:
    collection = _create(backend.url(), monthly)
    before = backend.snapshot()
    assert collection.insert_stream([]) == []
    assert list(collection.partitions()) == []
    assert backend.snapshot() == before


def test_overwrite_false_refuses_an_existing_partition(backend: Backend, monthly: Any) -> None:
    collection = _create(backend.url(), monthly)
    collection.insert(altimetry_dataset("2024-03-01", 5))
    before = backend.snapshot()
    with pytest.raises(zc.PartitionExistsError):
        collection.insert_stream(
            _pieces(altimetry_dataset("2024-02-20", 20, seed=3), 16), overwrite=False
        )
    if backend.kind in ("local", "icechunk", "remote-local", "remote-icechunk"):
        assert backend.snapshot() == before  # February was written aside, then discarded


def test_late_rows_of_a_written_partition_are_refused(backend: Backend, monthly: Any) -> None:
    collection = _create(backend.url(), monthly)
    collection.insert(altimetry_dataset("2024-01-01", 10))
    before = backend.snapshot()
    january = altimetry_dataset("2024-01-05", 3, seed=4)
    february = altimetry_dataset("2024-02-05", 3, seed=5)
    with pytest.raises(zc.PartitionError, match="arrived after it was written"):
        collection.insert_stream([january, february, january], buffer_bytes=0)
    if backend.kind in ("local", "icechunk", "remote-local", "remote-icechunk"):
        assert backend.snapshot() == before
    # held rows may come back in any order
    written = collection.insert_stream([january, february, january], buffer_bytes=None)
    assert written == ["year=2024/month=01", "year=2024/month=02"]
    assert collection.query(filters="month == 1")["time"].to_numpy().size == 24


def test_immutable_values_must_agree_across_the_stream(backend: Backend, monthly: Any) -> None:
    collection = _create(backend.url(), monthly)
    first = altimetry_dataset("2024-01-01", 3)
    other = altimetry_dataset("2024-02-01", 3)
    x_ac = other["x_ac"]
    changed = other.replace(
        {**other.all_variables(), "x_ac": x_ac.with_data(x_ac.to_numpy()[::-1].copy())}
    )
    before = backend.snapshot()
    with pytest.raises(zc.SchemaError, match="x_ac"):
        collection.insert_stream([first, changed])
    assert backend.snapshot() == before or backend.kind in ("memory", "s3")


def test_a_bad_dataset_later_in_the_stream_is_refused(backend: Backend, monthly: Any) -> None:
    collection = _create(backend.url(), monthly)
    good = altimetry_dataset("2024-01-01", 3)
    bad = altimetry_dataset("2024-02-01", 3).select(["/ssh", "/x_ac"])  # no time
    with pytest.raises((zc.PartitionError, zc.SchemaError)):
        collection.insert_stream([good, bad])
    assert list(collection.partitions()) == []


def test_negative_buffer_is_refused(monthly: Any) -> None:
    collection = _create("memory://negative-buffer", monthly)
    with pytest.raises(ValueError, match="buffer_bytes"):
        collection.insert_stream([], buffer_bytes=-1)


def test_partitions_are_written_while_the_stream_runs(tmp_path: Path, monthly: Any) -> None:
    """A sorted stream does not hold what it has moved past: January is on disk (staged,
    not yet visible) before March arrives, and swapped in at the end."""
    root = tmp_path / "c"
    collection = _create(str(root), monthly)
    data = altimetry_dataset("2024-01-01", 90, per_day=8)
    seen: list[list[str]] = []

    def stream() -> Iterator[zc.Dataset]:
        for piece in _pieces(data, 40):
            if piece["time"].to_numpy()[0] >= numpy.datetime64("2024-03-01") and not seen:
                # January is written in the background while the stream goes on
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(
                    p.name.startswith(".month=01.zc-") for p in root.glob("year=2024/.*")
                ):
                    time.sleep(0.01)
                seen.append(sorted(p.name for p in (root / "year=2024").iterdir()))
                assert list(collection.partitions()) == []  # nothing visible yet
            yield piece

    written = collection.insert_stream(stream(), buffer_bytes=0)
    assert any(any(name.startswith(".month=01.zc-") for name in names) for names in seen)
    assert written == ["year=2024/month=01", "year=2024/month=02", "year=2024/month=03"]
    assert sorted(p.name for p in (root / "year=2024").iterdir()) == [
        "month=01",
        "month=02",
        "month=03",
        "zarr.json",
    ]
    _assert_same(collection.query(), data)
    # everything at once: the same collection
    again = _create(str(tmp_path / "again"), monthly)
    again.insert(concat(_pieces(data, 40), "time"))
    _assert_same(again.query(), collection.query())
