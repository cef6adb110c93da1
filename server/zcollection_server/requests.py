"""Turning descriptors, tickets and commands into engine requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy
import pyarrow.flight as flight
import zcollection as zc
from zcollection_proto import (
    DEFAULT_MAX_BYTES,
    CommandError,
    ImmutableTicket,
    Insert,
    PartitionTicket,
    Query,
    command_body,
    decode_command,
    from_scalar,
    tolerance_from_proto,
)
from zcollection_proto import RowSelection as RowSelectionMessage

from .errors import ClientError
from .names import check_collection_name, check_view_name


@dataclass(frozen=True)
class ReadRequest:
    """What to read: a collection (or one of its views), partitions, variables and rows."""

    collection: str
    filters: str | None = None
    variables: tuple[str, ...] | None = None
    selection: zc.RowSelection | None = None
    #: Variable the client named for the row selection ("" : the axis variable).
    selection_variable: str = ""
    view: str | None = None
    partition: str | None = None
    immutable: bool = False
    max_batch_bytes: int = DEFAULT_MAX_BYTES


def _selection(message: RowSelectionMessage) -> zc.RowSelection | None:
    if not message.HasField("lower") and not message.HasField("upper"):
        return None

    def bound(which: str) -> tuple[Any, bool]:
        if not message.HasField(which):
            return None, True
        value = getattr(message, which)
        kind = value.WhichOneof("value")
        if kind == "text":
            return value.text, value.inclusive
        if kind == "scalar":
            return from_scalar(value.scalar), value.inclusive
        return None, value.inclusive

    lower, lower_inclusive = bound("lower")
    upper, upper_inclusive = bound("upper")
    return zc.RowSelection(lower, upper, lower_inclusive, upper_inclusive)


def read_request(body: Query | PartitionTicket | ImmutableTicket, max_bytes: int) -> ReadRequest:
    """Return the ReadRequest of a query command or a ticket."""
    check_collection_name(body.collection)
    view = body.view if body.HasField("view") and body.view else None
    if view is not None:
        check_view_name(view)
    variables = tuple(body.variables) or None
    if isinstance(body, ImmutableTicket):
        return ReadRequest(body.collection, variables=variables, view=view, immutable=True)
    requested = body.max_batch_bytes or max_bytes
    batch_bytes = max(1024, min(requested, max_bytes))
    selection = _selection(body.selection) if body.HasField("selection") else None
    selection_variable = body.selection.variable if body.HasField("selection") else ""
    if isinstance(body, PartitionTicket):
        if not body.partition:
            raise ClientError("a partition ticket needs a partition path")
        return ReadRequest(
            body.collection,
            variables=variables,
            selection=selection,
            selection_variable=selection_variable,
            view=view,
            partition=body.partition,
            max_batch_bytes=batch_bytes,
        )
    filters = body.filters if body.HasField("filters") else None
    return ReadRequest(
        body.collection,
        filters=filters or None,
        variables=variables,
        selection=selection,
        selection_variable=selection_variable,
        view=view,
        max_batch_bytes=batch_bytes,
    )


def _path_parts(descriptor: flight.FlightDescriptor) -> list[str]:
    try:
        return [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in descriptor.path]
    except UnicodeDecodeError as exc:
        raise ClientError("descriptor path components must be UTF-8") from exc


def descriptor_request(descriptor: flight.FlightDescriptor, max_bytes: int) -> ReadRequest:
    """Return the ReadRequest of a PATH or CMD descriptor."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        parts = _path_parts(descriptor)
        if len(parts) not in (1, 2):
            raise ClientError("a PATH descriptor is [collection] or [collection, partition]")
        check_collection_name(parts[0])
        partition = parts[1] if len(parts) == 2 else None
        return ReadRequest(parts[0], partition=partition, max_batch_bytes=max_bytes)
    body = command_body(decode_command(descriptor.command))
    if not isinstance(body, Query | PartitionTicket):
        raise ClientError(f"expected a query command, got {type(body).__name__}")
    return read_request(body, max_bytes)


def ticket_request(ticket: flight.Ticket, max_bytes: int) -> ReadRequest:
    """Return the ReadRequest of a do_get ticket."""
    body = command_body(decode_command(ticket.ticket))
    if not isinstance(body, Query | PartitionTicket | ImmutableTicket):
        raise ClientError(
            f"a ticket holds a query, partition or immutable command, not {type(body).__name__}"
        )
    return read_request(body, max_bytes)


@dataclass(frozen=True)
class InsertRequest:
    """A do_put: which collection, which merge strategy, overwrite or not."""

    collection: str
    merge: Any = None
    overwrite: bool = True
    immutable: bytes = b""
    rewrite: bool = False
    view: str | None = None
    partition: str = ""
    #: Rows the client lets the server hold before writing (None: the server's setting).
    buffer_bytes: int | None = None


def insert_request(descriptor: flight.FlightDescriptor) -> InsertRequest:
    """Return the InsertRequest of a do_put descriptor (CMD insert, or PATH [collection])."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        parts = _path_parts(descriptor)
        if len(parts) != 1:
            raise ClientError("a do_put PATH descriptor is [collection]")
        return InsertRequest(check_collection_name(parts[0]))
    body = command_body(decode_command(descriptor.command))
    if not isinstance(body, Insert):
        raise ClientError(f"do_put expects an insert command, got {type(body).__name__}")
    return InsertRequest(
        check_collection_name(body.collection),
        merge=None if body.rewrite or body.HasField("view") else merge_strategy(body),
        overwrite=body.overwrite if body.HasField("overwrite") else True,
        immutable=body.immutable,
        rewrite=body.rewrite,
        view=check_view_name(body.view) if body.HasField("view") else None,
        partition=body.partition,
        buffer_bytes=body.buffer_bytes if body.HasField("buffer_bytes") else None,
    )


def merge_strategy(body: Insert) -> Any:
    """Return the engine merge strategy an insert command names (None: replace slices)."""
    name = body.merge.strip()
    if not name:
        return None
    if name == "upsert_within":
        if not body.HasField("tolerance"):
            raise CommandError("merge 'upsert_within' needs a tolerance")
        try:
            return zc.merge.upsert_within(tolerance_from_proto(body.tolerance))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, CommandError):
                raise
            raise CommandError(f"invalid tolerance of 'upsert_within': {exc}") from None
    if name not in zc.merge.STRATEGIES:
        raise CommandError(
            f"unknown merge strategy {name!r}; known: upsert_within, "
            + ", ".join(zc.merge.STRATEGIES)
        )
    return name


def check_merge(merge: Any, collection: zc.Collection) -> None:
    """Refuse an ``upsert_within`` tolerance that cannot compare the collection's rows.

    The engine finds out only when it merges a partition that already exists, while it may
    be writing new partitions of the same insert: check it before anything is written.
    """
    if not isinstance(merge, zc.merge.UpsertWithin) or merge.tolerance is None:
        return
    # The variable the merge strategies compare rows on (the engine's choice).
    name = collection._merge_axis()
    variable = collection.schema.variables.get(name)
    if variable is None:
        return
    kind = variable.dtype.kind
    if isinstance(merge.tolerance, numpy.timedelta64):
        if kind not in "mM":
            raise CommandError(
                f"a tolerance with a unit needs a datetime or timedelta axis; {name!r} is "
                f"{variable.dtype}: send a plain number"
            )
    elif kind not in "iuf":
        raise CommandError(
            f"a numeric tolerance needs a numeric axis; {name!r} is {variable.dtype}: "
            "send the tolerance with a time unit"
        )
