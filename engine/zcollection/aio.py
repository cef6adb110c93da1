"""Public async facade: every entry point is a coroutine; use it inside an event loop.

Collection and View methods have ``_async`` twins (``query_async``, ``insert_async``, ...).
"""

from __future__ import annotations

import os
from typing import Any

from .api import create_collection_async, open_collection_async
from .collection import Collection
from .partitioning import Partitioning
from .schema import DatasetSchema
from .store import Store


async def create_collection(
    path: str | os.PathLike[str] | Store,
    *,
    schema: DatasetSchema,
    axis: str,
    partitioning: Partitioning,
    catalog_enabled: bool = False,
    overwrite: bool = False,
) -> Collection:
    """Async create. Returns the same Collection as the sync API."""
    result: Any = await create_collection_async(
        path,
        schema=schema,
        axis=axis,
        partitioning=partitioning,
        catalog_enabled=catalog_enabled,
        overwrite=overwrite,
    )
    return result


async def open_collection(path: str | os.PathLike[str] | Store, *, mode: str = "r") -> Collection:
    """Async open. Returns a Collection; read_only follows ``mode``."""
    result: Any = await open_collection_async(path, mode=mode)
    return result


__all__ = ["create_collection", "open_collection"]
