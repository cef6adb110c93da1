"""Decoding what a client sends with do_put into an engine Dataset."""

from __future__ import annotations

import pyarrow as pa
import zcollection as zc
from zcollection_proto import batches_to_dataset, immutable_from_table
from zcollection_proto.arrow import SCHEMA_KEY

from .errors import ClientError


def decode_put(
    schema: pa.Schema,
    batches: list[pa.RecordBatch],
    immutable_ipc: bytes,
    collection: zc.Collection,
) -> zc.Dataset:
    """Return the dataset of a do_put stream plus the immutable table of its command.

    Streams without zcollection metadata (from any Arrow client) are read against the
    collection's schema.
    """
    if SCHEMA_KEY.encode() in (schema.metadata or {}):
        rows = batches_to_dataset(schema, batches)
    else:
        rows = batches_to_dataset(
            schema, batches, dataset_schema=collection.schema, axis=collection.axis
        )
    if not immutable_ipc:
        return rows
    try:
        table = pa.ipc.open_stream(immutable_ipc).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ClientError(f"the immutable variables are not an Arrow IPC stream: {exc}") from exc
    fixed = immutable_from_table(table)
    variables = dict(rows.all_variables())
    for name, variable in fixed.all_variables().items():
        if name in variables:
            raise ClientError(f"variable {name!r} is sent both as rows and as immutable")
        variables[name] = variable
    paths = ["/" + name for name in variables]
    known = set(collection.schema.all_variables())
    schema_paths = [p for p in paths if p in known]
    unknown = sorted(set(paths) - known)
    if unknown:
        raise zc.SchemaError(f"unknown variable(s) {unknown}; the collection has {sorted(known)}")
    return zc.Dataset(collection.schema.select(schema_paths), variables)
