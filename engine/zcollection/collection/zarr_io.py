"""Zarr v3 arrays and groups of one partition: the only place codec data becomes zarr codecs."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import numpy
import zarr.api.asynchronous as zarr_async
from zarr.abc.store import Store as ZarrStoreABC
from zarr.core.buffer import default_buffer_prototype
from zarr.errors import NodeNotFoundError, UnstableSpecificationWarning
from zarr.storage import StorePath

from ..codecs import CodecStack, shard_decision
from ..errors import StoreError
from ..schema import DatasetSchema, VariableSchema
from ..store.base import read_key, write_key

# Fixed-width bytes have no final Zarr v3 spec yet; the format is stable for our purposes.
warnings.filterwarnings("ignore", category=UnstableSpecificationWarning)

#: Attribute of a partition group that holds its key; written last, so its presence marks a
#: complete partition.
PARTITION_KEY_ATTR = "_zc_partition_key"


def join(*parts: str) -> str:
    """Join store path components with "/"."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def group_document(attrs: dict[str, Any] | None = None) -> bytes:
    """Return the zarr.json of a Zarr v3 group."""
    doc = {"zarr_format": 3, "node_type": "group", "attributes": attrs or {}}
    return json.dumps(doc, allow_nan=True).encode()


async def write_group(store: ZarrStoreABC, path: str, attrs: dict[str, Any] | None = None) -> None:
    """Write (or rewrite) the zarr.json of the group at ``path``."""
    await write_key(store, join(path, "zarr.json"), group_document(attrs))


async def read_group_attrs(store: ZarrStoreABC, path: str) -> dict[str, Any] | None:
    """Return the attributes of the group at ``path`` (None when there is no group)."""
    raw = await read_key(store, join(path, "zarr.json"))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"corrupt group metadata at {path!r}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None
    attrs = doc.get("attributes") or {}
    return attrs if isinstance(attrs, dict) else {}


def _chunk_shape(
    var: VariableSchema, shape: tuple[int, ...], schema: DatasetSchema
) -> tuple[int, ...]:
    chunks = schema.dim_chunks
    return tuple(
        max(1, min(chunks.get(dim) or extent, extent) if extent else 1)
        for dim, extent in zip(var.dimensions, shape, strict=True)
    )


