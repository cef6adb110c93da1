"""RowAssembler: the record batches of consecutive parts decoded straight into their rows."""

from __future__ import annotations

from typing import Any

import numpy
import pyarrow as pa
import pytest
import zcollection_proto as zp
from zcollection.data import Dataset, Variable
from zcollection.errors import SchemaError
from zcollection.schema import SchemaBuilder

from .test_arrow_dataset import altimetry


def _part_batches(ds: Dataset, start: int, stop: int) -> list[pa.RecordBatch]:
    return list(
        zp.dataset_to_batches(ds.isel("time", slice(start, stop)), axis="time", max_bytes=2048)
    )


def _same(expected: Dataset, actual: Dataset) -> None:
    want, got = expected.all_variables(), actual.all_variables()
    assert sorted(got) == sorted(want)
    for key, variable in want.items():
        a, b = numpy.asarray(variable.to_numpy()), numpy.asarray(got[key].to_numpy())
        assert (b.dtype, b.shape) == (a.dtype, a.shape), key
        assert b.tobytes() == a.tobytes(), key


def test_parts_fill_their_rows_in_any_order() -> None:
    ds = altimetry(1000)
    schema = zp.arrow_schema(ds.schema, axis="time")
    bounds = [(0, 300), (300, 300), (300, 1000)]  # an empty part too
    assembler = zp.RowAssembler(schema, [stop - start for start, stop in bounds])
    for index in reversed(range(len(bounds))):  # parts finish in any order
        rows = assembler.part(index)
        for batch in _part_batches(ds, *bounds[index]):
            rows.add(batch)
        rows.finish()
    result = assembler.dataset()
    expected = zp.batches_to_dataset(schema, _part_batches(ds, 0, 1000))
    _same(expected, result)
    for variable in result.all_variables().values():
        data = variable.to_numpy()
        assert data.flags.c_contiguous and data.flags.writeable


def test_a_new_attempt_at_a_part_starts_over() -> None:
    ds = altimetry(200)
    schema = zp.arrow_schema(ds.schema, axis="time")
    assembler = zp.RowAssembler(schema, [200])
    batches = _part_batches(ds, 0, 200)
    first = assembler.part(0)
    for batch in batches[: len(batches) // 2]:
        first.add(batch)  # a stream that broke: never finished
    second = assembler.part(0)
    for batch in batches:
        second.add(batch)
    second.finish()
    _same(zp.batches_to_dataset(schema, batches), assembler.dataset())


def test_parts_that_send_other_rows_than_announced_are_merged_in_order() -> None:
    ds = altimetry(1000)
    schema = zp.arrow_schema(ds.schema, axis="time")
    sent = [(0, 400), (400, 600), (600, 1000)]
    announced = [300, 500, 400]  # more rows than announced, fewer, exactly
    assembler = zp.RowAssembler(schema, announced)
    for index, bounds in enumerate(sent):
        rows = assembler.part(index)
        for batch in _part_batches(ds, *bounds):
            rows.add(batch)
        rows.finish()
    _same(zp.batches_to_dataset(schema, _part_batches(ds, 0, 1000)), assembler.dataset())


def test_transposed_variables_come_back_in_their_order() -> None:
    schema_ = (
        SchemaBuilder()
        .with_dimension("time", chunks=4)
        .with_dimension("x", size=2)
        .with_dimension("y", size=3)
        .with_variable("time", dtype="i8", dimensions=("time",))
        .with_variable("a", dtype="i4", dimensions=("x", "time", "y"))
        .build()
    )
    known = schema_.all_variables()
    a = numpy.arange(2 * 10 * 3, dtype="i4").reshape(2, 10, 3)
    ds = Dataset(
        schema_,
        {
            "time": Variable(known["/time"], numpy.arange(10, dtype="i8")),
            "a": Variable(known["/a"], a),
        },
    )
    schema = zp.arrow_schema(schema_, axis="time")
    assembler = zp.RowAssembler(schema, [4, 6])
    for index, bounds in enumerate([(0, 4), (4, 10)]):
        rows = assembler.part(index)
        for batch in zp.dataset_to_batches(ds.isel("time", slice(*bounds)), axis="time"):
            rows.add(batch)
        rows.finish()
    result = assembler.dataset()
    assert numpy.array_equal(result["a"].to_numpy(), a)
    assert result["a"].to_numpy().flags.c_contiguous


def test_errors() -> None:
    ds = altimetry(10)
    schema = zp.arrow_schema(ds.schema, axis="time")
    with pytest.raises(ValueError, match="known"):
        zp.RowAssembler(schema, [-1])
    immutable = zp.immutable_arrow_schema(ds.schema, axis="time")
    with pytest.raises(SchemaError):
        zp.RowAssembler(immutable, [1])
    assembler = zp.RowAssembler(schema, [10, 0])
    assembler.part(1).finish()
    with pytest.raises(ValueError, match="finished"):
        assembler.dataset()  # part 0 never finished
    rows = assembler.part(0)
    with pytest.raises(SchemaError, match="differ"):
        rows.add(_part_batches(ds, 0, 10)[0].select(["time"]))


def test_rows_of_another_shape_cannot_be_merged() -> None:
    ds = altimetry(10)
    wider: dict[str, Any] = {}
    builder = (
        SchemaBuilder()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=4)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("ssh", dtype="float32", dimensions=("time", "x_ac"))
    )
    other = builder.build()
    known = other.all_variables()
    wider["time"] = Variable(known["/time"], ds["time"].to_numpy())
    wider["ssh"] = Variable(known["/ssh"], numpy.zeros((10, 4), dtype="f4"))
    batch = next(iter(zp.dataset_to_batches(Dataset(other, wider), axis="time")))
    narrow = zp.arrow_schema(ds.schema.select(["/time", "/ssh"]), axis="time")
    assembler = zp.RowAssembler(narrow, [10])
    rows = assembler.part(0)
    rows.add(batch)  # 4 columns of ssh where 3 were announced: kept aside
    rows.finish()
    with pytest.raises(SchemaError, match="ssh"):
        assembler.dataset()
