"""Big arrays are read block by block into one output array (bounded memory): the result is
bit for bit what a whole read gives, whatever the dtype, chunking, shards and fill chunks."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest
import zcollection as zc
from zcollection.collection import zarr_io

ROWS = 1000


def _schema(profile: str) -> zc.DatasetSchema:
    codecs = zc.codecs.profile(profile)
    builder = (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_dimension("x", size=3, chunks=3)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",), codecs=codecs)
    )
    for name, dtype, fill in (
        ("ssh", "float32", numpy.float32("nan")),
        ("big", ">f8", numpy.float64("nan")),
        ("when", "datetime64[s]", numpy.datetime64("NaT", "s")),
        ("label", "<U5", ""),
        ("count", "uint16", 7),
    ):
        builder = builder.with_variable(
            name, dtype=dtype, dimensions=("time", "x"), fill_value=fill, codecs=codecs
        )
    return builder.build()


def _dataset(schema: zc.DatasetSchema) -> zc.Dataset:
    known = schema.all_variables()
    rng = numpy.random.default_rng(3)
    time = numpy.datetime64("2024-01-01", "ns") + numpy.arange(ROWS).astype("timedelta64[h]")
    ssh = rng.normal(size=(ROWS, 3)).astype("float32")
    ssh[100:300] = numpy.float32("nan")  # whole chunks equal to the fill value
    ssh.view("uint32")[5, 1] = 0xFFC00123  # a NaN payload
    big = rng.normal(size=(ROWS, 3)).astype(">f8")
    when = numpy.datetime64("2020-01-01", "s") + rng.integers(0, 10**6, (ROWS, 3)).astype(
        "timedelta64[s]"
    )
    when[7] = numpy.datetime64("NaT", "s")
    label = numpy.array([[f"r{i % 997}"[:5]] * 3 for i in range(ROWS)], dtype="<U5")
    count = rng.integers(0, 1000, (ROWS, 3)).astype("uint16")
    count[:128] = 7
    arrays = {"time": time, "ssh": ssh, "big": big, "when": when, "label": label, "count": count}
    return zc.Dataset(schema, {k: zc.Variable(known["/" + k], v) for k, v in arrays.items()})


@pytest.mark.parametrize("profile", ["local-fast", "cloud-balanced"])
def test_block_reads_equal_whole_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    schema = _schema(profile)
    data = _dataset(schema)
    collection = zc.create_collection(
        str(tmp_path / "c"),
        schema=schema,
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="M"),
    )
    collection.insert(data)
    whole = collection.query()
    monkeypatch.setattr(zarr_io, "READ_WHOLE_MAX_BYTES", 0)
    monkeypatch.setattr(zarr_io, "READ_BLOCK_BYTES", 1)  # one chunk of rows per block
    blocks = collection.query()
    assert whole is not None and blocks is not None
    for name in data.all_variables():
        expected = data[name].to_numpy()
        got, reference = blocks[name].to_numpy(), whole[name].to_numpy()
        assert got.dtype == reference.dtype and got.shape == reference.shape == expected.shape
        assert got.tobytes() == reference.tobytes(), name
        assert got.tobytes() == expected.astype(got.dtype).tobytes(), name


@pytest.mark.parametrize("profile", ["local-fast", "cloud-balanced"])
def test_a_query_reads_partitions_into_one_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    """Each partition is decoded into its rows of one array per variable, in key order, bit
    for bit, whether whole or block by block; a filter or a selection of rows as well."""
    schema = _schema(profile)
    data = _dataset(schema)
    collection = zc.create_collection(
        str(tmp_path / "c"),
        schema=schema,
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="D"),
    )
    collection.insert(data)
    assert len(list(collection.partitions())) == 42
    for whole_max in (zarr_io.READ_WHOLE_MAX_BYTES, 0):
        monkeypatch.setattr(zarr_io, "READ_WHOLE_MAX_BYTES", whole_max)
        monkeypatch.setattr(zarr_io, "READ_BLOCK_BYTES", 1)
        result = collection.query()
        assert result is not None
        for name in data.all_variables():
            got = result[name].to_numpy()
            expected = data[name].to_numpy().astype(got.dtype)
            assert got.dtype == schema.all_variables()["/" + name].dtype, name
            assert got.tobytes() == expected.tobytes(), name
        some = collection.query(filters="month == 1 and day == 3", variables=["ssh", "label"])
        assert some is not None
        rows = (data["time"].to_numpy() >= numpy.datetime64("2024-01-03")) & (
            data["time"].to_numpy() < numpy.datetime64("2024-01-04")
        )
        assert some["ssh"].to_numpy().tobytes() == data["ssh"].to_numpy()[rows].tobytes()
        assert some["label"].to_numpy().tobytes() == data["label"].to_numpy()[rows].tobytes()
