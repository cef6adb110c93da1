"""The contract from Flight SQL: the ADBC Flight SQL driver (``adbc-driver-flightsql``, Go)
connects, runs our JSON query as the statement text and fetches the result as an Arrow table,
which must equal the engine's own query; calls the server does not offer answer UNIMPLEMENTED
and the server keeps serving.

What the driver sends: ``GetFlightInfo(CommandGetSqlInfo)`` when it connects (UNIMPLEMENTED:
it carries on), the ``CreatePreparedStatement`` action then ``GetFlightInfo`` of a
``CommandPreparedStatementQuery`` and ``DoGet`` of each endpoint for ``cursor.execute``,
``ClosePreparedStatement`` and ``CloseSession`` (UNIMPLEMENTED) when it is done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from google.protobuf import any_pb2
from zcollection_proto.flight_sql_pb2 import CommandStatementQuery, TicketStatementQuery
from zcollection_server.flight_sql import TYPE_PREFIX, pack, unpack

from .conftest import Served

dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")
adbc = pytest.importorskip("adbc_driver_manager")

#: Statements (our JSON queries) and what the engine is asked for each.
STATEMENTS: dict[str, dict[str, Any]] = {
    "filtered": {
        "query": {"collection": "altimetry", "filters": "month == 1", "variables": ["time", "ssh"]}
    },
    "everything": {"query": {"collection": "altimetry"}},
    "selection": {
        "query": {
            "collection": "altimetry",
            "variables": ["ssh", "time"],
            "selection": {
                "lower": {"text": "2024-01-20T00:00:00", "inclusive": True},
                "upper": {"text": "2024-02-10T00:00:00", "inclusive": False},
            },
        }
    },
    "nothing": {"query": {"collection": "altimetry", "filters": "month == 13"}},
}


@pytest.fixture(scope="module")
def connection(interop_server: Served) -> Iterator[Any]:
    with dbapi.connect(interop_server.uri, autocommit=True) as conn:
        yield conn


@pytest.fixture
def cursor(connection: Any) -> Iterator[Any]:
    with connection.cursor() as cur:
        yield cur


def _engine_query(root: Path, statement: dict[str, Any]) -> tuple[zc.Dataset | None, list[str]]:
    """The engine's own query of ``statement`` and the names of its partitioned variables."""
    query = statement["query"]
    collection = zc.open_collection(str(root / query["collection"]))
    selection = None
    if "selection" in query:
        bounds = query["selection"]
        selection = zc.RowSelection(
            numpy.datetime64(bounds["lower"]["text"], "ns"),
            numpy.datetime64(bounds["upper"]["text"], "ns"),
            True,
            False,
        )
    dataset = collection.query(
        filters=query.get("filters"), variables=query.get("variables"), selection=selection
    )
    axis = collection.schema.variables[collection.axis].dimensions[0]
    names = [
        name
        for name, variable in collection.schema.variables.items()
        if axis in variable.dimensions
        and (query.get("variables") is None or name in query["variables"])
    ]
    return dataset, names


def _check_table(table: pa.Table, root: Path, statement: dict[str, Any]) -> None:
    local, names = _engine_query(root, statement)
    # the partition stream schema: the partitioned variables, in the collection's order
    assert table.schema.names == names
    assert table.schema.field("ssh").type.extension_name == "arrow.fixed_shape_tensor"
    if local is None:
        assert table.num_rows == 0
        return
    assert table.num_rows == local["time"].to_numpy().shape[0] > 0
    # 1-D columns value for value, tensor columns through the wire contract's decoder
    assert table.column("time").to_numpy().tobytes() == local["time"].to_numpy().tobytes()
    remote = zp.table_to_dataset(table)
    for name in names:
        got, expected = remote[name].to_numpy(), local[name].to_numpy()
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        assert got.tobytes() == expected.tobytes(), name
    # the tensor storage holds the same values, row after row
    storage = table.column("ssh").combine_chunks().storage.flatten().to_numpy()
    assert storage.tobytes() == local["ssh"].to_numpy().tobytes()


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_execute_and_fetch_equal_the_engine_query(
    cursor: Any, interop_server: Served, name: str
) -> None:
    statement = STATEMENTS[name]
    cursor.execute(json.dumps(statement))
    table = cursor.fetch_arrow_table()
    _check_table(table, interop_server.root, statement)
    assert [column[0] for column in cursor.description] == table.schema.names


def test_schema_and_prepared_statement(cursor: Any) -> None:
    text = json.dumps(STATEMENTS["filtered"])
    schema = cursor.adbc_execute_schema(text)  # GetSchema of a CommandStatementQuery
    assert schema.names == ["time", "ssh"]
    assert cursor.adbc_prepare(text) is None  # no parameters
    cursor.execute(text)  # the same statement: the prepared one runs
    assert cursor.fetch_arrow_table().schema.names == ["time", "ssh"]


def test_statement_without_prepared_statement(connection: Any, interop_server: Served) -> None:
    """A statement executed directly: GetFlightInfo(CommandStatementQuery) and DoGet."""
    statement = STATEMENTS["filtered"]
    low = adbc.AdbcStatement(connection.adbc_connection)
    try:
        low.set_sql_query(json.dumps(statement))
        handle, rows = low.execute_query()
        table = pa.RecordBatchReader._import_from_c(handle.address).read_all()
    finally:
        low.close()
    assert rows in (-1, table.num_rows)
    _check_table(table, interop_server.root, statement)


