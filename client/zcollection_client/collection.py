"""RemoteCollection: the engine's Collection interface over a Flight server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import zcollection as zc
from zcollection.config import STREAM_BUFFER_BYTES
from zcollection.conform import conform
from zcollection.data.ops import check_same_variables, concat
from zcollection.merge import STRATEGIES, MergeCallable, UpsertWithin
from zcollection.partitioning import partition_rows
from zcollection_proto import (
    ABORT_PUT,
    DropPartitions,
    Insert,
    InsertResult,
    ListPartitions,
    PartitionTicket,
    Query,
    RepairCatalog,
    dataset_to_batches,
    encode_command,
    immutable_to_table,
    to_scalar,
    tolerance_to_proto,
)
from zcollection_proto import RowSelection as RowSelectionMessage

from .connection import Connection
from .reading import (
    Endpoint,
    assemble,
    decode,
    endpoints_of,
    fetch_table,
    lazy_dataset,
    read_all,
    read_assembled,
    read_concatenated,
)


class RemoteCollection:
    """A collection served by a zcollection Flight server, with the Collection interface.

    ``map``, ``update`` and custom merge callables run on the client: partitions are fetched
    in parallel, and ``update`` (or a custom merge) writes each result back as a replacement
    of its partition — one write per partition, so not atomic across partitions.
    """

    def __init__(self, connection: Connection, name: str, info: Any, *, read_only: bool) -> None:
        self.connection = connection
        self.name = name
        self._schema = zc.DatasetSchema.from_json(json.loads(info.schema)).with_partition_axis(
            info.axis
        )
        self._axis = info.axis
        self._partitioning = zc.partitioning.from_json(json.loads(info.partitioning))
        self._catalog_enabled = bool(info.catalog_enabled)
        self._read_only = read_only or bool(info.read_only)

    # -- properties -------------------------------------------------------------------------
    @property
    def schema(self) -> zc.DatasetSchema:
        """Return the bound dataset schema."""
        return self._schema

    @property
    def axis(self) -> str:
        """Return the name of the partition axis."""
        return self._axis

    @property
    def partitioning(self) -> Any:
        """Return the partitioning strategy."""
        return self._partitioning

    @property
    def read_only(self) -> bool:
        """Return whether the collection is read-only."""
        return self._read_only

    @property
    def catalog_enabled(self) -> bool:
        """Return whether the collection keeps a catalog of its partitions."""
        return self._catalog_enabled

    @property
    def uri(self) -> str:
        """Return the URI of this collection (``grpc://host:port/name``)."""
        return f"{self.connection.location}/{self.name}"

    def __repr__(self) -> str:
        return f"<zcollection_client.RemoteCollection {self.uri} read_only={self._read_only}>"

    # -- helpers ----------------------------------------------------------------------------
    def _check_writable(self, what: str) -> None:
        if self._read_only:
            raise zc.ReadOnlyError(f"cannot {what}: the collection {self.uri} is read-only")

    def _var_paths(self, variables: Iterable[str] | None) -> list[str]:
        return self._schema.variable_paths(variables)

    def _compile(self, filters: str | None) -> None:
        zc.partitioning.compile_filter(filters, names=self._partitioning.axis)

    def _query_message(
        self,
        filters: str | None,
        var_paths: list[str] | None,
        selection: zc.RowSelection | None,
    ) -> Query:
        message = Query(collection=self.name, variables=var_paths or [])
        if filters:
            message.filters = filters
        if selection is not None and not selection.is_open:
            message.selection.CopyFrom(_selection_message(selection))
        return message

    def _flight_info(self, message: Query) -> flight.FlightInfo:
        descriptor = flight.FlightDescriptor.for_command(encode_command(message))
        return self.connection.call(lambda c, o: c.get_flight_info(descriptor, o))

    # -- listing ----------------------------------------------------------------------------
    def partitions(self, *, filters: str | None = None) -> Iterator[str]:
        """Yield relative partition paths in key order, optionally filtered."""
        self._compile(filters)
        message = ListPartitions(collection=self.name)
        if filters:
            message.filters = filters
        yield from self.connection.action("list_partitions", message, retry=True).partitions

    async def partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Async variant of partitions() (returns a list)."""
        return await asyncio.to_thread(lambda: list(self.partitions(filters=filters)))

    # -- reading ----------------------------------------------------------------------------
    def query(
        self,
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        selection: zc.RowSelection | None = None,
        lazy: bool = False,
    ) -> zc.Dataset | None:
        """Read matching partitions (endpoints fetched in parallel) and concatenate them.

        With ``lazy=True`` the partitioned variables are Dask arrays with one chunk per
        partition, each chunk a ``do_get`` of its endpoint (runs on dask.distributed workers).
        """
        self._compile(filters)
        var_paths = self._var_paths(variables)
        info = self._flight_info(self._query_message(filters, var_paths, selection))
        endpoints = endpoints_of(info)
        partition_endpoints = [e for e in endpoints if not e.immutable]
        has_partitioned = any(not self._schema.all_variables()[p].immutable for p in var_paths)
        if not partition_endpoints and (has_partitioned or not self._any_partition(filters)):
            return None
        if lazy:
            _, immutable = read_all(
                self.connection, [e for e in endpoints if e.immutable], self._schema, self._axis
            )
            if any(e.rows < 0 for e in partition_endpoints):
                endpoints = self._with_selected_rows(filters, selection, endpoints)
            return lazy_dataset(
                self.connection, endpoints, self._schema, var_paths, self._axis, immutable
            )
        if partition_endpoints and all(e.rows >= 0 for e in partition_endpoints):
            rows, immutable = read_assembled(self.connection, endpoints, self._schema, info.schema)
        else:
            rows, immutable = read_concatenated(self.connection, endpoints, self._schema)
        return assemble(self._schema, var_paths, self._axis, [rows] if rows else [], immutable)

    def _with_selected_rows(
        self, filters: str | None, selection: zc.RowSelection | None, endpoints: list[Endpoint]
    ) -> list[Endpoint]:
        """Return ``endpoints`` with their row counts under ``selection`` (unknown to the
        server's FlightInfo): the axis variable is read eagerly, as the engine's lazy query
        does to find the selected rows."""
        axis_path = "/" + self._merge_axis()
        info = self._flight_info(self._query_message(filters, [axis_path], selection))
        partitions, _ = read_all(self.connection, endpoints_of(info), self._schema, self._axis)
        rows = {path: variables[axis_path].shape[0] for path, variables in partitions}
        return [
            e if e.immutable else dataclasses.replace(e, rows=rows.get(e.partition or "", 0))
            for e in endpoints
        ]

    def _any_partition(self, filters: str | None) -> bool:
        return next(iter(self.partitions(filters=filters)), None) is not None

    async def query_async(
        self,
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        selection: zc.RowSelection | None = None,
        lazy: bool = False,
    ) -> zc.Dataset | None:
        """Async variant of query()."""
        return await asyncio.to_thread(
            lambda: self.query(filters=filters, variables=variables, selection=selection, lazy=lazy)
        )

    def _partition_datasets(
        self, filters: str | None, variables: Iterable[str] | None
    ) -> Iterator[tuple[str, zc.Dataset]]:
        """Yield (path, dataset with immutable variables merged) for matching partitions."""
        self._compile(filters)
        var_paths = self._var_paths(variables)
        info = self._flight_info(self._query_message(filters, var_paths, None))
        endpoints = endpoints_of(info)
        immutable_endpoints = [e for e in endpoints if e.immutable]
        _, immutable = read_all(self.connection, immutable_endpoints, self._schema, self._axis)
        partition_endpoints: list[Endpoint] = [e for e in endpoints if not e.immutable]
        if not partition_endpoints:
            paths = list(self.partitions(filters=filters))
            for path in paths:
                yield path, assemble(self._schema, var_paths, self._axis, [], immutable)
            return
        workers = max(1, self.connection.options.parallelism)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zc-map") as pool:
            tables = pool.map(lambda e: fetch_table(self.connection, e), partition_endpoints)
            for endpoint, table in zip(partition_endpoints, tables, strict=True):
                variables_read = decode(table, self._schema)
                yield (
                    endpoint.partition or "",
                    assemble(self._schema, var_paths, self._axis, [variables_read], immutable),
                )

    def map(
        self,
        fn: Callable[[zc.Dataset], Any],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> dict[str, Any]:
        """Apply ``fn`` (on the client) to each matching partition; ``{path: fn(ds)}``.

        ``client`` is accepted for compatibility with ``Collection.map`` and not used:
        partitions are fetched in parallel and ``fn`` runs in this process.
        """
        return {path: fn(ds) for path, ds in self._partition_datasets(filters, variables)}

    async def map_async(
        self,
        fn: Callable[[zc.Dataset], Any],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> dict[str, Any]:
        """Async variant of map()."""
        return await asyncio.to_thread(lambda: self.map(fn, filters=filters, variables=variables))

    # -- writing ----------------------------------------------------------------------------
    def _put(self, dataset: zc.Dataset, command: Insert) -> list[str]:
        """Send ``dataset`` with an insert command; return the acknowledged partitions."""
        return self._put_stream([dataset], command)

    def _put_stream(self, datasets: Iterable[zc.Dataset], command: Insert) -> list[str]:
        """Send the rows of ``datasets`` in one do_put; return the acknowledged partitions.

        The immutable variables travel in the command (those of the first dataset; the
        others must carry the same values or none). The rows of each dataset of an insert
        are sent grouped by partition, so the server can write each partition once the
        stream has passed it.
        """
        regroup = not command.rewrite and not command.HasField("view")
        iterator = iter(datasets)
        first = next(iterator, None)
        if first is None:
            return []
        fixed, rows = self._split_immutable(first)
        if fixed:
            table = immutable_to_table(first, axis=self._axis)
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            command.immutable = sink.getvalue()
        descriptor = flight.FlightDescriptor.for_command(encode_command(command))
        head = list(dataset_to_batches(self._grouped(rows, regroup), axis=self._axis))
        schema = head[0].schema

        def batches() -> Iterator[pa.RecordBatch]:
            yield from head
            for dataset in iterator:
                more, moving = self._split_immutable(dataset)
                check_same_variables(fixed, more)
                for batch in dataset_to_batches(self._grouped(moving, regroup), axis=self._axis):
                    if not batch.schema.equals(schema, check_metadata=False):
                        raise zc.SchemaError(
                            "the datasets of a stream must carry the same variables: "
                            f"{batch.schema.names} after {schema.names}"
                        )
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

        def run(client: flight.FlightClient, options: flight.FlightCallOptions) -> list[str]:
            writer, reader = client.do_put(descriptor, schema, options)
            try:
                for batch in batches():
                    writer.write_batch(batch)
            except BaseException as exc:
                # the server drops the put (and on icechunk commits nothing)
                with contextlib.suppress(Exception):
                    writer.write_metadata(
                        pa.py_buffer(ABORT_PUT + b": " + str(exc)[:1000].encode())
                    )
                    writer.close()
                raise
            writer.done_writing()
            written: list[str] = []
            while True:
                ack = reader.read()
                if ack is None:
                    break
                result = InsertResult()
                result.ParseFromString(ack.to_pybytes())
                written.extend(result.partitions)
            writer.close()
            return written

        return self.connection.call(run, retry=False)

    def _split_immutable(self, dataset: zc.Dataset) -> tuple[dict[str, zc.Variable], zc.Dataset]:
        """Return the immutable variables of ``dataset`` and the dataset of its rows."""
        variables = dataset.all_variables()
        fixed = {p: v for p, v in variables.items() if self._axis not in v.dimensions}
        rows = dataset.select(["/" + p for p in variables if p not in fixed])
        return fixed, rows

    def _grouped(self, rows: zc.Dataset, regroup: bool = True) -> zc.Dataset:
        """Return ``rows`` with the rows of each partition together (in key order if moved)."""
        if not regroup:
            return rows
        groups = partition_rows(self._partitioning, rows)
        if all(isinstance(index, slice) for _, index in groups):
            return rows
        order = numpy.concatenate(
            [
                numpy.arange(index.start, index.stop) if isinstance(index, slice) else index
                for _, index in groups
            ]
        )
        return rows.isel(self._partitioning.dimension, order)

    def _insert_command(self, merge: str | MergeCallable | None, overwrite: bool) -> Insert | None:
        """Return the insert command of ``merge`` (None: a callable, merged on the client).

        Raises:
            KeyError: If ``merge`` is an unknown strategy name.
            TypeError: If ``merge`` is neither a name nor a callable.
        """
        command = Insert(collection=self.name, overwrite=overwrite)
        if isinstance(merge, str):
            if merge not in STRATEGIES:
                raise KeyError(f"unknown merge strategy {merge!r}; known: {', '.join(STRATEGIES)}")
            command.merge = merge
        elif isinstance(merge, UpsertWithin):
            tolerance = tolerance_to_proto(merge.tolerance)
            if tolerance is None:
                command.merge = "upsert"  # no tolerance: exact matches, the upsert strategy
            else:
                command.merge = "upsert_within"
                command.tolerance.CopyFrom(tolerance)
        elif merge is not None:
            if not callable(merge):
                raise TypeError(f"merge must be a strategy name or a callable, not {merge!r}")
            return None
        return command

    def insert(
        self,
        dataset: zc.Dataset,
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
    ) -> list[str]:
        """Insert ``dataset``; the merge strategy (a name or upsert_within) runs on the server.

        A custom merge callable runs on the client, partition by partition (not atomic).

        Raises:
            ReadOnlyError: If the collection is read-only.
            KeyError: If ``merge`` is an unknown strategy name.
        """
        self._check_writable("insert")
        command = self._insert_command(merge, overwrite)
        if command is None:
            assert merge is not None and not isinstance(merge, str)
            return self._insert_merging_locally(self._conform(dataset), merge, overwrite)
        return self._put(self._conform(dataset), command)

    def insert_stream(
        self,
        datasets: Iterable[zc.Dataset] | AsyncIterable[zc.Dataset],
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
        buffer_bytes: int | None = STREAM_BUFFER_BYTES,
    ) -> list[str]:
        """Send the rows of ``datasets`` in one do_put, as the engine's ``insert_stream``.

        Each dataset is checked and sent as it comes; the server writes each partition once
        the stream has passed it and ``buffer_bytes`` (capped by the server's
        ``put_buffer_bytes``; None: that setting) are held. A custom merge callable needs
        every row first: the datasets are gathered, then merged on the client as
        ``insert`` does.

        Raises:
            ReadOnlyError: If the collection is read-only.
            PartitionError: If rows arrive for a partition the server already wrote.
        """
        self._check_writable("insert")
        if buffer_bytes is not None and buffer_bytes < 0:
            raise ValueError(f"buffer_bytes must be >= 0 or None, not {buffer_bytes}")
        if isinstance(datasets, AsyncIterable):
            raise TypeError("insert_stream takes an iterable of datasets; use insert_stream_async")
        command = self._insert_command(merge, overwrite)
        if command is None:
            assert merge is not None and not isinstance(merge, str)
            gathered = [self._conform(d) for d in datasets]
            if not gathered:
                return []
            return self._insert_merging_locally(
                concat(gathered, self._partitioning.dimension), merge, overwrite
            )
        if buffer_bytes is not None:
            command.buffer_bytes = buffer_bytes
        return self._put_stream((self._conform(d) for d in datasets), command)

    async def insert_stream_async(
        self,
        datasets: Iterable[zc.Dataset] | AsyncIterable[zc.Dataset],
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
        buffer_bytes: int | None = STREAM_BUFFER_BYTES,
    ) -> list[str]:
        """Async variant of insert_stream() (an async iterable is read on this loop)."""
        source: Iterable[zc.Dataset]
        if isinstance(datasets, AsyncIterable):
            source = _from_async(datasets, asyncio.get_running_loop())
        else:
            source = datasets
        return await asyncio.to_thread(
            lambda: self.insert_stream(
                source, overwrite=overwrite, merge=merge, buffer_bytes=buffer_bytes
            )
        )

    def _conform(self, dataset: zc.Dataset, *, require_all: bool = True) -> zc.Dataset:
        """Check ``dataset`` against the schema as the engine does, before sending anything."""
        required = tuple(getattr(self._partitioning, "variables", ()) or ())
        return conform(
            dataset, self._schema, self._axis, required=required, require_all=require_all
        )

    def _merge_axis(self) -> str:
        return zc.partitioning.axis_variable(self._schema, self._axis, self._partitioning)

    def _insert_merging_locally(
        self, dataset: zc.Dataset, merge: MergeCallable, overwrite: bool
    ) -> list[str]:
        existing = set(self.partitions())
        dim = self._partitioning.dimension
        variables = dataset.all_variables()
        fixed = {p: v for p, v in variables.items() if dim not in v.dimensions}
        moving = dataset.select(["/" + p for p in variables if p not in fixed])
        targets = [
            (self._partitioning.encode(key), index)
            for key, index in partition_rows(self._partitioning, moving)
        ]
        if not overwrite:
            clash = [path for path, _ in targets if path in existing]
            if clash:
                raise zc.PartitionExistsError(
                    f"partition(s) {clash} already exist and overwrite=False"
                )
        # every merge runs before anything is sent; the merged partitions then travel in one
        # put that replaces them (one commit on icechunk; nothing written if the put fails)
        parts = []
        for path, index in targets:
            part = moving.isel(dim, index)
            if path in existing:
                stored = self._fetch_partition(path)
                part = merge(stored, part, axis=self._merge_axis(), partitioning_dim=dim)
                if not isinstance(part, zc.Dataset):
                    raise zc.SchemaError(
                        f"merge strategy returned {type(part).__name__}, expected a Dataset"
                    )
            parts.append(part)
        if not parts:
            return []
        rows = concat(parts, dim) if len(parts) > 1 else parts[0]
        outgoing = {**rows.all_variables(), **fixed}
        to_send = zc.Dataset(self._schema.select(["/" + p for p in outgoing]), outgoing)
        return self._put(to_send, Insert(collection=self.name, overwrite=overwrite))

    def _fetch_partition(self, path: str) -> zc.Dataset:
        partitioned = [p for p, v in self._schema.all_variables().items() if not v.immutable]
        ticket = PartitionTicket(collection=self.name, partition=path, variables=partitioned)
        endpoint = Endpoint(encode_command(ticket), None, path, -1)
        variables = decode(fetch_table(self.connection, endpoint), self._schema)
        return assemble(self._schema, partitioned, self._axis, [variables], {})

    async def insert_async(
        self,
        dataset: zc.Dataset,
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
    ) -> list[str]:
        """Async variant of insert()."""
        return await asyncio.to_thread(
            lambda: self.insert(dataset, overwrite=overwrite, merge=merge)
        )

    def update(
        self,
        fn: Callable[[zc.Dataset], zc.Dataset],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> list[str]:
        """Transform each matching partition on the client and write it back wholesale.

        ``client`` is accepted for compatibility with ``Collection.update`` and not used.
        """
        self._check_writable("update")
        written: list[str] = []
        for path, ds in self._partition_datasets(filters, variables):
            result = fn(ds)
            if not isinstance(result, zc.Dataset):
                raise zc.SchemaError(
                    f"update function returned {type(result).__name__}, expected a Dataset"
                )
            checked = self._conform(result, require_all=False)
            moving = checked.select(
                ["/" + p for p, v in checked.all_variables().items() if self._axis in v.dimensions]
            )
            self._put(moving, Insert(collection=self.name, rewrite=True, partition=path))
            written.append(path)
        return written

    async def update_async(
        self,
        fn: Callable[[zc.Dataset], zc.Dataset],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> list[str]:
        """Async variant of update()."""
        return await asyncio.to_thread(
            lambda: self.update(fn, filters=filters, variables=variables)
        )

    def drop_partitions(self, *, filters: str | None = None) -> list[str]:
        """Delete matching partitions (every partition when ``filters`` is None)."""
        self._check_writable("drop partitions")
        self._compile(filters)
        message = DropPartitions(collection=self.name)
        if filters:
            message.filters = filters
        else:
            message.all = True
        return list(self.connection.action("drop_partitions", message).partitions)

    async def drop_partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Async variant of drop_partitions()."""
        return await asyncio.to_thread(lambda: self.drop_partitions(filters=filters))

    def repair_catalog(self) -> list[str]:
        """Rebuild the catalog on the server; return the new path list."""
        if not self._catalog_enabled:
            raise zc.CatalogDisabledError(f"the collection {self.uri} has no catalog to repair")
        self._check_writable("repair the catalog")
        message = RepairCatalog(collection=self.name)
        return list(self.connection.action("repair_catalog", message).partitions)

    async def repair_catalog_async(self) -> list[str]:
        """Async variant of repair_catalog()."""
        return await asyncio.to_thread(self.repair_catalog)


def _selection_message(selection: zc.RowSelection) -> RowSelectionMessage:
    message = RowSelectionMessage()
    for which, value, inclusive in (
        ("lower", selection.lower, selection.lower_inclusive),
        ("upper", selection.upper, selection.upper_inclusive),
    ):
        if value is None:
            continue
        bound = getattr(message, which)
        if isinstance(value, str):
            bound.text = value
        else:
            bound.scalar.CopyFrom(to_scalar(value))
        bound.inclusive = inclusive
    return message


def _from_async(
    datasets: AsyncIterable[zc.Dataset], loop: asyncio.AbstractEventLoop
) -> Iterator[zc.Dataset]:
    """Yield the items of an async iterable from a worker thread, reading them on ``loop``."""
    iterator = aiter(datasets)

    async def step() -> zc.Dataset:
        return await anext(iterator)

    while True:
        try:
            yield asyncio.run_coroutine_threadsafe(step(), loop).result()
        except StopAsyncIteration:
            return
