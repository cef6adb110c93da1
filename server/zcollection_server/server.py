"""The Arrow Flight server over the engine."""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import zcollection as zc
from zcollection._sync import run_sync
from zcollection_proto import (
    ACTIONS,
    PROTOCOL,
    EndpointInfo,
    ImmutableTicket,
    InsertResult,
    PartitionTicket,
    batches_to_dataset,
    encode_command,
    immutable_to_table,
)

from . import __version__, flight_sql
from .actions import ActionHandlers
from .auth import Access, Permission, caller_of, server_options
from .calllog import CallRecord
from .errors import (
    ClientError,
    Unimplemented,
    hide_python_tracebacks,
    new_request_id,
    shutting_down,
    to_flight_error,
)
from .metrics import REGISTRY as METRICS
from .names import check_partition_path
from .operations import SidePorts
from .puts import decode_put, read_batches, stream_put
from .registry import Registry
from .requests import (
    ReadRequest,
    check_merge,
    descriptor_request,
    insert_request,
    ticket_request,
)
from .settings import ServerSettings, is_loopback
from .sources import (
    CollectionSource,
    Source,
    immutable_schema,
    partition_schema,
    row_bytes,
    split_variables,
)
from .streams import _status, cancellable, partition_batches
from .views import update_view_async

_log = logging.getLogger("zcollection_server")


