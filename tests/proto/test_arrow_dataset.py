"""The Dataset <-> Arrow mapping: metadata, empty datasets, foreign tables and errors."""

from __future__ import annotations

import json

import numpy
import pyarrow as pa
import pytest
import zcollection_proto as zp
from zcollection.data import Dataset, Variable
from zcollection.errors import SchemaError
from zcollection.schema import DatasetSchema, SchemaBuilder
from zcollection_proto import arrow


def altimetry_schema() -> DatasetSchema:
    return (
        SchemaBuilder()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=3)
        .with_attribute("title", "altimetry")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            attrs={"units": "m"},
        )
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1)
        .with_group("/data_01/ku", attrs={"band": "Ku"})
        .with_dimension("range", size=2, group="/data_01/ku")
        .with_variable("power", dtype="float64", dimensions=("time", "range"), group="/data_01/ku")
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .build()
    )


def altimetry(rows: int) -> Dataset:
    schema = altimetry_schema()
    known = schema.all_variables()
    time = numpy.datetime64("2024-01-01", "ns") + numpy.arange(rows) * numpy.timedelta64(1, "h")
    return Dataset(
        schema,
        {
            "time": Variable(known["/time"], time),
            "ssh": Variable(known["/ssh"], numpy.arange(rows * 3, dtype="f4").reshape(rows, 3)),
            "x_ac": Variable(known["/x_ac"], numpy.arange(3, dtype="i2")),
            "data_01/ku/power": Variable(
                known["/data_01/ku/power"], numpy.ones((rows, 2), dtype="f8")
            ),
            "data_01/flag": Variable(known["/data_01/flag"], numpy.arange(rows, dtype="u1")),
        },
    )


def test_columns_metadata_and_nested_names() -> None:
    ds = altimetry(5)
    table = zp.dataset_to_table(
        ds, axis="time", extra_metadata={arrow.PARTITIONING_KEY: '{"name": "date"}'}
    )
    assert table.column_names == ["time", "ssh", "data_01/flag", "data_01/ku/power"]
    metadata = table.schema.metadata
    assert metadata[b"zcollection.axis"] == b"time"
    assert metadata[b"zcollection.partitioning"] == b'{"name": "date"}'
    served = DatasetSchema.from_json(json.loads(metadata[b"zcollection.schema"]))
    assert served == ds.schema.select(["time", "ssh", "/data_01/flag", "/data_01/ku/power"])
    assert "/x_ac" not in served.all_variables()
    ssh = table.schema.field("ssh")
    assert json.loads(ssh.metadata[b"zcollection.dimensions"]) == ["time", "x_ac"]
    assert json.loads(ssh.metadata[b"zcollection.fill_value"]) == "NaN"
    assert json.loads(ssh.metadata[b"zcollection.attrs"]) == {"units": "m"}
    assert ssh.metadata[b"zcollection.dtype"] == b"<f4"
    assert ssh.type.extension_name == "arrow.fixed_shape_tensor"
    assert table.schema.field("time").type == pa.timestamp("ns")

    back = zp.table_to_dataset(table)
    assert back.get_group("/data_01/ku").attrs == {"band": "Ku"}
    assert back.attrs == {"title": "altimetry"}
    assert numpy.array_equal(back["data_01/ku/power"].data, ds["data_01/ku/power"].data)
    assert sorted(back.all_variables()) == sorted(table.column_names)


def test_arrow_schema_matches_tables_and_needs_no_data() -> None:
    schema = altimetry_schema()
    extra = {arrow.PARTITIONING_KEY: "{}"}
    expected = zp.arrow_schema(schema, axis="time", extra_metadata=extra)
    for rows in (0, 1, 7):
        table = zp.dataset_to_table(altimetry(rows), axis="time", extra_metadata=extra)
        assert table.schema.equals(expected, check_metadata=True)
    immutable = zp.immutable_to_table(altimetry(2), axis="time")
    assert immutable.schema.equals(zp.immutable_arrow_schema(schema, axis="time"), True)
    assert immutable.column_names == ["x_ac"]
    assert immutable.schema.metadata[b"zcollection.immutable"] == b"true"


def test_live_attributes_travel() -> None:
    ds = altimetry(2)
    ds.attrs["history"] = "edited"
    back = zp.table_to_dataset(zp.dataset_to_table(ds, axis="time"))
    assert back.attrs == {"title": "altimetry", "history": "edited"}


def test_empty_dataset_keeps_schema_and_dtypes() -> None:
    ds = altimetry(0)
    table = zp.dataset_to_table(ds, axis="time")
    assert table.num_rows == 0
    batches = list(zp.dataset_to_batches(ds, axis="time"))
    assert [b.num_rows for b in batches] == [0]
    for back in (
        zp.table_to_dataset(table),
        zp.batches_to_dataset(table.schema, batches),
        zp.batches_to_dataset(table.schema, []),
    ):
        assert back["ssh"].data.shape == (0, 3)
        assert back["ssh"].data.dtype == numpy.dtype("f4")
        assert back["time"].data.dtype == numpy.dtype("M8[ns]")
        assert back["data_01/ku/power"].data.shape == (0, 2)
        assert back.schema == ds.schema.select(table.column_names)


