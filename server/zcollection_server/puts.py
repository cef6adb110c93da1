"""Decoding what a client sends with do_put into engine Datasets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import zcollection as zc
from pyarrow import flight
from zcollection_proto import ABORT_PUT, batches_to_dataset, immutable_from_table
from zcollection_proto.arrow import SCHEMA_KEY

from .calllog import CallRecord
from .errors import ClientError


def read_batches(
    reader: Iterable[flight.FlightStreamChunk], record: CallRecord
) -> Iterator[pa.RecordBatch]:
    """Yield the record batches of a do_put stream, counted in ``record``.

    Raises:
        ClientError: If the stream cannot be read.
    """
    iterator = iter(reader)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except pa.ArrowException as exc:
            raise ClientError(f"cannot read the stream of record batches: {exc}") from exc
        if chunk.data is None:
            metadata = chunk.app_metadata.to_pybytes() if chunk.app_metadata else b""
            if metadata.startswith(ABORT_PUT):
                reason = metadata[len(ABORT_PUT) :].lstrip(b": ").decode(errors="replace")
                raise ClientError(f"the client abandoned the put{': ' + reason if reason else ''}")
            continue  # other metadata is ignored
        record.rows += chunk.data.num_rows
        record.bytes += chunk.data.nbytes
        yield chunk.data


def decode_rows(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    collection: zc.Collection,
    *,
    copy: bool = True,
) -> zc.Dataset:
    """Return the dataset of record batches of a do_put stream.

    Streams without zcollection metadata (from any Arrow client) are read against the
    collection's schema. ``copy=False``: see ``batches_to_dataset``.
    """
    if SCHEMA_KEY.encode() in (schema.metadata or {}):
        return batches_to_dataset(schema, batches, copy=copy)
    return batches_to_dataset(
        schema, batches, dataset_schema=collection.schema, axis=collection.axis, copy=copy
    )


def decode_immutable(immutable_ipc: bytes) -> zc.Dataset | None:
    """Return the immutable variables sent with an insert command (None: none sent)."""
    if not immutable_ipc:
        return None
    try:
        table = pa.ipc.open_stream(immutable_ipc).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ClientError(f"the immutable variables are not an Arrow IPC stream: {exc}") from exc
    return immutable_from_table(table)


def with_immutable(
    rows: zc.Dataset, fixed: zc.Dataset | None, collection: zc.Collection
) -> zc.Dataset:
    """Return ``rows`` plus the immutable variables ``fixed``.

    Raises:
        ClientError: If a variable is sent both ways.
        SchemaError: If a variable is not in the collection's schema.
    """
    if fixed is None:
        return rows
    variables = dict(rows.all_variables())
    for name, variable in fixed.all_variables().items():
        if name in variables:
            raise ClientError(f"variable {name!r} is sent both as rows and as immutable")
        variables[name] = variable
    paths = ["/" + name for name in variables]
    known = set(collection.schema.all_variables())
    unknown = sorted(set(paths) - known)
    if unknown:
        raise zc.SchemaError(f"unknown variable(s) {unknown}; the collection has {sorted(known)}")
    return zc.Dataset(collection.schema.select(paths), variables)


def decode_put(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    immutable_ipc: bytes,
    collection: zc.Collection,
) -> zc.Dataset:
    """Return the whole dataset of a do_put stream plus the immutable table of its command."""
    fixed = decode_immutable(immutable_ipc)
    return with_immutable(decode_rows(schema, batches, collection), fixed, collection)


def stream_put(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    immutable_ipc: bytes,
    collection: zc.Collection,
) -> Iterator[zc.Dataset]:
    """Yield the dataset of each record batch of a do_put stream as it arrives.

    The immutable variables of the command come with the first dataset; an empty stream
    yields one dataset without rows (its columns are checked all the same). The arrays
    share the memory of their record batch (no copy: the insert copies each partition's
    rows into one array when it writes it).
    """
    fixed = decode_immutable(immutable_ipc)
    empty = True
    for batch in batches:
        rows = decode_rows(schema, [batch], collection, copy=False)
        yield with_immutable(rows, fixed, collection)
        fixed = None
        empty = False
    if empty:
        yield with_immutable(decode_rows(schema, [], collection), fixed, collection)
