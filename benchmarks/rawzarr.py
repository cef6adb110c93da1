"""The baselines: the same arrays read and written with zarr's own async API, no engine.

Reads open each array of each partition and read it whole, then concatenate along the axis.
Writes create each array with the exact metadata the engine gave it (chunks, shards, codecs,
fill value) and write it whole. Both run on zarr's own event loop (``zarr.core.sync.sync``)
with the arrays of a partition at once and, like the engine, at most ``limit`` partitions
(``zcollection.config["partition.concurrency"]``) in flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy
import zarr.api.asynchronous as zarr_async
import zcollection as zc
from zarr.abc.store import Store as ZarrStore
from zarr.core.sync import sync
from zarr.storage import StorePath


@dataclass(frozen=True)
class ArraySpec:
    """What is needed to create an array like the engine did."""

    shape: tuple[int, ...]
    dtype: Any
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    filters: Any
    serializer: Any
    compressors: Any
    fill_value: Any
    dimension_names: Any


async def _spec(store: ZarrStore, path: str) -> ArraySpec:
    array = await zarr_async.open_array(store=StorePath(store, path), zarr_format=3)
    return ArraySpec(
        shape=tuple(array.shape),
        dtype=array.dtype,
        chunks=tuple(array.chunks),
        shards=tuple(array.shards) if array.shards is not None else None,
        filters=array.filters,
        serializer=array.serializer,
        compressors=array.compressors,
        fill_value=array.metadata.fill_value,
        dimension_names=getattr(array.metadata, "dimension_names", None),
    )


def array_specs(store: ZarrStore, paths: list[str], names: list[str]) -> dict[str, ArraySpec]:
    """Return the spec of each ``partition/name`` array the engine wrote in ``store``."""
    keys = [f"{p}/{n}" for p in paths for n in names]

    async def run() -> list[ArraySpec]:
        return list(await asyncio.gather(*(_spec(store, k) for k in keys)))

    return dict(zip(keys, sync(run()), strict=True))


def _limit() -> int:
    return int(zc.config["partition.concurrency"])


def read(
    store: ZarrStore, paths: list[str], names: list[str]
) -> dict[str, numpy.ndarray[Any, Any]]:
    """Read arrays ``names`` of every partition of ``store``; concatenate them in order."""
    limit = _limit()

    async def one(key: str) -> numpy.ndarray[Any, Any]:
        array = await zarr_async.open_array(store=StorePath(store, key), zarr_format=3)
        return numpy.asarray(await array.getitem(Ellipsis))

    async def partition(semaphore: asyncio.Semaphore, path: str) -> list[numpy.ndarray[Any, Any]]:
        async with semaphore:
            return list(await asyncio.gather(*(one(f"{path}/{n}") for n in names)))

    async def run() -> list[list[numpy.ndarray[Any, Any]]]:
        semaphore = asyncio.Semaphore(limit)
        return list(await asyncio.gather(*(partition(semaphore, p) for p in paths)))

    parts = sync(run())
    return {
        name: numpy.concatenate([part[i] for part in parts], axis=0) for i, name in enumerate(names)
    }


def write(
    store: ZarrStore,
    specs: dict[str, ArraySpec],
    data: dict[str, numpy.ndarray[Any, Any]],
) -> None:
    """Create each array of ``specs`` in ``store`` and write ``data[key]`` into it."""
    limit = _limit()
    by_partition: dict[str, list[str]] = {}
    for key in specs:
        by_partition.setdefault(key.rsplit("/", 1)[0], []).append(key)

    async def one(key: str, spec: ArraySpec) -> None:
        array = await zarr_async.create_array(
            StorePath(store, key),
            shape=spec.shape,
            dtype=spec.dtype,
            chunks=spec.chunks,
            shards=spec.shards,
            filters=spec.filters,
            serializer=spec.serializer,
            compressors=spec.compressors,
            fill_value=spec.fill_value,
            dimension_names=spec.dimension_names,
            zarr_format=3,
            overwrite=True,
        )
        await array.setitem(Ellipsis, data[key])

    async def partition(semaphore: asyncio.Semaphore, keys: list[str]) -> None:
        async with semaphore:
            await asyncio.gather(*(one(k, specs[k]) for k in keys))

    async def run() -> None:
        semaphore = asyncio.Semaphore(limit)
        await asyncio.gather(*(partition(semaphore, keys) for keys in by_partition.values()))

    sync(run())