class ZCollectionFlightServer(flight.FlightServerBase):
    """Serves the collections of a root URL and of a config file over Arrow Flight."""

    def __init__(self, settings: ServerSettings, **kwargs: Any) -> None:
        settings.validate()
        hide_python_tracebacks()
        access = Access(settings.auth)
        super().__init__(
            settings.location, **server_options(access, settings.tls_options(), kwargs)
        )
        #: Who may do what: every method and action checks it through ``authorize``.
        self.access = access
        if access.enabled and not settings.tls and not is_loopback(settings.host):
            _log.warning("credentials cross the network in clear text: configure TLS")
        self.settings = settings
        self.registry = Registry(settings.root, settings.collections)
        self.actions = ActionHandlers(self)
        self._inflight = 0
        self._inflight_lock = threading.Condition()
        #: Set at shutdown: new calls are refused.
        self.draining = False
        #: Set when the grace period is over: running streams end at their next batch.
        self.closing = False
        try:
            #: The side ports the settings ask for: gRPC health, Prometheus metrics.
            self.side_ports = SidePorts(
                settings.host, settings.health_port, settings.metrics_host, settings.metrics_port
            )
        except BaseException:
            super().shutdown()
            raise
        #: Bound side ports (None: off).
        self.health_port = self.side_ports.health_port
        self.metrics_port = self.side_ports.metrics_port

    # -- plumbing -------------------------------------------------------------------------
    def _begin(
        self,
        method: str,
        context: flight.ServerCallContext | None = None,
        *,
        during_shutdown: bool = False,
    ) -> CallRecord:
        request_id = new_request_id()
        if self.draining and not during_shutdown:
            CallRecord(method=method, request_id=request_id).finish("UNAVAILABLE")
            raise shutting_down(request_id)
        with self._inflight_lock:
            self._inflight += 1
            METRICS.add_inflight(1)
        record = CallRecord(method=method, request_id=request_id)
        if self.access.enabled:
            record.extra["user"] = caller_of(context)
        return record

    def authorize(self, record: CallRecord, operation: str, collection: str | None) -> None:
        """The access check of a call: the permission ``auth.REQUIRED`` names for
        ``operation`` (a Flight method or an action name) on ``collection``.

        Raises:
            Unauthenticated, PermissionDenied: If the caller may not.
        """
        self.access.authorize(record.extra.get("user"), operation, collection)

    def readable(self, record: CallRecord, names: list[str]) -> list[str]:
        """Return the collections of ``names`` the caller of ``record`` may read."""
        user = record.extra.get("user")
        return [n for n in names if self.access.allows(user, Permission.READ, n)]

    def _end(self) -> None:
        with self._inflight_lock:
            self._inflight -= 1
            METRICS.add_inflight(-1)
            self._inflight_lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is running; return False on timeout."""
        with self._inflight_lock:
            return self._inflight_lock.wait_for(lambda: self._inflight == 0, timeout)

    @property
    def draining(self) -> bool:
        """Set at shutdown: new calls are refused, the health service says NOT_SERVING."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        side_ports = getattr(self, "side_ports", None)
        if side_ports is not None:
            side_ports.set_serving(not value)

    def shutdown(self) -> None:
        """Stop: NOT_SERVING, then the Flight server (its calls end), then the side ports."""
        side_ports = getattr(self, "side_ports", None)
        if side_ports is not None:
            side_ports.set_serving(False)
        try:
            super().shutdown()
        finally:
            if side_ports is not None:
                side_ports.close()

    def _run[T](
        self,
        method: str,
        fn: Callable[[CallRecord], T],
        context: flight.ServerCallContext | None = None,
    ) -> T:
        record = self._begin(method, context)
        try:
            result = fn(record)
        except Exception as exc:
            error = to_flight_error(exc, record.request_id)
            record.finish(_status(error))
            raise error from None
        finally:
            self._end()
        record.finish()
        return result

    def _source(self, request: ReadRequest) -> Source:
        collection = run_sync(self.registry.open_async(request.collection))
        if request.selection_variable:
            expected = zc.partitioning.axis_variable(
                collection.schema, collection.axis, collection.partitioning
            )
            if request.selection_variable.lstrip("/") != expected:
                raise ClientError(
                    f"row selections apply to the axis variable {expected!r}, "
                    f"not {request.selection_variable!r}"
                )
        if request.view is not None:
            from .views import view_source

            return view_source(self, request.collection, collection, request.view)
        return CollectionSource(request.collection, collection)

    # -- discovery ------------------------------------------------------------------------
    def list_flights(
        self, context: flight.ServerCallContext, criteria: bytes
    ) -> Iterator[flight.FlightInfo]:
        def run(record: CallRecord) -> list[flight.FlightInfo]:
            self.authorize(record, "list_flights", None)
            infos = []
            for name in self.readable(record, run_sync(self.registry.names_async())):
                try:
                    source = self._source(ReadRequest(name))
                except zc.ZCollectionError:
                    continue  # deleted or unreadable since it was listed
                partitioned, _ = split_variables(source.schema, None)
                infos.append(
                    flight.FlightInfo(
                        partition_schema(source, partitioned),
                        flight.FlightDescriptor.for_path(name),
                        [],
                        -1,
                        -1,
                    )
                )
            record.rows = len(infos)
            return infos

        return iter(self._run("list_flights", run, context))

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        def run(record: CallRecord) -> flight.SchemaResult:
            query = flight_sql.query_descriptor(descriptor)  # a Flight SQL statement: its query
            request = descriptor_request(query, self.settings.max_batch_bytes)
            record.collection = request.collection
            self.authorize(record, "get_schema", request.collection)
            source = self._source(request)
            if request.partition is not None:
                self._paths(source, request)  # a partition the client names must exist
            partitioned, _ = split_variables(source.schema, request.variables)
            return flight.SchemaResult(partition_schema(source, partitioned))

        return self._run("get_schema", run, context)

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        statement = flight_sql.is_statement(descriptor)

        def run(record: CallRecord) -> flight.FlightInfo:
            query = flight_sql.query_descriptor(descriptor)  # a Flight SQL statement: its query
            request = descriptor_request(query, self.settings.max_batch_bytes)
            record.collection = request.collection
            self.authorize(record, "get_flight_info", request.collection)
            source = self._source(request)
            partitioned, immutable = split_variables(source.schema, request.variables)
            if statement:
                immutable = flight_sql.without_immutable(request.variables, immutable)
            paths = self._paths(source, request)
            endpoints = []
            lengths: list[int] = []
            if request.selection is None and partitioned:
                lengths = run_sync(_lengths(source, paths))
            locations = self.settings.locations
            variables = list(request.variables or ())
            for i, path in enumerate(paths if partitioned else []):
                ticket = PartitionTicket(
                    collection=request.collection,
                    partition=path,
                    variables=variables,
                    max_batch_bytes=request.max_batch_bytes,
                )
                if request.view is not None:
                    ticket.view = request.view
                if query.descriptor_type == flight.DescriptorType.CMD:
                    body = _query_selection(query)
                    if body is not None:
                        ticket.selection.CopyFrom(body)
                where = [locations[i % len(locations)]] if locations else []
                info = EndpointInfo(partition=path, rows=lengths[i] if lengths else -1)
                endpoints.append(
                    flight.FlightEndpoint(
                        encode_command(ticket), where, app_metadata=info.SerializeToString()
                    )
                )
            if immutable and request.partition is None:
                ticket_i = ImmutableTicket(collection=request.collection, variables=variables)
                if request.view is not None:
                    ticket_i.view = request.view
                endpoints.append(
                    flight.FlightEndpoint(
                        encode_command(ticket_i), locations[:1] if locations else []
                    )
                )
            records = sum(lengths) if request.selection is None and partitioned else -1
            total_bytes = (
                records * row_bytes(source.schema, partitioned, source.axis) if records >= 0 else -1
            )
            record.rows = len(endpoints)
            return flight.FlightInfo(
                partition_schema(source, partitioned),
                descriptor,
                endpoints,
                records,
                total_bytes,
                ordered=True,
            )

        info = self._run("get_flight_info", run, context)
        return flight_sql.statement_info(info, descriptor) if statement else info

    def _paths(self, source: Source, request: ReadRequest) -> list[str]:
        if request.partition is not None:
            path = check_partition_path(source.partitioning, request.partition)
            if not run_sync(source.has_partition_async(path)):
                raise zc.CollectionNotFoundError(
                    f"collection {request.collection!r} has no partition {path!r}"
                )
            return [path]
        return run_sync(source.partitions_async(request.filters))

    # -- reads ----------------------------------------------------------------------------
    def _stream_end(self, record: CallRecord) -> Callable[[], None]:
        """Return what ends a streaming call once (it runs until its last batch is sent)."""
        lock = threading.Lock()
        ended = False

        def end() -> None:
            nonlocal ended
            with lock:
                if ended:
                    return
                ended = True
            record.finish("cancelled")  # a stream never pulled; no-op once logged
            self._end()

        return end

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        record = self._begin("do_get", context)
        streaming = False
        try:
            plain = flight_sql.plain_ticket(ticket)  # a Flight SQL statement ticket: ours
            request = ticket_request(plain, self.settings.max_batch_bytes)
            record.collection = request.collection
            self.authorize(record, "do_get", request.collection)
            source = self._source(request)
            partitioned, immutable = split_variables(source.schema, request.variables)
            if request.immutable:
                record.extra["endpoint"] = "immutable"
                dataset = run_sync(source.immutable_async(immutable))
                table = immutable_to_table(dataset, axis=source.axis)
                schema = immutable_schema(source, immutable)
                table = table.replace_schema_metadata(schema.metadata)
                record.rows, record.bytes = table.num_rows, table.nbytes
                record.finish()
                return flight.RecordBatchStream(table)
            paths = self._paths(source, request)
            schema = partition_schema(source, partitioned)
            batches = partition_batches(
                source,
                paths if partitioned else [],
                partitioned,
                request.selection,
                max_bytes=request.max_batch_bytes,
                read_ahead=self.settings.read_ahead,
                record=record,
            )
            end = self._stream_end(record)
            stream = cancellable(batches, record, on_end=end, closing=lambda: self.closing)
            # A stream dropped before its first batch never runs its own cleanup.
            weakref.finalize(stream, end)
            streaming = True
            return flight.GeneratorStream(schema, stream)
        except Exception as exc:
            error = to_flight_error(exc, record.request_id)
            record.finish(_status(error))
            raise error from None
        finally:
            if not streaming:
                self._end()

    # -- writes ---------------------------------------------------------------------------
    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        def run(record: CallRecord) -> None:
            flight_sql.check_put(descriptor)
            request = insert_request(descriptor)
            record.collection = request.collection
            self.authorize(record, "do_put", request.collection)
            collection = run_sync(self.registry.open_async(request.collection, writable=True))
            check_merge(request.merge, collection)
            schema = reader.schema
            batches = read_batches(reader, record)
            if request.view is not None:
                if not request.partition:
                    raise ClientError("a view update names the partition it writes")
                path = check_partition_path(collection.partitioning, request.partition)
                rows = batches_to_dataset(schema, list(batches))
                written = run_sync(
                    update_view_async(self, request.collection, request.view, path, rows)
                )
            elif request.rewrite:
                dataset = decode_put(schema, list(batches), request.immutable, collection)
                target = (
                    check_partition_path(collection.partitioning, request.partition)
                    if request.partition
                    else None
                )
                written = run_sync(collection.rewrite_partitions_async(dataset, partition=target))
            else:
                # each record batch joins the insert as it arrives: the partitions the
                # stream has moved past are written while the rest is on its way
                written = collection.insert_stream(
                    stream_put(schema, batches, request.immutable, collection),
                    merge=request.merge,
                    overwrite=request.overwrite,
                    buffer_bytes=min(
                        self.settings.put_buffer_bytes,
                        request.buffer_bytes
                        if request.buffer_bytes is not None
                        else self.settings.put_buffer_bytes,
                    ),
                )
            for path in written:
                ack = InsertResult(collection=request.collection, partitions=[path])
                writer.write(pa.py_buffer(ack.SerializeToString()))
            record.extra["partitions"] = len(written)

        self._run("do_put", run, context)

    # -- actions --------------------------------------------------------------------------
    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        return [(spec.name, spec.description) for spec in ACTIONS.values()]

    def do_action(
        self, context: flight.ServerCallContext, action: flight.Action
    ) -> Iterator[bytes]:
        if action.type == "zcollection.v1.health" and self.draining:
            # health still answers while draining, so load balancers see NOT_SERVING
            record = self._begin("do_action", context, during_shutdown=True)
            try:
                body = action.body.to_pybytes() if action.body is not None else b""
                return iter([self.actions.handle(action.type, body, record)])
            finally:
                self._end()
                record.finish()

        def run(record: CallRecord) -> list[bytes]:
            record.extra["action"] = action.type
            body = action.body.to_pybytes() if action.body is not None else b""
            answer = flight_sql.do_action(self, record, action.type, body)
            if answer is not None:
                return answer
            return [self.actions.handle(action.type, body, record)]

        return iter(self._run("do_action", run, context))

    def do_exchange(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        def run(record: CallRecord) -> None:
            self.authorize(record, "do_exchange", None)
            _unimplemented("do_exchange")(record)

        self._run("do_exchange", run, context)

    def server_info(self) -> dict[str, Any]:
        """Version, protocol and limits, as the server_info action reports them."""
        schemes = self.access.schemes() + (["mtls"] if self.settings.tls_client_ca else [])
        return {
            "version": __version__,
            "protocol": PROTOCOL,
            "format_version": 1,
            "max_batch_bytes": self.settings.max_batch_bytes,
            "merge_strategies": ["upsert_within", *zc.merge.STRATEGIES],
            "locations": list(self.settings.locations),
            "auth": schemes or ["none"],
        }


def _unimplemented(method: str) -> Callable[[CallRecord], None]:
    def run(record: CallRecord) -> None:
        raise Unimplemented(f"{method} is not offered by this server")

    return run


async def _lengths(source: Source, paths: list[str]) -> list[int]:
    import asyncio

    return list(await asyncio.gather(*(source.length_async(p) for p in paths)))


def _query_selection(descriptor: flight.FlightDescriptor) -> Any:
    from zcollection_proto import Query, command_body, decode_command

    body = command_body(decode_command(descriptor.command))
    if isinstance(body, Query | PartitionTicket) and body.HasField("selection"):
        return body.selection
    return None


__all__ = ["ClientError", "ZCollectionFlightServer", "json"]
