"""End to end reads with a plain pyarrow.flight client: discovery, flight infos, every endpoint,
query tickets, batch caps, schemas, variable and row selections."""

from __future__ import annotations

import json
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp

#: Bytes of one row of alti: time (8) + ssh (3 x 4) + data_01/flag (1).
ALTI_ROW_BYTES = 21


def _engine(read_server: Any, name: str) -> zc.Collection:
    if name == "mem":
        return zc.open_collection(read_server.server.settings.collections["mem"])
    return zc.open_collection(str(read_server.root / name))


def _ticket_body(endpoint: flight.FlightEndpoint) -> Any:
    return zp.command_body(zp.decode_command(endpoint.ticket.ticket))


def _reassemble(
    h: Any, client: flight.FlightClient, info: flight.FlightInfo
) -> dict[str, zc.Variable]:
    """Read every endpoint of ``info``; return the variables they hold together."""
    batches: list[pa.RecordBatch] = []
    schema = None
    immutable: zc.Dataset | None = None
    for endpoint in info.endpoints:
        received = h.read(client, endpoint.ticket)
        if isinstance(_ticket_body(endpoint), zp.ImmutableTicket):
            assert immutable is None
            assert received.table.num_rows == 1
            immutable = zp.immutable_from_table(received.table)
        else:
            assert received.table.schema == info.schema
            schema = received.table.schema
            batches.extend(received.batches)
    variables: dict[str, zc.Variable] = {}
    if schema is not None:
        partitioned = zp.batches_to_dataset(schema, batches)
        variables.update(partitioned.all_variables())
    if immutable is not None:
        variables.update(immutable.all_variables())
    return variables


def _assert_same_variables(h: Any, expected: zc.Dataset, variables: dict[str, zc.Variable]) -> None:
    """Same variables as ``expected``, bit for bit, with the same schemas."""
    want = expected.all_variables()
    assert sorted(variables) == sorted(want)
    for key, variable in want.items():
        a = numpy.asarray(variable.to_numpy())
        b = numpy.asarray(variables[key].to_numpy())
        assert (b.dtype.str, b.shape) == (a.dtype.str, a.shape), key
        assert b.tobytes() == a.tobytes(), key
        assert variables[key].schema == variable.schema, key


# -- discovery ---------------------------------------------------------------------------------
def test_list_flights_one_info_per_collection(read_server: Any) -> None:
    client = read_server.client
    infos = list(client.list_flights())
    names = [info.descriptor.path[0].decode() for info in infos]
    assert sorted(names) == ["alti", "mem", "seq/orbits"]
    assert len(names) == len(set(names))
    for info in infos:
        assert info.descriptor.descriptor_type == flight.DescriptorType.PATH
        assert len(info.descriptor.path) == 1
        assert info.endpoints == []
        assert info.schema == client.get_schema(info.descriptor).schema
        assert b"zcollection.schema" in info.schema.metadata
    alti = next(i for i in infos if i.descriptor.path == [b"alti"])
    assert alti.schema.names == ["time", "ssh", "data_01/flag"]
    assert alti.schema.field("ssh").type.extension_name == "arrow.fixed_shape_tensor"


@pytest.mark.parametrize("name", ["alti", "seq/orbits", "mem"])
def test_flight_info_of_a_collection(read_server: Any, name: str) -> None:
    collection = _engine(read_server, name)
    info = read_server.client.get_flight_info(flight.FlightDescriptor.for_path(name))
    assert info.ordered is True
    paths = list(collection.partitions())
    immutable = any(v.immutable for v in collection.schema.all_variables().values())
    assert len(info.endpoints) == len(paths) + int(immutable)
    bodies = [_ticket_body(e) for e in info.endpoints]
    assert [b.partition for b in bodies if isinstance(b, zp.PartitionTicket)] == paths
    assert all(b.collection == name for b in bodies)
    if immutable:
        assert isinstance(bodies[-1], zp.ImmutableTicket)
    expected = collection.query()
    assert expected is not None
    rows = expected.dimension_size(collection.axis)
    assert info.total_records == rows
    if name != "seq/orbits":
        assert info.total_bytes == rows * ALTI_ROW_BYTES
    else:
        assert info.total_bytes == rows * 16


def test_partitions_in_key_order_not_string_order(read_server: Any) -> None:
    info = read_server.client.get_flight_info(flight.FlightDescriptor.for_path("seq/orbits"))
    assert [_ticket_body(e).partition for e in info.endpoints] == ["num=1", "num=2", "num=10"]


@pytest.mark.parametrize("name", ["alti", "seq/orbits", "mem"])
def test_every_endpoint_reassembles_the_engine_query(h: Any, read_server: Any, name: str) -> None:
    client = read_server.client
    info = client.get_flight_info(flight.FlightDescriptor.for_path(name))
    expected = _engine(read_server, name).query()
    _assert_same_variables(h, expected, _reassemble(h, client, info))


