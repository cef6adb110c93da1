"""The factory functions: create_collection and open_collection (sync and async)."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Any

from ._sync import run_sync
from .collection import Collection
from .partitioning import Partitioning
from .schema import DatasetSchema
from .store import Store, open_store

#: Entry-point group through which optional packages claim URL schemes for whole collections
#: (the Flight client registers ``grpc``, ``grpc+tcp`` and ``grpc+tls``).
COLLECTION_SCHEMES_GROUP = "zcollection.collection_schemes"


def _remote_factory(path: Any) -> Any | None:
    """Return the entry point object handling ``path``'s scheme, if another package claims it."""
    if not isinstance(path, str) or "://" not in path:
        return None
    scheme = path.split("://", 1)[0].lower()
    if scheme in ("file", "memory", "s3", "gs", "az", "http", "https", "icechunk", "icechunk+s3"):
        return None
    for ep in entry_points(group=COLLECTION_SCHEMES_GROUP):
        if ep.name == scheme:
            return ep.load()
    return None


def _parse_mode(mode: str) -> bool:
    if mode not in ("r", "rw"):
        raise ValueError(f"mode must be 'r' (read-only) or 'rw' (read-write), not {mode!r}")
    return mode == "r"


async def create_collection_async(
    path: str | os.PathLike[str] | Store,
    *,
    schema: DatasetSchema,
    axis: str,
    partitioning: Partitioning,
    catalog_enabled: bool = False,
    overwrite: bool = False,
) -> Any:
    """Create a new collection at ``path`` and return its handle."""
    remote = _remote_factory(path)
    if remote is not None:
        return await remote.create_collection_async(
            path,
            schema=schema,
            axis=axis,
            partitioning=partitioning,
            catalog_enabled=catalog_enabled,
            overwrite=overwrite,
        )
    store = open_store(path)
    return await Collection.create_async(
        store,
        schema=schema,
        axis=axis,
        partitioning=partitioning,
        catalog_enabled=catalog_enabled,
        overwrite=overwrite,
    )


async def open_collection_async(path: str | os.PathLike[str] | Store, *, mode: str = "r") -> Any:
    """Open an existing collection in ``r`` (read-only) or ``rw`` mode."""
    read_only = _parse_mode(mode)
    remote = _remote_factory(path)
    if remote is not None:
        return await remote.open_collection_async(path, mode=mode)
    store = open_store(path, read_only=read_only) if not isinstance(path, Store) else path
    return await Collection.open_async(store, read_only=read_only)


def create_collection(
    path: str | os.PathLike[str] | Store,
    *,
    schema: DatasetSchema,
    axis: str,
    partitioning: Partitioning,
    catalog_enabled: bool = False,
    overwrite: bool = False,
) -> Collection:
    """Create a new collection at ``path`` and return its handle.

    Raises:
        CollectionExistsError: If a collection already exists at ``path`` and not ``overwrite``.
    """
    return run_sync(
        create_collection_async(
            path,
            schema=schema,
            axis=axis,
            partitioning=partitioning,
            catalog_enabled=catalog_enabled,
            overwrite=overwrite,
        )
    )


def open_collection(path: str | os.PathLike[str] | Store, *, mode: str = "r") -> Collection:
    """Open an existing collection in ``r`` (read-only, default) or ``rw`` mode.

    Raises:
        CollectionNotFoundError: If no collection exists at ``path`` (nothing is created).
        ValueError: If ``mode`` is not ``"r"`` or ``"rw"``.
    """
    return run_sync(open_collection_async(path, mode=mode))
