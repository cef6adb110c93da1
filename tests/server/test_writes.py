"""do_put: merge-aware inserts through CMD Insert and PATH descriptors, one PutResult per
written partition, and bad streams refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp

PARTITIONED = ["time", "ssh", "data_01/flag"]


def _put(
    client: flight.FlightClient, descriptor: flight.FlightDescriptor, table: pa.Table
) -> list[zp.InsertResult]:
    writer, reader = client.do_put(descriptor, table.schema)
    writer.write_table(table, max_chunksize=37)  # rows arrive in several batches
    writer.done_writing()
    acks = []
    while True:
        buffer = reader.read()
        if buffer is None:
            break
        acks.append(zp.InsertResult.FromString(buffer.to_pybytes()))
    writer.close()
    return acks


def _insert_descriptor(as_json: bool = False, **fields: Any) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(
        zp.encode_command(zp.Insert(**fields), as_json=as_json)
    )


def _new_rows(h: Any) -> tuple[zc.Dataset, pa.Table]:
    """Rows from 20 February to 5 March, 30 minutes after the stored ones, other values."""
    ds = h.alti_dataset("2024-02-20T00:30", 15, seed=7, ssh_offset=100.0)
    return ds, zp.dataset_to_table(ds, axis="time")


MERGES: list[tuple[str, Any, Any]] = [
    ("", None, None),
    ("replace", "replace", None),
    ("concat", "concat", None),
    ("time_series", "time_series", None),
    ("upsert", "upsert", None),
    ("upsert_within", "upsert_within", numpy.timedelta64(1, "h")),
]


CASES = [(*m, False) for m in MERGES] + [
    (*m, True) for m in MERGES if m[0] in ("", "upsert_within")
]


@pytest.mark.parametrize(
    ("label", "merge", "tolerance", "as_json"),
    CASES,
    ids=[f"{c[0] or 'none'}-{'json' if c[3] else 'protobuf'}" for c in CASES],
)
def test_insert_command_equals_a_local_insert(
    h: Any, start_server: Any, tmp_path: Path, label: str, merge: Any, tolerance: Any, as_json: bool
) -> None:
    served = tmp_path / "served"
    local = tmp_path / "local"
    h.make_alti(str(served / "alti"), months=2)
    h.make_alti(str(local / "alti"), months=2)
    running = start_server(served)
    dataset, table = _new_rows(h)
    fields: dict[str, Any] = {"collection": "alti", "merge": label and merge}
    if tolerance is not None:
        fields["tolerance"] = zp.tolerance_to_proto(tolerance)
    acks = _put(running.client, _insert_descriptor(as_json=as_json, **fields), table)

    collection = zc.open_collection(str(local / "alti"), mode="rw")
    strategy: Any = merge
    if merge == "upsert_within":
        strategy = zc.merge.upsert_within(tolerance)
    written = collection.insert(dataset.select(PARTITIONED), merge=strategy)
    assert written == ["year=2024/month=02", "year=2024/month=03"]
    assert [list(a.partitions) for a in acks] == [[p] for p in written]
    assert all(a.collection == "alti" for a in acks)

    expected = collection.query()
    actual = zc.open_collection(str(served / "alti")).query()
    h.assert_same_bits(expected, actual)
    before = zc.open_collection(str(tmp_path / "served" / "alti")).query(filters="month == 1")
    assert before is not None
    if merge == "upsert_within":
        # the new rows are within the tolerance of stored ones: they replace them
        feb = actual["time"].to_numpy().astype("datetime64[M]") == numpy.datetime64("2024-02")
        assert int(feb.sum()) == 29 * 4
    if merge == "concat":
        assert actual.dimension_size("time") == 60 * 4 + 15 * 4


def test_insert_through_a_path_descriptor_and_a_foreign_table(
    h: Any, start_server: Any, write_root: Path
) -> None:
    running = start_server(write_root)
    dataset, table = _new_rows(h)
    # A table as another Arrow client would build it: no zcollection metadata, other widths.
    foreign = pa.table(
        {
            "time": table.column("time").cast(pa.timestamp("us")),
            "ssh": table.column("ssh"),
            "data_01/flag": table.column("data_01/flag").cast(pa.int64()),
        }
    )
    assert foreign.schema.metadata is None
    acks = _put(running.client, flight.FlightDescriptor.for_path("alti"), foreign)
    assert [list(a.partitions) for a in acks] == [["year=2024/month=02"], ["year=2024/month=03"]]
    actual = zc.open_collection(str(write_root / "alti")).query(filters="month == 3")
    expected = dataset.isel("time", slice(10 * 4, None)).select(PARTITIONED)
    # microseconds are exact for these times
    h.assert_same_bits(expected, actual.select(PARTITIONED))


def test_insert_into_a_memory_collection(h: Any, start_server: Any) -> None:
    url = "memory://server-writes-mem"
    h.make_alti(url, months=1)
    running = start_server(None, {"mem": url})
    dataset, table = _new_rows(h)
    acks = _put(running.client, _insert_descriptor(collection="mem", merge="upsert"), table)
    assert [list(a.partitions) for a in acks] == [["year=2024/month=02"], ["year=2024/month=03"]]
    stored = zc.open_collection(url).query(filters="month >= 2")
    h.assert_same_bits(dataset.select(PARTITIONED), stored.select(PARTITIONED))


def test_overwrite_false_on_an_existing_partition_writes_nothing(
    h: Any, start_server: Any, write_root: Path
) -> None:
    running = start_server(write_root)
    _, table = _new_rows(h)  # February exists, March does not
    before = h.snapshot(write_root)
    with pytest.raises(h.SERVER_ERRORS) as caught:
        _put(running.client, _insert_descriptor(collection="alti", overwrite=False), table)
    info = h.error_info(caught.value)
    assert info["code"] == "PARTITION_EXISTS"
    assert info["kind"] == "already_exists"
    assert "year=2024/month=02" in str(caught.value)
    assert h.snapshot(write_root) == before
    # overwrite=false on new partitions only is fine
    april_ds = h.alti_dataset("2024-04-02", 3)
    acks = _put(
        running.client,
        _insert_descriptor(as_json=True, collection="alti", overwrite=False),
        zp.dataset_to_table(april_ds, axis="time"),
    )
    assert [list(a.partitions) for a in acks] == [["year=2024/month=04"]]


def _bad_tables(table: pa.Table) -> dict[str, pa.Table]:
    n = table.num_rows
    time, ssh, flag = (table.column(c) for c in PARTITIONED)
    wrong_shape = pa.FixedShapeTensorArray.from_numpy_ndarray(numpy.zeros((n, 4), "float32"))
    wrong_rank = pa.FixedShapeTensorArray.from_numpy_ndarray(numpy.zeros((n, 3, 2), "float32"))
    other_schema = json.loads(table.schema.metadata[b"zcollection.schema"])
    for variable in other_schema["variables"]:
        if variable["name"] == "ssh":
            variable["dtype"] = "<f8" if isinstance(variable["dtype"], str) else variable["dtype"]
    return {
        "time as text": pa.table(
            {"time": pa.array([str(i) for i in range(n)]), "ssh": ssh, "data_01/flag": flag}
        ),
        "flag truncated": pa.table(
            {"time": time, "ssh": ssh, "data_01/flag": pa.array(numpy.full(n, 0.5))}
        ),
        "flag out of range": pa.table(
            {"time": time, "ssh": ssh, "data_01/flag": pa.array(-numpy.arange(n))}
        ),
        "ssh as text": pa.table({"time": time, "ssh": pa.array(["x"] * n), "data_01/flag": flag}),
        "unknown column": pa.table(
            {"time": time, "ssh": ssh, "data_01/flag": flag, "bogus": pa.array(numpy.zeros(n))}
        ),
        "immutable column": pa.table(
            {
                "time": time,
                "ssh": ssh,
                "data_01/flag": flag,
                "x_ac": pa.array(numpy.zeros(n, "int16")),
            }
        ),
        "tensor shape": pa.table({"time": time, "ssh": wrong_shape, "data_01/flag": flag}),
        "tensor rank": pa.table({"time": time, "ssh": wrong_rank, "data_01/flag": flag}),
        "missing variable": pa.table({"time": time, "ssh": ssh}),
        "missing axis": pa.table({"ssh": ssh, "data_01/flag": flag}),
        "foreign schema metadata": table.replace_schema_metadata(
            {**table.schema.metadata, b"zcollection.schema": json.dumps(other_schema).encode()}
        ),
        "garbage schema metadata": table.replace_schema_metadata(
            {**table.schema.metadata, b"zcollection.schema": b"{not json"}
        ),
    }


def test_bad_streams_are_refused_and_nothing_is_written(
    h: Any, start_server: Any, write_root: Path
) -> None:
    running = start_server(write_root)
    _, table = _new_rows(h)
    before = h.snapshot(write_root)
    codes = {}
    for label, bad in _bad_tables(table).items():
        for descriptor in (
            flight.FlightDescriptor.for_path("alti"),
            _insert_descriptor(collection="alti", merge="upsert"),
        ):
            with pytest.raises(h.SERVER_ERRORS) as caught:
                _put(running.client, descriptor, bad)
            assert isinstance(caught.value, pa.ArrowInvalid), label
            info = h.error_info(caught.value)
            assert info["kind"] == "invalid_argument", (label, str(caught.value))
            codes[label] = info["code"]
            assert h.snapshot(write_root) == before, label
    assert set(codes.values()) <= {"SCHEMA_ERROR", "PARTITION_ERROR"}, codes
    # the server keeps serving
    assert (
        len(running.client.get_flight_info(flight.FlightDescriptor.for_path("alti")).endpoints) == 3
    )


@pytest.mark.parametrize(
    ("descriptor", "code", "kind"),
    [
        (flight.FlightDescriptor.for_path("nowhere"), "COLLECTION_NOT_FOUND", "not_found"),
        (
            flight.FlightDescriptor.for_path("alti", "year=2024/month=02"),
            "INVALID_REQUEST",
            "invalid_argument",
        ),
        (
            _insert_descriptor(collection="alti", merge="average"),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            _insert_descriptor(collection="alti", merge="upsert_within"),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            _insert_descriptor(
                collection="alti",
                merge="upsert_within",
                tolerance=zp.Tolerance(value=1.5, unit="h"),
            ),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            _insert_descriptor(
                collection="alti", merge="upsert_within", tolerance=zp.Tolerance(value=3600.0)
            ),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            _insert_descriptor(
                collection="alti", merge="upsert_within", tolerance=zp.Tolerance(value=-1, unit="s")
            ),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            flight.FlightDescriptor.for_command(zp.encode_command(zp.Query(collection="alti"))),
            "INVALID_REQUEST",
            "invalid_argument",
        ),
        (
            flight.FlightDescriptor.for_command(b"\xff\xfe garbage"),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (
            flight.FlightDescriptor.for_command(b'{"insert": {"collection": "alti", "merj": "x"}}'),
            "INVALID_COMMAND",
            "invalid_argument",
        ),
        (_insert_descriptor(collection="../alti"), "INVALID_NAME", "invalid_argument"),
    ],
    ids=[
        "unknown collection",
        "partition descriptor",
        "unknown merge",
        "upsert_within without tolerance",
        "fractional tolerance with a unit",
        "numeric tolerance on a datetime axis",
        "negative tolerance",
        "query command",
        "garbage",
        "unknown json field",
        "bad name",
    ],
)
def test_refused_inserts(
    h: Any,
    start_server: Any,
    write_root: Path,
    descriptor: flight.FlightDescriptor,
    code: str,
    kind: str,
) -> None:
    running = start_server(write_root)
    _, table = _new_rows(h)
    before = h.snapshot(write_root.parent)
    with pytest.raises(h.SERVER_ERRORS) as caught:
        _put(running.client, descriptor, table)
    info = h.error_info(caught.value)
    assert (info["code"], info["kind"]) == (code, kind), str(caught.value)
    assert h.snapshot(write_root.parent) == before


def _interleaved(h: Any) -> pa.Table:
    """February rows, then March rows, then February rows again."""
    february = zp.dataset_to_table(h.alti_dataset("2024-02-03", 2, seed=1), axis="time")
    march = zp.dataset_to_table(h.alti_dataset("2024-03-03", 2, seed=2), axis="time")
    again = zp.dataset_to_table(h.alti_dataset("2024-02-13", 2, seed=3), axis="time")
    return pa.concat_tables([february, march, again])


@pytest.mark.parametrize(("server_buffer", "command_buffer"), [(0, None), (0, 10**12), (2**30, 0)])
def test_rows_of_a_written_partition_are_refused_and_nothing_is_written(
    h: Any, start_server: Any, write_root: Path, server_buffer: int, command_buffer: int | None
) -> None:
    """The server writes a partition once the stream has passed it and more than
    min(put_buffer_bytes, the command's buffer_bytes) are held; rows coming back for it
    are refused, and the partitions written aside are dropped."""
    running = start_server(write_root, put_buffer_bytes=server_buffer)
    table = _interleaved(h)
    before = h.snapshot(write_root)
    fields: dict[str, Any] = {"collection": "alti"}
    if command_buffer is not None:
        fields["buffer_bytes"] = command_buffer
    with pytest.raises(h.SERVER_ERRORS) as caught:
        _put(running.client, _insert_descriptor(**fields), table)
    info = h.error_info(caught.value)
    assert (info["kind"], info["code"]) == ("invalid_argument", "PARTITION_ERROR")
    assert "arrived after it was written" in str(caught.value)
    assert h.snapshot(write_root) == before
    if server_buffer:  # within the buffer, rows may come in any order
        acks = _put(
            running.client, _insert_descriptor(collection="alti", buffer_bytes=2**20), table
        )
        assert sorted(p for a in acks for p in a.partitions) == [
            "year=2024/month=02",
            "year=2024/month=03",
        ]


def test_a_client_can_abandon_a_put(h: Any, start_server: Any, write_root: Path) -> None:
    running = start_server(write_root)
    _, table = _new_rows(h)
    before = h.snapshot(write_root)
    writer, reader = running.client.do_put(
        _insert_descriptor(collection="alti", buffer_bytes=0), table.schema
    )
    writer.write_table(table, max_chunksize=37)
    writer.write_metadata(pa.py_buffer(zp.ABORT_PUT + b": the source failed"))
    with pytest.raises(h.SERVER_ERRORS) as caught:
        writer.done_writing()
        reader.read()
        writer.close()
    assert "the client abandoned the put: the source failed" in str(caught.value)
    assert h.error_info(caught.value)["kind"] == "invalid_argument"
    assert h.snapshot(write_root) == before


def test_stalled_puts_do_not_hold_up_other_calls(
    h: Any, start_server: Any, write_root: Path
) -> None:
    """A put waits for its sender in a thread of its own: more stalled puts than the engine
    has shared workers leave queries (and their codecs) running."""
    for i in range(10):
        h.make_alti(str(write_root / f"c{i}"), months=1)
    running = start_server(write_root)
    table = zp.dataset_to_table(h.alti_dataset("2024-03-03", 2), axis="time")
    stalled = []
    for i in range(10):
        client = flight.connect(f"grpc://127.0.0.1:{running.server.port}")
        writer, _ = client.do_put(_insert_descriptor(collection=f"c{i}"), table.schema)
        writer.write_table(table.slice(0, 3))  # then nothing: the sender went quiet
        stalled.append((client, writer))
    try:
        ticket = flight.Ticket(zp.encode_command(zp.Query(collection="alti")))
        options = flight.FlightCallOptions(timeout=20)
        result = running.client.do_get(ticket, options).read_all()
        assert result.num_rows == h.alti_dataset("2024-01-01", 60)["time"].to_numpy().size
    finally:
        for client, writer in stalled:
            writer.close()
            client.close()
    # each abandoned put wrote nothing or all of its rows, never half
    for i in range(10):
        months = list(zc.open_collection(str(write_root / f"c{i}")).partitions())
        assert months in (["year=2024/month=01"], ["year=2024/month=01", "year=2024/month=03"])