def test_batches_reassemble_across_many_slices() -> None:
    ds = altimetry(1000)
    table = zp.dataset_to_table(ds, axis="time")
    batches = list(zp.dataset_to_batches(ds, axis="time", max_bytes=4096))
    assert len(batches) > 10
    assert all(b.nbytes <= 4096 for b in batches)
    back = zp.batches_to_dataset(table.schema, batches)
    for key in table.column_names:
        assert back[key].data.tobytes() == numpy.asarray(ds[key].data).tobytes()
    assert [b.num_rows for b in zp.split_batch(batches[0], max_bytes=10**9)] == [
        batches[0].num_rows
    ]
    with pytest.raises(ValueError, match="positive"):
        zp.dataset_to_batches(ds, axis="time", max_bytes=0)


def test_foreign_table_without_metadata() -> None:
    schema = (
        SchemaBuilder()
        .with_dimension("time")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("count", dtype="int64", dimensions=("time",), fill_value=-9)
        .with_variable("name", dtype="<U4", dimensions=("time",))
        .with_variable("code", dtype="S2", dimensions=("time",))
        .with_variable("value", dtype="float32", dimensions=("time",))
        .build()
    )
    table = pa.table(
        {
            "time": pa.array([0, 1_000, None], pa.timestamp("us")),
            "count": pa.array([1, None, 3], pa.int32()),
            "name": pa.array(["ab", None, "\u00e9t\u00e9"], pa.string()),
            "code": pa.array([b"x", b"yz", None], pa.binary()),
            "value": pa.array([1.5, None, 2.0], pa.float64()),
        }
    )
    with pytest.raises(SchemaError, match="metadata"):
        zp.table_to_dataset(table)
    with pytest.raises(SchemaError, match="axis"):
        zp.table_to_dataset(table, dataset_schema=schema)
    ds = zp.table_to_dataset(table, dataset_schema=schema, axis="time")
    assert ds["time"].data.tolist()[:2] == [0, 1_000_000]
    assert numpy.isnat(ds["time"].data[2])
    assert ds["count"].data.tolist() == [1, -9, 3]
    assert ds["name"].data.tolist() == ["ab", "", "\u00e9t\u00e9"]
    assert ds["code"].data.tolist() == [b"x", b"yz", b""]
    assert ds["value"].data.dtype == numpy.dtype("f4")
    assert numpy.isnan(ds["value"].data[1])


def test_foreign_nulls_without_fill_value_are_refused() -> None:
    schema = (
        SchemaBuilder()
        .with_dimension("time")
        .with_variable("n", dtype="int8", dimensions=("time",))
        .build()
    )
    table = pa.table({"n": pa.array([1, None], pa.int8())})
    with pytest.raises(SchemaError, match="fill value"):
        zp.table_to_dataset(table, dataset_schema=schema, axis="time")


def test_foreign_values_that_do_not_fit_are_refused() -> None:
    schema = (
        SchemaBuilder()
        .with_dimension("time")
        .with_variable("n", dtype="int8", dimensions=("time",))
        .with_variable("s", dtype="<U2", dimensions=("time",))
        .build()
    )
    too_big = pa.table({"n": pa.array([1000], pa.int64())})
    with pytest.raises(SchemaError, match="cannot read"):
        zp.table_to_dataset(too_big, dataset_schema=schema, axis="time")
    too_long = pa.table({"s": pa.array(["abc"])})
    with pytest.raises(SchemaError, match="does not fit"):
        zp.table_to_dataset(too_long, dataset_schema=schema, axis="time")
    wrong = pa.table({"n": pa.array(["1"])})
    with pytest.raises(SchemaError, match="does not match"):
        zp.table_to_dataset(wrong, dataset_schema=schema, axis="time")


def test_errors() -> None:
    ds = altimetry(3)
    table = zp.dataset_to_table(ds, axis="time")
    renamed_schema = table.schema.set(1, table.schema.field(1).with_name("nope"))
    renamed = pa.Table.from_arrays(table.columns, schema=renamed_schema)
    with pytest.raises(SchemaError, match="nope"):
        zp.table_to_dataset(renamed)
    with pytest.raises(ValueError, match="override"):
        zp.dataset_to_table(ds, axis="time", extra_metadata={"zcollection.axis": "x"})
    schema = ds.schema
    bad = Dataset(
        schema,
        {
            "time": ds["time"],
            "data_01/flag": Variable(
                schema.all_variables()["/data_01/flag"], numpy.zeros(4, dtype="u1")
            ),
        },
    )
    with pytest.raises(SchemaError, match="rows"):
        zp.dataset_to_table(bad, axis="time")
    unsized = (
        SchemaBuilder()
        .with_dimension("time")
        .with_dimension("free")
        .with_variable("v", dtype="f4", dimensions=("time", "free"))
        .build()
    )
    with pytest.raises(SchemaError, match="size"):
        zp.arrow_schema(unsized, axis="time")
    immutable = zp.immutable_to_table(ds, axis="time")
    with pytest.raises(SchemaError, match="one row"):
        zp.immutable_from_table(pa.concat_tables([immutable, immutable]))
    # Marked immutable: decoded as such even when an axis is given.
    assert zp.table_to_dataset(immutable, axis="time")["x_ac"].data.tolist() == [0, 1, 2]
    unmarked = immutable.replace_schema_metadata(None)
    with pytest.raises(SchemaError, match="span"):
        zp.table_to_dataset(unmarked, dataset_schema=schema, axis="time")
