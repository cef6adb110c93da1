"""Reading the endpoints of a query: in parallel, in order, eagerly or lazily with Dask."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import zcollection as zc
from zcollection.data.ops import concat
from zcollection_proto import (
    EndpointInfo,
    RowAssembler,
    batches_to_dataset,
    immutable_from_table,
    table_to_dataset,
)
from zcollection_proto.arrow import IMMUTABLE_KEY

from .connection import Connection


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a FlightInfo: a partition (or the immutable variables)."""

    ticket: bytes
    location: str | None
    partition: str | None
    rows: int

    @property
    def immutable(self) -> bool:
        """Whether this endpoint streams the immutable variables."""
        return self.partition is None


def endpoints_of(info: flight.FlightInfo) -> list[Endpoint]:
    """Return the endpoints of a FlightInfo in order."""
    result = []
    for endpoint in info.endpoints:
        meta = EndpointInfo()
        raw = getattr(endpoint, "app_metadata", b"") or b""
        if raw:
            meta.ParseFromString(bytes(raw))
        location = endpoint.locations[0].uri.decode() if endpoint.locations else None
        result.append(
            Endpoint(
                ticket=endpoint.ticket.ticket,
                location=location,
                partition=meta.partition or None,
                rows=meta.rows if raw else -1,
            )
        )
    return result


def fetch_table(connection: Connection, endpoint: Endpoint) -> pa.Table:
    """Read one endpoint fully (retried on UNAVAILABLE)."""
    peer = connection.for_location(endpoint.location)

    def run(client: flight.FlightClient, options: flight.FlightCallOptions) -> pa.Table:
        return client.do_get(flight.Ticket(endpoint.ticket), options).read_all()

    return peer.call(run)


def rebind(dataset: zc.Dataset, schema: zc.DatasetSchema) -> dict[str, zc.Variable]:
    """Return the variables of a decoded dataset bound to the collection's schema."""
    known = schema.all_variables()
    return {
        "/" + name: zc.Variable(known["/" + name], variable.data)
        for name, variable in dataset.all_variables().items()
    }


def decode(table: pa.Table, schema: zc.DatasetSchema) -> dict[str, zc.Variable]:
    """Decode one endpoint's table into variables of the collection schema."""
    metadata = table.schema.metadata or {}
    if metadata.get(IMMUTABLE_KEY.encode()) == b"true":
        return rebind(immutable_from_table(table), schema)
    return rebind(table_to_dataset(table), schema)


def read_all(
    connection: Connection, endpoints: list[Endpoint], schema: zc.DatasetSchema, axis: str
) -> tuple[list[tuple[str, dict[str, zc.Variable]]], dict[str, zc.Variable]]:
    """Fetch every endpoint in parallel; return (partitions in order, immutable variables)."""
    workers = max(1, connection.options.parallelism)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zc-fetch") as pool:
        tables = list(pool.map(lambda e: fetch_table(connection, e), endpoints))
    partitions: list[tuple[str, dict[str, zc.Variable]]] = []
    immutable: dict[str, zc.Variable] = {}
    for endpoint, table in zip(endpoints, tables, strict=True):
        variables = decode(table, schema)
        if endpoint.immutable:
            immutable.update(variables)
        else:
            partitions.append((endpoint.partition or "", variables))
    return partitions, immutable


def read_concatenated(
    connection: Connection, endpoints: list[Endpoint], schema: zc.DatasetSchema
) -> tuple[dict[str, zc.Variable] | None, dict[str, zc.Variable]]:
    """Fetch every endpoint in parallel; return (the rows of all partitions, in order, decoded
    at once: one copy of the data; None without partition endpoints) and the immutables."""
    workers = max(1, connection.options.parallelism)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zc-fetch") as pool:
        tables = list(pool.map(lambda e: fetch_table(connection, e), endpoints))
    immutable: dict[str, zc.Variable] = {}
    rows: list[pa.Table] = []
    for endpoint, table in zip(endpoints, tables, strict=True):
        if endpoint.immutable:
            immutable.update(decode(table, schema))
        else:
            rows.append(table)
    if not rows:
        return None, immutable
    batches = [batch for table in rows for batch in table.to_batches()]
    return rebind(batches_to_dataset(rows[0].schema, batches), schema), immutable