def test_flight_info_of_one_partition(h: Any, read_server: Any) -> None:
    client = read_server.client
    descriptor = flight.FlightDescriptor.for_path("alti", "year=2024/month=02")
    info = client.get_flight_info(descriptor)
    assert len(info.endpoints) == 1
    body = _ticket_body(info.endpoints[0])
    assert isinstance(body, zp.PartitionTicket)
    assert body.partition == "year=2024/month=02"
    assert info.total_records == 29 * 4
    received = h.read(client, info.endpoints[0].ticket)
    expected = _engine(read_server, "alti").query(
        filters="year == 2024 and month == 2", variables=["time", "ssh", "data_01/flag"]
    )
    h.assert_same_bits(expected, zp.table_to_dataset(received.table))
    assert client.get_schema(descriptor).schema == received.table.schema


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_flight_info_of_a_query_command(h: Any, read_server: Any, as_json: bool) -> None:
    client = read_server.client
    descriptor = h.query_descriptor(as_json=as_json, collection="alti", filters="month >= 2")
    if as_json:
        assert json.loads(descriptor.command) == {
            "query": {"collection": "alti", "filters": "month >= 2"}
        }
    info = client.get_flight_info(descriptor)
    bodies = [_ticket_body(e) for e in info.endpoints]
    assert [type(b).__name__ for b in bodies] == [
        "PartitionTicket",
        "PartitionTicket",
        "ImmutableTicket",
    ]
    assert [b.partition for b in bodies[:2]] == ["year=2024/month=02", "year=2024/month=03"]
    expected = _engine(read_server, "alti").query(filters="month >= 2")
    assert info.total_records == expected.dimension_size("time")
    assert info.total_bytes == info.total_records * ALTI_ROW_BYTES
    _assert_same_variables(h, expected, _reassemble(h, client, info))


def test_handwritten_json_query_with_camel_case(h: Any, read_server: Any) -> None:
    text = b' {"query": {"collection": "alti", "filters": "month == 1", "maxBatchBytes": "2048"}}'
    info = read_server.client.get_flight_info(flight.FlightDescriptor.for_command(text))
    body = _ticket_body(info.endpoints[0])
    assert body.partition == "year=2024/month=01"
    assert body.max_batch_bytes == 2048


@pytest.mark.parametrize("name", ["alti", "seq/orbits", "mem"])
def test_query_ticket_straight_to_do_get_streams_every_partition_in_order(
    h: Any, read_server: Any, name: str
) -> None:
    collection = _engine(read_server, name)
    ticket = zp.encode_command(zp.Query(collection=name))
    received = h.read(read_server.client, ticket)
    paths = list(collection.partitions())
    seen = []
    for raw in received.metadata:
        assert raw is not None
        meta = zp.BatchMetadata.FromString(raw)
        assert meta.collection == name
        if not seen or seen[-1] != meta.partition:
            seen.append(meta.partition)
    assert seen == paths  # every partition, in key order, each once
    partitioned = [p for p, v in collection.schema.all_variables().items() if not v.immutable]
    expected = collection.query(variables=partitioned)
    h.assert_same_bits(expected, zp.table_to_dataset(received.table))


def test_batch_metadata_names_the_partition_of_its_rows(h: Any, read_server: Any) -> None:
    ticket = zp.encode_command(zp.Query(collection="alti", max_batch_bytes=1024))
    received = h.read(read_server.client, ticket)
    for batch, raw in zip(received.batches, received.metadata, strict=True):
        meta = zp.BatchMetadata.FromString(raw)
        months = batch.column("time").to_numpy().astype("datetime64[M]")
        assert set(months.astype(str)) == {
            meta.partition.replace("year=", "").replace("/month=", "-")
        }


def test_batches_are_capped_by_the_query_and_by_the_server(h: Any, read_server: Any) -> None:
    client = read_server.client
    server_cap = read_server.server.settings.max_batch_bytes
    assert server_cap == 4096
    small = h.read(client, zp.encode_command(zp.Query(collection="alti", max_batch_bytes=1024)))
    assert all(0 < b.nbytes <= 1024 for b in small.batches)
    assert len(small.batches) >= small.table.num_rows * ALTI_ROW_BYTES // 1024
    huge = h.read(client, zp.encode_command(zp.Query(collection="alti", max_batch_bytes=10**9)))
    assert all(b.nbytes <= server_cap for b in huge.batches)
    assert max(b.nbytes for b in huge.batches) > 1024
    h.assert_same_bits(zp.table_to_dataset(small.table), zp.table_to_dataset(huge.table))
    # The cap travels in the partition tickets of get_flight_info.
    info = client.get_flight_info(h.query_descriptor(collection="alti", max_batch_bytes=1500))
    for endpoint in info.endpoints[:-1]:
        assert _ticket_body(endpoint).max_batch_bytes == 1500
        received = h.read(client, endpoint.ticket)
        assert len(received.batches) > 1
        assert all(b.nbytes <= 1500 for b in received.batches)


