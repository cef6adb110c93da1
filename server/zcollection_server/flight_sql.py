"""A minimal Arrow Flight SQL front: statements whose text is a zcollection JSON query.

Flight SQL clients (the ADBC Flight SQL driver, ...) send protobuf messages packed in a
``google.protobuf.Any`` whose type URL names a message of ``arrow.flight.protocol.sql``.
The server understands:

- ``CommandStatementQuery`` in a CMD descriptor (``get_flight_info``, ``get_schema``): its text
  is one of our query commands as JSON, e.g. ``{"query": {"collection": "altimetry"}}``. The
  answer is the FlightInfo of that query without its immutable endpoint (a Flight SQL result
  has one schema: the partition stream schema), each ticket packed in a
  ``TicketStatementQuery`` whose handle is the endpoint's own ``PartitionTicket`` command;
- ``TicketStatementQuery`` tickets (``do_get``): unwrapped, then read like any ticket;
- prepared statements, without state: the ``CreatePreparedStatement`` action checks the
  statement and answers its result schema and, as the handle, our encoded query command;
  ``CommandPreparedStatementQuery`` runs that query as a statement does;
  ``ClosePreparedStatement`` has nothing to release.

Every other Flight SQL command, ticket or action (``CommandGetSqlInfo`` and the other metadata
queries, parameters, updates, transactions, sessions...) is answered UNIMPLEMENTED.

Bytes are recognized as Flight SQL by their type URL alone: our own commands are either JSON
(``{``) or a ``Command`` whose first field can never parse as such a URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow.flight as flight
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from zcollection_proto import (
    ACTION_PREFIX,
    CommandError,
    Query,
    command_body,
    decode_command,
    encode_command,
)
from zcollection_proto.flight_sql_pb2 import (
    ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult,
    CommandPreparedStatementQuery,
    CommandStatementQuery,
    TicketStatementQuery,
)

from .errors import ClientError, Unimplemented
from .requests import read_request
from .sources import partition_schema, split_variables

if TYPE_CHECKING:
    from .calllog import CallRecord
    from .server import ZCollectionFlightServer

#: Type URL prefix of the Flight SQL messages.
TYPE_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."

#: Flight SQL names of the commands and tickets the server answers.
STATEMENT = "CommandStatementQuery"
PREPARED = "CommandPreparedStatementQuery"
TICKET = "TicketStatementQuery"
#: ... and of the actions.
CREATE = "CreatePreparedStatement"
CLOSE = "ClosePreparedStatement"

#: Actions of Flight SQL (and of the Flight session extensions its clients call).
ACTIONS = frozenset(
    {
        "BeginSavepoint",
        "BeginTransaction",
        "CancelFlightInfo",
        "CancelQuery",
        "CloseSession",
        CLOSE,
        CREATE,
        "CreatePreparedSubstraitPlan",
        "EndSavepoint",
        "EndTransaction",
        "GetSessionOptions",
        "RenewFlightEndpoint",
        "SetSessionOptions",
    }
)

_EXAMPLE = '{"query": {"collection": "<name>", "filters": "<predicate>", "variables": [...]}}'
_OFFERED = (
    "this server answers Flight SQL statements (CommandStatementQuery, prepared or not) "
    f"whose text is a zcollection JSON query such as {_EXAMPLE}"
)


# -- messages ----------------------------------------------------------------------------------
def unpack(data: bytes) -> tuple[str, bytes] | None:
    """Return ``(name, message bytes)`` of a packed Flight SQL message; None for other bytes."""
    if not data.startswith(b"\x0a"):  # field 1 (type_url) first, as every encoder writes it
        return None
    packed = any_pb2.Any()
    try:
        packed.ParseFromString(data)
    except (DecodeError, ValueError, RecursionError):
        return None
    if not packed.type_url.startswith(TYPE_PREFIX):
        return None
    return packed.type_url.removeprefix(TYPE_PREFIX), packed.value


def pack(message: Message) -> bytes:
    """Return ``message`` packed in an Any under its Flight SQL name."""
    packed = any_pb2.Any(
        type_url=TYPE_PREFIX + message.DESCRIPTOR.name,
        value=message.SerializeToString(deterministic=True),
    )
    return packed.SerializeToString(deterministic=True)


def _parse[M: Message](value: bytes, message_type: type[M]) -> M:
    # Unknown fields are ignored: they are newer protocol additions, not garbage.
    message = message_type()
    try:
        message.ParseFromString(value)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise ClientError(f"invalid Flight SQL {message_type.DESCRIPTOR.name}: {exc}") from None
    return message


def _unimplemented(what: str) -> Unimplemented:
    return Unimplemented(f"Flight SQL {what} is not supported: {_OFFERED}")


def _statement(text: str, transaction_id: bytes | None) -> Query:
    """Return the query command of a statement text."""
    if transaction_id is not None:
        raise _unimplemented("transactions")
    if not text.lstrip().startswith("{"):
        raise ClientError(
            f"a Flight SQL statement is a zcollection JSON query such as {_EXAMPLE}, "
            f"not {_shorten(text)!r}"
        )
    body = command_body(decode_command(text))
    if not isinstance(body, Query):
        raise ClientError(
            f"a Flight SQL statement is a query command, not {type(body).__name__}: {_EXAMPLE}"
        )
    return body


def _prepared(handle: bytes) -> Query:
    """Return the query command of a prepared statement handle."""
    try:
        body = command_body(decode_command(handle))
    except CommandError as exc:
        raise ClientError(f"invalid prepared statement handle: {exc}") from None
    if not isinstance(body, Query):
        raise ClientError("invalid prepared statement handle: not a query command")
    return body


# -- hooks of the Flight methods ---------------------------------------------------------------
def is_statement(descriptor: flight.FlightDescriptor) -> bool:
    """Whether ``descriptor`` holds a Flight SQL statement (prepared or not)."""
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        return False
    found = unpack(descriptor.command)
    return found is not None and found[0] in (STATEMENT, PREPARED)


def query_descriptor(descriptor: flight.FlightDescriptor) -> flight.FlightDescriptor:
    """Return the CMD descriptor of our query a Flight SQL statement descriptor carries.

    Other descriptors are returned as they are.

    Raises:
        Unimplemented: For any other Flight SQL command, or a statement in a transaction.
        ClientError, CommandError: If the statement is not one of our JSON query commands.
    """
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        return descriptor
    found = unpack(descriptor.command)
    if found is None:
        return descriptor
    name, value = found
    if name == STATEMENT:
        statement = _parse(value, CommandStatementQuery)
        transaction = statement.transaction_id if statement.HasField("transaction_id") else None
        query = _statement(statement.query, transaction)
    elif name == PREPARED:
        query = _prepared(_parse(value, CommandPreparedStatementQuery).prepared_statement_handle)
    else:
        raise _unimplemented(name)
    return flight.FlightDescriptor.for_command(encode_command(query))


def without_immutable(variables: tuple[str, ...] | None, immutable: list[str]) -> list[str]:
    """Return no immutable variables for a statement result (it holds the partitioned ones).

    Raises:
        ClientError: If the query names immutable variables.
    """
    if variables and immutable:
        raise ClientError(
            "a Flight SQL result holds the variables along the partitioning axis, not "
            f"{', '.join(repr(name.lstrip('/')) for name in immutable)}: read those with the "
            "Flight API (the immutable endpoint of a query)"
        )
    return []


def statement_info(
    info: flight.FlightInfo, descriptor: flight.FlightDescriptor
) -> flight.FlightInfo:
    """Return the FlightInfo of a query as the answer to the statement ``descriptor``: the
    same endpoints, each ticket packed in a ``TicketStatementQuery``."""
    endpoints = [
        flight.FlightEndpoint(
            pack(TicketStatementQuery(statement_handle=endpoint.ticket.ticket)),
            endpoint.locations,
            expiration_time=endpoint.expiration_time,
            app_metadata=endpoint.app_metadata,
        )
        for endpoint in info.endpoints
    ]
    return flight.FlightInfo(
        info.schema,
        descriptor,
        endpoints,
        info.total_records,
        info.total_bytes,
        ordered=info.ordered,
        app_metadata=info.app_metadata,
    )


def plain_ticket(ticket: flight.Ticket) -> flight.Ticket:
    """Return our ticket a ``TicketStatementQuery`` carries; other tickets as they are.

    Raises:
        Unimplemented: For any other Flight SQL ticket.
        ClientError: If the statement handle is itself a Flight SQL message.
    """
    found = unpack(ticket.ticket)
    if found is None:
        return ticket
    name, value = found
    if name != TICKET:
        raise _unimplemented(f"ticket {name}")
    handle = _parse(value, TicketStatementQuery).statement_handle
    if unpack(handle) is not None:
        raise ClientError(f"invalid Flight SQL {TICKET}: its handle is not a command")
    return flight.Ticket(handle)


def check_put(descriptor: flight.FlightDescriptor) -> None:
    """Refuse a Flight SQL ``do_put`` (parameters, updates, bulk ingestion).

    Raises:
        Unimplemented: If ``descriptor`` holds a Flight SQL command.
    """
    if descriptor.descriptor_type == flight.DescriptorType.CMD:
        found = unpack(descriptor.command)
        if found is not None:
            raise _unimplemented(f"do_put of {found[0]}")


def do_action(
    server: ZCollectionFlightServer, record: CallRecord, name: str, body: bytes
) -> list[bytes] | None:
    """Run a Flight SQL action; return None for any other action.

    Raises:
        Unimplemented: For a Flight SQL action other than the prepared statement ones.
    """
    if name == CREATE:
        return [_create_prepared_statement(server, record, body)]
    if name == CLOSE:
        request = _parse(_action_body(name, body), ActionClosePreparedStatementRequest)
        _prepared(request.prepared_statement_handle)
        return []  # nothing is kept on the server
    if name in ACTIONS or (not name.startswith(ACTION_PREFIX) and unpack(body) is not None):
        raise _unimplemented(f"action {name!r}")
    return None


def _action_body(name: str, body: bytes) -> bytes:
    found = unpack(body)
    if found is None or found[0] != f"Action{name}Request":
        raise ClientError(f"the body of Flight SQL action {name!r} is an Action{name}Request")
    return found[1]


def _create_prepared_statement(
    server: ZCollectionFlightServer, record: CallRecord, body: bytes
) -> bytes:
    request = _parse(_action_body(CREATE, body), ActionCreatePreparedStatementRequest)
    transaction = request.transaction_id if request.HasField("transaction_id") else None
    query = _statement(request.query, transaction)
    read = read_request(query, server.settings.max_batch_bytes)
    record.collection = read.collection
    server.authorize(record, "get_schema", read.collection)
    source = server._source(read)
    partitioned, immutable = split_variables(source.schema, read.variables)
    without_immutable(read.variables, immutable)
    schema = partition_schema(source, partitioned)
    result = ActionCreatePreparedStatementResult(
        prepared_statement_handle=encode_command(query),
        dataset_schema=schema.serialize().to_pybytes(),
    )
    return pack(result)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