def _shard_shape(
    var: VariableSchema, shape: tuple[int, ...], chunks: tuple[int, ...], schema: DatasetSchema
) -> tuple[int, ...] | None:
    dims = schema.all_dimensions()
    explicit = [dims[d].shards if d in dims else None for d in var.dimensions]
    if any(s is not None for s in explicit):
        shard = tuple(
            max(c, min(s or c, max(n, 1)) // c * c)
            for s, c, n in zip(explicit, chunks, shape, strict=True)
        )
        return None if shard == chunks else shard
    stack: CodecStack = var.codecs
    if not stack.sharded or stack.shard_target_bytes is None:
        return None
    return shard_decision(shape, chunks, var.dtype.itemsize, stack.shard_target_bytes)


async def write_array(
    store: ZarrStoreABC,
    path: str,
    var: VariableSchema,
    data: numpy.ndarray[Any, Any],
    schema: DatasetSchema,
) -> None:
    """Create the Zarr array of ``var`` at ``path`` and write ``data`` into it."""
    shape = tuple(int(s) for s in data.shape)
    chunks = _chunk_shape(var, shape, schema)
    shards = _shard_shape(var, shape, chunks, schema)
    stack = var.codecs
    kwargs: dict[str, Any] = {
        "filters": list(stack.array_to_array),
        "compressors": list(stack.bytes_to_bytes),
    }
    if stack.array_to_bytes is not None:
        kwargs["serializer"] = stack.array_to_bytes
    try:
        array = await zarr_async.create_array(
            StorePath(store, path),
            shape=shape,
            dtype=var.dtype,
            chunks=chunks,
            shards=shards,
            fill_value=var.fill_value,
            dimension_names=list(var.dimensions),
            attributes=_jsonable_attrs(var.attrs),
            overwrite=True,
            zarr_format=3,
            config={"write_empty_chunks": _fill_equal_is_lossy(data, var.fill_value)},
            **kwargs,
        )
        if data.size:
            await array.setitem(Ellipsis, numpy.ascontiguousarray(data))
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(f"cannot write array {path!r}: {exc}") from exc


def _fill_equal_is_lossy(data: numpy.ndarray[Any, Any], fill: Any) -> bool:
    """Return whether an element equals ``fill`` by value but not bit for bit.

    Zarr skips chunks whose elements all equal the fill value (NaN equal to NaN) and reads
    them back as the fill value: that would lose NaN payloads (and complex signed zeros), so
    such arrays have every chunk written.
    """
    if fill is None or data.dtype.kind not in "fc" or not data.size:
        return False
    target = numpy.asarray(fill, dtype=data.dtype)
    if data.dtype.kind == "f":
        # fast exits: a non-zero number has one encoding (equal values are equal bits), and
        # without any NaN nothing equals a NaN fill (min propagates NaN: one pass, no copy)
        if not bool(numpy.isnan(target)):
            if bool(target != 0):
                return False
        else:
            with numpy.errstate(invalid="ignore"):
                if not bool(numpy.isnan(numpy.min(data))):
                    return False
    with numpy.errstate(invalid="ignore"):
        same = data == target
        if bool(numpy.isnan(target)):
            same |= numpy.isnan(data)
    if not bool(same.any()):
        return False
    width = data.dtype.itemsize
    rows = numpy.ascontiguousarray(data).view(numpy.uint8).reshape(-1, width)
    return bool((rows[same.reshape(-1)] != target.reshape(1).view(numpy.uint8)).any())


async def _open_array(store: ZarrStoreABC, path: str) -> Any:
    """Open the Zarr array at ``path`` (None when it does not exist)."""
    try:
        return await zarr_async.open_array(store=StorePath(store, path), zarr_format=3)
    except (FileNotFoundError, NodeNotFoundError):
        return None
    except (KeyError, TypeError) as exc:
        raise StoreError(f"corrupt array metadata at {path!r}: missing {exc}") from exc
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot open array {path!r}: {exc}") from exc


async def read_array(
    store: ZarrStoreABC, path: str, selection: Any = Ellipsis
) -> numpy.ndarray[Any, Any] | None:
    """Read the Zarr array at ``path`` (None when it does not exist)."""
    array = await _open_array(store, path)
    if array is None:
        return None
    if selection is Ellipsis:
        return await _read_whole(array)
    result = await array.getitem(selection)
    return numpy.asarray(result)


class ShapeChangedError(Exception):
    """Raised by :func:`read_array_into` when the stored array is not of the expected shape."""


async def read_array_into(store: ZarrStoreABC, path: str, out: numpy.ndarray[Any, Any]) -> bool:
    """Read the whole Zarr array at ``path`` into ``out``; return False when it does not exist.

    An array of ``out``'s dtype is decoded by zarr straight into it, block by block;
    another dtype (big-endian data, read as native) is read, then converted into it.

    Raises:
        ShapeChangedError: If the stored array's shape is not ``out``'s.
    """
    array = await _open_array(store, path)
    if array is None:
        return False
    shape = tuple(int(n) for n in array.shape)
    if shape != out.shape:
        raise ShapeChangedError(f"{path!r} has shape {shape}, expected {out.shape}")
    if not out.size:
        return True
    if array.dtype != out.dtype or not out.flags.c_contiguous or not shape:
        out[...] = await _read_whole(array)
        return True
    step = int(array.chunks[0])
    rows = shape[0]
    if out.nbytes > READ_WHOLE_MAX_BYTES:  # bounded decoding memory, as _read_whole
        rows = max(step, READ_BLOCK_BYTES * shape[0] // out.nbytes // step * step)
    nd_buffer = default_buffer_prototype().nd_buffer
    for start in range(0, shape[0], rows):
        await array.get_orthogonal_selection(
            (slice(start, start + rows),), out=nd_buffer.from_numpy_array(out[start : start + rows])
        )
    return True


#: Whole arrays larger than this are read in row blocks of about ``READ_BLOCK_BYTES`` into
#: one output array: zarr's read of a whole sharded array holds two to three times the
#: array while it decodes, which would make a big partition cost several times its size.
READ_WHOLE_MAX_BYTES = 32 * 1024 * 1024
READ_BLOCK_BYTES = 4 * 1024 * 1024


async def _read_whole(array: Any) -> numpy.ndarray[Any, Any]:
    """Read all of ``array``; big ones block by block (aligned on chunks), one at a time."""
    shape = tuple(int(n) for n in array.shape)
    try:
        step = int(array.chunks[0]) if shape else 0
        nbytes = int(array.nbytes)
    except (NotImplementedError, TypeError, ValueError):
        step = nbytes = 0
    if not shape or step <= 0 or shape[0] <= step or nbytes <= READ_WHOLE_MAX_BYTES:
        return numpy.asarray(await array.getitem(Ellipsis))
    rows = max(step, READ_BLOCK_BYTES * shape[0] // nbytes // step * step)
    out = numpy.empty(shape, dtype=array.dtype)
    nd_buffer = default_buffer_prototype().nd_buffer
    for start in range(0, shape[0], rows):
        # zarr decodes straight into the rows of the output: no copy of the block
        await array.get_orthogonal_selection(
            (slice(start, start + rows),), out=nd_buffer.from_numpy_array(out[start : start + rows])
        )
    return out


async def array_shape(store: ZarrStoreABC, path: str) -> tuple[int, ...] | None:
    """Return the shape of the Zarr array at ``path`` from its metadata (None if absent)."""
    raw = await read_key(store, join(path, "zarr.json"))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return tuple(int(n) for n in doc["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"corrupt array metadata at {path!r}: {exc}") from exc


def in_dtype(array: numpy.ndarray[Any, Any], dtype: numpy.dtype[Any]) -> numpy.ndarray[Any, Any]:
    """Return ``array`` in the schema's exact dtype (zarr reads big-endian data as native)."""
    return array if array.dtype == dtype else array.astype(dtype)


async def gather_limited(limit: int, coros: list[Any]) -> list[Any]:
    """Run coroutines with at most ``limit`` in flight; results in input order."""
    semaphore = asyncio.Semaphore(max(1, limit))

    async def run(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(run(c) for c in coros)))


def _jsonable_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    from ..schema.variable import to_jsonable

    return to_jsonable(attrs)