def test_flight_sql_messages_on_the_wire(interop_server: Served) -> None:
    """The same through pyarrow's Flight client: the descriptor is echoed, every ticket is a
    TicketStatementQuery over our own PartitionTicket, and no immutable endpoint is sent."""
    statement = STATEMENTS["filtered"]
    command = pack(CommandStatementQuery(query=json.dumps(statement)))
    descriptor = flight.FlightDescriptor.for_command(command)
    with flight.connect(interop_server.uri) as client:
        info = client.get_flight_info(descriptor)
        assert info.descriptor.command == command
        assert info.schema.names == ["time", "ssh"]
        assert client.get_schema(descriptor).schema == info.schema
        tables = []
        for endpoint in info.endpoints:
            found = unpack(endpoint.ticket.ticket)
            assert found is not None and found[0] == "TicketStatementQuery"
            handle = TicketStatementQuery.FromString(found[1]).statement_handle
            assert isinstance(zp.command_body(zp.decode_command(handle)), zp.PartitionTicket)
            tables.append(client.do_get(endpoint.ticket).read_all())
    table = pa.concat_tables(tables)
    assert table.num_rows == info.total_records
    _check_table(table, interop_server.root, statement)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("SELECT * FROM altimetry", "is a zcollection JSON query"),
        ("{not json", "[INVALID_COMMAND]"),
        ('{"query": {"collection": "nope"}}', "[COLLECTION_NOT_FOUND]"),
        ('{"query": {"collection": "../etc"}}', "[INVALID_NAME]"),
        (
            '{"query": {"collection": "altimetry", "filters": "x(("}}',
            "[EXPRESSION_ERROR]",
        ),
        (
            '{"partition": {"collection": "altimetry", "partition": "year=2024/month=01"}}',
            "a query command, not PartitionTicket",
        ),
        (
            '{"query": {"collection": "altimetry", "variables": ["x_ac"]}}',
            "along the partitioning axis, not 'x_ac'",
        ),
    ],
)
def test_bad_statements_raise_clear_errors(
    connection: Any, interop_server: Served, text: str, words: str
) -> None:
    # ProgrammingError: what the driver raises for INVALID_ARGUMENT and NOT_FOUND
    with connection.cursor() as cur, pytest.raises(adbc.ProgrammingError) as caught:
        cur.execute(text)
        cur.fetch_arrow_table()
    message = str(caught.value)
    assert words in message
    assert "(request " in message
    assert "Traceback" not in message
    _still_serving(connection, interop_server)


def test_unsupported_calls_are_unimplemented(connection: Any, interop_server: Served) -> None:
    # metadata queries
    with pytest.raises(adbc.NotSupportedError, match=r"UNIMPLEMENTED.*CommandGetDbSchemas"):
        connection.adbc_get_objects().read_all()
    with pytest.raises(adbc.NotSupportedError, match="UNIMPLEMENTED"):
        connection.adbc_get_table_types()
    # parameters: do_put of the prepared statement
    with connection.cursor() as cur, pytest.raises(adbc.NotSupportedError, match="do_put"):
        cur.execute(json.dumps(STATEMENTS["filtered"]), parameters=(1,))
    # the driver falls back on its own info when CommandGetSqlInfo is not offered
    assert connection.adbc_get_info()["driver_name"].startswith("ADBC Flight SQL")
    _still_serving(connection, interop_server)


@pytest.mark.parametrize(
    "call",
    ["sql_info", "tables", "transaction", "ticket", "nested_ticket", "action", "put"],
)
def test_unsupported_flight_sql_messages(interop_server: Served, call: str) -> None:
    """The Flight SQL messages the driver did not send above, straight from pyarrow."""
    sql_info = _packed("CommandGetSqlInfo", b"\x0a\x01\x08")  # info: [8]
    with flight.connect(interop_server.uri) as client:
        with pytest.raises((pa.ArrowNotImplementedError, pa.ArrowInvalid)) as caught:
            if call == "sql_info":
                client.get_flight_info(flight.FlightDescriptor.for_command(sql_info))
            elif call == "tables":
                command = _packed("CommandGetTables")
                client.get_schema(flight.FlightDescriptor.for_command(command))
            elif call == "transaction":
                command = pack(CommandStatementQuery(query="{}", transaction_id=b"t1"))
                client.get_flight_info(flight.FlightDescriptor.for_command(command))
            elif call == "ticket":
                client.do_get(flight.Ticket(sql_info)).read_all()
            elif call == "nested_ticket":
                inner = pack(TicketStatementQuery(statement_handle=b"x"))
                ticket = pack(TicketStatementQuery(statement_handle=inner))
                client.do_get(flight.Ticket(ticket)).read_all()
            elif call == "action":
                list(client.do_action(flight.Action("BeginTransaction", b"")))
            else:
                writer, _ = client.do_put(
                    flight.FlightDescriptor.for_command(sql_info), pa.schema([("a", pa.int64())])
                )
                writer.close()
        expected = pa.ArrowInvalid if call == "nested_ticket" else pa.ArrowNotImplementedError
        assert type(caught.value) is expected
        assert "(request " in str(caught.value)
        # the server keeps serving
        assert [info.descriptor.path for info in client.list_flights()] == [[b"altimetry"]]


def _packed(name: str, value: bytes = b"") -> bytes:
    """A Flight SQL message ``name`` packed in an Any."""
    return any_pb2.Any(type_url=TYPE_PREFIX + name, value=value).SerializeToString()


def _still_serving(connection: Any, served: Served) -> None:
    with connection.cursor() as cur:
        cur.execute(json.dumps(STATEMENTS["filtered"]))
        _check_table(cur.fetch_arrow_table(), served.root, STATEMENTS["filtered"])