def test_get_schema_equals_the_stream_schema(h: Any, read_server: Any) -> None:
    client = read_server.client
    for descriptor, ticket in [
        (
            flight.FlightDescriptor.for_path("alti"),
            zp.encode_command(zp.Query(collection="alti")),
        ),
        (
            h.query_descriptor(collection="alti", variables=["ssh", "time"]),
            zp.encode_command(zp.Query(collection="alti", variables=["ssh", "time"])),
        ),
        (
            h.query_descriptor(as_json=True, collection="seq/orbits", filters="num == 2"),
            zp.encode_command(zp.Query(collection="seq/orbits", filters="num == 2")),
        ),
    ]:
        schema = client.get_schema(descriptor).schema
        received = h.read(client, ticket)
        assert schema == received.table.schema
        assert schema.metadata == received.table.schema.metadata
        assert client.get_flight_info(descriptor).schema == schema


def test_variable_selection(h: Any, read_server: Any) -> None:
    client = read_server.client
    collection = _engine(read_server, "alti")
    info = client.get_flight_info(h.query_descriptor(collection="alti", variables=["ssh"]))
    assert info.schema.names == ["ssh"]
    assert all(isinstance(_ticket_body(e), zp.PartitionTicket) for e in info.endpoints)
    assert all(list(_ticket_body(e).variables) == ["ssh"] for e in info.endpoints)
    _assert_same_variables(h, collection.query(variables=["ssh"]), _reassemble(h, client, info))
    assert info.total_bytes == info.total_records * 12

    info = client.get_flight_info(h.query_descriptor(collection="alti", variables=["x_ac"]))
    assert [type(_ticket_body(e)) for e in info.endpoints] == [zp.ImmutableTicket]
    _assert_same_variables(h, collection.query(variables=["x_ac"]), _reassemble(h, client, info))

    wanted = ["/data_01/flag", "x_ac", "time"]
    info = client.get_flight_info(
        h.query_descriptor(as_json=True, collection="alti", variables=wanted)
    )
    assert info.schema.names == ["time", "data_01/flag"]
    _assert_same_variables(h, collection.query(variables=wanted), _reassemble(h, client, info))


def _one_day(kind: str) -> zp.RowSelection:
    if kind == "text":
        lower = zp.Bound(text="2024-02-10", inclusive=True)
        upper = zp.Bound(text="2024-02-11T00:00:00", inclusive=False)
    else:
        start = numpy.datetime64("2024-02-10", "s")
        lower = zp.Bound(scalar=zp.to_scalar(start), inclusive=True)
        upper = zp.Bound(
            scalar=zp.to_scalar(numpy.datetime64("2024-02-11T00:00:00.000", "ms")),
            inclusive=False,
        )
    return zp.RowSelection(lower=lower, upper=upper)


@pytest.mark.parametrize("kind", ["text", "scalar"])
def test_one_day_of_a_monthly_collection(h: Any, read_server: Any, kind: str) -> None:
    client = read_server.client
    selection = _one_day(kind)
    expected = _engine(read_server, "alti").query(
        selection=zc.RowSelection("2024-02-10", "2024-02-11", True, False)
    )
    times = expected["time"].to_numpy()
    assert times.size == 4
    assert (times.astype("datetime64[D]") == numpy.datetime64("2024-02-10")).all()
    # get_flight_info + every endpoint
    info = client.get_flight_info(h.query_descriptor(collection="alti", selection=selection))
    for endpoint in info.endpoints:
        body = _ticket_body(endpoint)
        if isinstance(body, zp.PartitionTicket):
            assert body.selection == selection
    _assert_same_variables(h, expected, _reassemble(h, client, info))
    # a query ticket straight to do_get, with a filter too
    ticket = zp.encode_command(
        zp.Query(collection="alti", filters="month == 2", selection=selection), as_json=True
    )
    received = h.read(client, ticket)
    assert received.table.num_rows == 4
    assert zp.BatchMetadata.FromString(received.metadata[0]).partition == "year=2024/month=02"
    partitioned = expected.select(["time", "ssh", "data_01/flag"])
    h.assert_same_bits(partitioned, zp.table_to_dataset(received.table))


def test_open_ended_row_selection(h: Any, read_server: Any) -> None:
    selection = zp.RowSelection(lower=zp.Bound(text="2024-03-30T12:00", inclusive=False))
    received = h.read(
        read_server.client, zp.encode_command(zp.Query(collection="alti", selection=selection))
    )
    times = received.table.column("time").to_numpy()
    assert times.size == 5  # 18:00 on the 30th, 4 rows on the 31st
    assert (times > numpy.datetime64("2024-03-30T12:00")).all()