def read_assembled(
    connection: Connection,
    endpoints: list[Endpoint],
    schema: zc.DatasetSchema,
    stream_schema: pa.Schema,
) -> tuple[dict[str, zc.Variable] | None, dict[str, zc.Variable]]:
    """Like :func:`read_concatenated`, but each partition's batches are decoded as they
    arrive straight into their rows of the result, preallocated from the row counts of the
    endpoints: one copy of the data, made while the other endpoints are still streaming, and
    no endpoint kept whole in memory. Needs every partition endpoint's row count (a query
    without a row selection); ``stream_schema`` is the FlightInfo's schema."""
    parts = [e for e in endpoints if not e.immutable]
    if not parts:
        return read_concatenated(connection, endpoints, schema)
    assembler = RowAssembler(stream_schema, [e.rows for e in parts])
    jobs: list[tuple[Endpoint, int | None]] = []
    index = 0
    for endpoint in endpoints:
        jobs.append((endpoint, None if endpoint.immutable else index))
        index += 0 if endpoint.immutable else 1

    def fetch(job: tuple[Endpoint, int | None]) -> pa.Table | None:
        endpoint, part = job
        if part is None:
            return fetch_table(connection, endpoint)
        peer = connection.for_location(endpoint.location)

        def run(client: flight.FlightClient, options: flight.FlightCallOptions) -> None:
            rows = assembler.part(part)  # a new one for each attempt
            for chunk in client.do_get(flight.Ticket(endpoint.ticket), options):
                rows.add(chunk.data)
            rows.finish()

        peer.call(run)
        return None

    workers = max(1, connection.options.parallelism)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zc-fetch") as pool:
        tables = list(pool.map(fetch, jobs))
    immutable: dict[str, zc.Variable] = {}
    for table in tables:
        if table is not None:
            immutable.update(decode(table, schema))
    return rebind(assembler.dataset(), schema), immutable


def assemble(
    schema: zc.DatasetSchema,
    var_paths: list[str],
    axis: str,
    partitions: list[dict[str, zc.Variable]],
    immutable: dict[str, zc.Variable],
) -> zc.Dataset:
    """Concatenate partition variables in order and merge the immutable ones."""
    selected = schema.select(var_paths) if var_paths else schema.select([])
    partitioned = [p for p in var_paths if not schema.all_variables()[p].immutable]
    variables: dict[str, zc.Variable] = dict(immutable)
    if partitions and partitioned:
        parts = [
            zc.Dataset(schema.select(partitioned), {p.lstrip("/"): v[p] for p in partitioned})
            for v in partitions
        ]
        merged = concat(parts, axis)
        variables.update({"/" + k: v for k, v in merged.all_variables().items()})
    ordered = {p.lstrip("/"): variables[p] for p in var_paths if p in variables}
    return zc.Dataset(selected, ordered, attrs=dict(schema.attrs))


# -- lazy (Dask) -----------------------------------------------------------------------------
def _fetch_remote(
    spec: tuple[str, dict[str, Any], list[tuple[bytes, bytes]], float | None],
    location: str | None,
    ticket: bytes,
) -> pa.Table:
    """Fetch one endpoint from a worker process with its own Flight client."""
    where, client_kwargs, headers, timeout = spec
    client = flight.FlightClient(location or where, **client_kwargs)
    try:
        options = flight.FlightCallOptions(timeout=timeout, headers=headers)
        return client.do_get(flight.Ticket(ticket), options).read_all()
    finally:
        client.close()


def _column(table: pa.Table, schema_json: dict[str, Any], path: str) -> numpy.ndarray[Any, Any]:
    schema = zc.DatasetSchema.from_json(schema_json)
    return decode(table, schema)[path].to_numpy()


def lazy_dataset(
    connection: Connection,
    endpoints: list[Endpoint],
    schema: zc.DatasetSchema,
    var_paths: list[str],
    axis: str,
    immutable: dict[str, zc.Variable],
) -> zc.Dataset:
    """Return a Dataset of Dask arrays: one chunk per partition, each a do_get of its endpoint."""
    import dask
    import dask.array as da

    everything = schema.all_variables()
    dims = schema.all_dimensions()
    partitioned = [p for p in var_paths if not everything[p].immutable]
    spec = connection.fetch_spec
    schema_json = schema.to_json()
    tables = [
        dask.delayed(_fetch_remote, pure=True)(spec, e.location, e.ticket)
        for e in endpoints
        if not e.immutable
    ]
    rows = [e.rows for e in endpoints if not e.immutable]
    variables: dict[str, zc.Variable] = dict(immutable)
    for path in partitioned:
        var = everything[path]
        chunks = []
        for table, count in zip(tables, rows, strict=True):
            shape = tuple(
                (count if count >= 0 else numpy.nan) if d == axis else (dims[d].size or 0)
                for d in var.dimensions
            )
            chunks.append(
                da.from_delayed(
                    dask.delayed(_column, pure=True)(table, schema_json, path),
                    shape=shape,
                    dtype=var.dtype,
                )
            )
        data = da.concatenate(chunks, axis=var.dimensions.index(axis)) if chunks else None
        if data is not None:
            variables[path] = zc.Variable(var, data)
    selected = schema.select(var_paths) if var_paths else schema.select([])
    ordered = {p.lstrip("/"): variables[p] for p in var_paths if p in variables}
    return zc.Dataset(selected, ordered, attrs=dict(schema.attrs))
