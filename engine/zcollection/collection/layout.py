"""Finding the partitions of a collection by walking its store."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..errors import PartitionError
from ..partitioning import Partitioning, sort_paths
from ..store.base import list_dir
from .zarr_io import PARTITION_KEY_ATTR, join, read_group_attrs


async def walk_partitions(store: Any, partitioning: Partitioning) -> list[str]:
    """Return every complete partition path of the store, in key order.

    A partition is complete when its group's zarr.json carries the partition key attribute,
    which the writer puts there last.
    """
    names = partitioning.axis
    level = [""]
    for name in names:
        listings = await asyncio.gather(*(list_dir(store, prefix) for prefix in level))
        level = [
            join(prefix, child)
            for prefix, children in zip(level, listings, strict=True)
            for child in children
            if child.startswith(name + "=")
        ]
    valid = []
    for path in level:
        try:
            partitioning.decode(path)
        except PartitionError:
            continue
        valid.append(path)
    attrs = await asyncio.gather(*(read_group_attrs(store, p) for p in valid))
    complete = [p for p, a in zip(valid, attrs, strict=True) if a and PARTITION_KEY_ATTR in a]
    return sort_paths(partitioning, complete)


#: Folder of a partition written aside to be swapped in (``.<name>.zc-<id>``, see
#: ``Collection._write_partition``): only a crash leaves one behind.
STAGED = re.compile(r"^\..+\.zc-[0-9a-f]{12}(\.old)?$")


async def staged_leftovers(store: Any, partitioning: Partitioning) -> list[str]:
    """Return the folders of partitions written aside and never swapped in (or swapped out
    and not deleted): what a crashed writer leaves, which no listing shows."""
    found: list[str] = []
    level = [""]
    for name in partitioning.axis:
        listings = await asyncio.gather(*(list_dir(store, prefix) for prefix in level))
        pairs = [(p, c) for p, children in zip(level, listings, strict=True) for c in children]
        found += [join(prefix, child) for prefix, child in pairs if STAGED.match(child)]
        level = [join(prefix, child) for prefix, child in pairs if child.startswith(name + "=")]
    return found


def parents(path: str) -> list[str]:
    """Return the intermediate group paths of a partition path, deepest first."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
