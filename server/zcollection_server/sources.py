"""What a read request reads from: a collection, or a view over a collection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

import pyarrow as pa
import zcollection as zc
from zcollection.collection.zarr_io import PARTITION_KEY_ATTR, read_group_attrs
from zcollection_proto import arrow_schema, immutable_arrow_schema
from zcollection_proto.arrow import PARTITIONING_KEY


class Source(Protocol):
    """The read side of a collection or a view, as the Flight server uses it."""

    name: str
    schema: zc.DatasetSchema
    axis: str
    partitioning: Any

    async def partitions_async(self, filters: str | None) -> list[str]:
        """Return the matching partition paths in key order."""

    async def has_partition_async(self, path: str) -> bool:
        """Return whether partition ``path`` (a canonical path) exists."""

    async def load_async(
        self, path: str, variables: list[str], selection: zc.RowSelection | None
    ) -> zc.Dataset:
        """Return the partitioned ``variables`` of partition ``path``."""

    async def immutable_async(self, variables: list[str]) -> zc.Dataset:
        """Return the immutable ``variables``."""

    async def length_async(self, path: str) -> int:
        """Return the row count of partition ``path``."""


class CollectionSource:
    """Reads of a collection."""

    def __init__(self, name: str, collection: zc.Collection) -> None:
        self.name = name
        self.collection = collection
        self.schema = collection.schema
        self.axis = collection.axis
        self.partitioning = collection.partitioning

    async def partitions_async(self, filters: str | None) -> list[str]:
        return await self.collection.partitions_async(filters=filters)

    async def has_partition_async(self, path: str) -> bool:
        # What a listing checks of each partition (``layout.walk_partitions``): its group
        # carries the partition key, written last. One read, whatever the partition count.
        attrs = await read_group_attrs(self.collection.store.zarr_store(), path)
        return attrs is not None and PARTITION_KEY_ATTR in attrs

    async def load_async(
        self, path: str, variables: list[str], selection: zc.RowSelection | None
    ) -> zc.Dataset:
        return await self.collection.load_partition_async(
            path, variables=variables, selection=selection
        )

    async def immutable_async(self, variables: list[str]) -> zc.Dataset:
        paths = await self.collection.partitions_async()
        if paths:
            return await self.collection.load_partition_async(paths[0], variables=variables)
        result = await self.collection.query_async(variables=variables)
        return result if result is not None else zc.Dataset(self.schema.select(variables))

    async def length_async(self, path: str) -> int:
        return await self.collection.partition_length_async(path)


def split_variables(
    schema: zc.DatasetSchema, variables: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    """Return (partitioned, immutable) absolute variable paths of a selection (all if None)."""
    everything = schema.all_variables()
    wanted = schema.variable_paths(variables)
    partitioned = [p for p in wanted if not everything[p].immutable]
    immutable = [p for p in wanted if everything[p].immutable]
    return partitioned, immutable


def stream_metadata(source: Source) -> dict[str, str]:
    """Extra schema metadata of every stream: the partitioning JSON."""
    return {PARTITIONING_KEY: json.dumps(source.partitioning.to_json())}


def partition_schema(source: Source, partitioned: list[str]) -> pa.Schema:
    """Arrow schema of the partition streams of a selection."""
    return arrow_schema(
        source.schema.select(partitioned), axis=source.axis, extra_metadata=stream_metadata(source)
    )


def immutable_schema(source: Source, immutable: list[str]) -> pa.Schema:
    """Arrow schema of the immutable endpoint of a selection."""
    return immutable_arrow_schema(
        source.schema.select(immutable), axis=source.axis, extra_metadata=stream_metadata(source)
    )


def row_bytes(schema: zc.DatasetSchema, partitioned: list[str], axis: str) -> int:
    """Uncompressed bytes of one row of the partitioned variables."""
    dims = schema.all_dimensions()
    total = 0
    everything = schema.all_variables()
    for path in partitioned:
        var = everything[path]
        count = 1
        for dim in var.dimensions:
            if dim != axis:
                count *= dims[dim].size or 1
        total += count * var.dtype.itemsize
    return total
