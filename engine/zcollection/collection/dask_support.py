"""Dask in the collection: lazy inserts, lazy queries and partitions run on a distributed client.

Nothing here imports dask at module level: the engine stays importable without it, and these
functions import dask (or distributed) only when lazy data or a client is actually in play.
"""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy
import zarr
import zarr.api.asynchronous as zarr_async
from zarr.errors import NodeNotFoundError
from zarr.storage import StorePath

from .._sync import run_sync
from ..config import config
from ..data import Dataset, Variable
from ..errors import StoreError
from ..schema import VariableSchema
from ..selection import RowSelection, rows_of
from ..store import MemoryStore, Store, open_store
from .zarr_io import join, read_array

if TYPE_CHECKING:
    from .collection import Collection


# -- lazy data on insert ---------------------------------------------------------------------
def is_dask(data: Any) -> bool:
    """Return whether ``data`` is a Dask collection (without importing dask)."""
    return not isinstance(data, numpy.ndarray) and hasattr(data, "__dask_graph__")


def has_dask(dataset: Dataset) -> bool:
    """Return whether any variable of ``dataset`` is backed by a Dask array."""
    return any(is_dask(v.data) for v in dataset.all_variables().values())


def materialise(dataset: Dataset, names: Iterable[str] | None = None) -> Dataset:
    """Return ``dataset`` with its Dask variables computed (all, or only those in ``names``).

    The variables are computed together in one ``dask.compute`` call, so the parts of the
    graph they share run once. Numpy variables are left as they are.
    """
    wanted = None if names is None else {n.lstrip("/") for n in names}
    variables = dataset.all_variables()
    lazy = [
        name
        for name, var in variables.items()
        if (wanted is None or name in wanted) and is_dask(var.data)
    ]
    if not lazy:
        return dataset
    import dask

    values = dask.compute(*(variables[name].data for name in lazy))
    computed = dict(variables)
    for name, value in zip(lazy, values, strict=True):
        computed[name] = variables[name].with_data(numpy.asarray(value))
    return dataset.replace(computed)


async def materialise_async(dataset: Dataset, names: Iterable[str] | None = None) -> Dataset:
    """Compute the Dask variables of ``dataset`` in a worker thread, off the I/O loop."""
    wanted = None if names is None else [n.lstrip("/") for n in names]
    variables = dataset.all_variables()
    if not any(
        is_dask(var.data) for name, var in variables.items() if wanted is None or name in wanted
    ):
        return dataset
    return await asyncio.to_thread(materialise, dataset, wanted)


# -- lazy queries ----------------------------------------------------------------------------
async def _open_lazy(zs: Any, path: str, var: VariableSchema) -> tuple[Any, tuple[int, ...]] | None:
    """Return ``(dask array, shape)`` over the Zarr array at ``path`` (None when absent)."""
    import dask.array as da

    try:
        array = await zarr_async.open_array(store=StorePath(zs, path), zarr_format=3)
    except (FileNotFoundError, KeyError, NodeNotFoundError):
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot open array {path!r}: {exc}") from exc
    reader = zarr.Array(array)
    shape = tuple(int(n) for n in reader.shape)
    chunks = reader.shards or reader.chunks
    dtype = numpy.dtype(reader.dtype)
    lazy = da.from_array(
        reader,
        chunks=tuple(max(1, int(c)) for c in chunks),
        name=f"zcollection-{var.name}-{uuid.uuid4().hex}",
        meta=numpy.empty((0,) * len(shape), dtype=dtype),
        asarray=True,
    )
    return lazy, shape


async def read_partition_lazy(
    collection: Collection,
    zs: Any,
    path: str,
    var_paths: list[str],
    selection: RowSelection | None = None,
) -> dict[str, Variable]:
    """Return the partitioned variables ``var_paths`` of one partition as Dask arrays.

    Only array metadata is read; chunks are read when the arrays are computed. With a
    ``selection``, the axis variable is read eagerly to find the kept rows.
    """
    import dask.array as da

    axis = collection.axis
    all_vars = collection.schema.all_variables()
    wanted = [p for p in var_paths if not all_vars[p].immutable]
    rows: slice | numpy.ndarray[Any, Any] = slice(None)
    if selection is not None and not selection.is_open:
        axis_path = "/" + collection._merge_axis()
        axis_var = all_vars[axis_path]
        values = await read_array(zs, join(path, axis_path))
        if values is None:
            values = numpy.empty(0, dtype=axis_var.dtype)
        rows = rows_of(selection.typed(axis_var.dtype).mask(values))
    opened = await asyncio.gather(*(_open_lazy(zs, join(path, p), all_vars[p]) for p in wanted))
    length: int | None = None
    for var_path, item in zip(wanted, opened, strict=True):
        if item is not None:
            length = item[1][all_vars[var_path].dimensions.index(axis)]
            break
    if length is None:
        length = await collection._partition_length(zs, path)
    sizes = {n: d.size or 0 for n, d in collection.schema.all_dimensions().items()}
    sizes[axis] = length
    result: dict[str, Variable] = {}
    for var_path, item in zip(wanted, opened, strict=True):
        var = all_vars[var_path]
        if item is None:
            shape = tuple(sizes[d] for d in var.dimensions)
            fill = 0 if var.fill_value is None else var.fill_value
            data = da.full(shape, fill, dtype=var.dtype, chunks=shape or ())
        else:
            data = item[0]
        if not (isinstance(rows, slice) and rows == slice(None)):
            data = data[(slice(None),) * var.dimensions.index(axis) + (rows,)]
        result[var_path] = Variable(var, data)
    return result


# -- map / update on a dask.distributed client -----------------------------------------------
@dataclass(frozen=True)
class StoreRef:
    """What a worker needs to reopen a collection: its store (when it pickles) or its URL."""

    url: str
    read_only: bool
    store: Store | None = None

    def open_store(self) -> Store:
        """Return the store on the worker."""
        if self.store is not None:
            return self.store
        return open_store(self.url, read_only=self.read_only)

    def open_collection(self) -> Collection:
        """Reopen the collection on the worker."""
        from .collection import Collection

        return Collection.open(self.open_store(), read_only=self.read_only)


def _transactional(store: Store) -> bool:
    return type(store).new_session is not Store.new_session


def client_for(store: Store, client: Any, *, write: bool) -> Any:
    """Return the distributed client to run partitions on (None: run them here).

    ``client`` wins; without it, ``config["dask.client"]`` is used when the store can be
    reached from worker processes (otherwise the partitions run here, as without a client).

    Raises:
        StoreError: If ``client`` is given and the store cannot be used from workers: a
            MemoryStore (it lives in this process only), or, for ``update``, a transactional
            store (its one commit is made from this process).
    """
    explicit = client is not None
    chosen = client if explicit else config["dask.client"]
    if chosen is None:
        return None
    reason: str | None = None
    if isinstance(store, MemoryStore):
        reason = (
            f"{store.root_uri} is a MemoryStore, which lives in this process only; the "
            "workers of a dask cluster cannot reach it (use a file:// or object store URL)"
        )
    elif write and _transactional(store):
        reason = (
            f"{store.root_uri} is transactional: an update is one commit made from this "
            "process, so its partitions cannot be written by dask workers (run update "
            "without a client)"
        )
    if reason is None:
        return chosen
    if explicit:
        raise StoreError(reason)
    return None


def store_ref(store: Store, *, read_only: bool) -> StoreRef:
    """Return the picklable reference workers reopen ``store`` from."""
    try:
        pickle.dumps(store)
    except Exception:
        return StoreRef(store.root_uri, read_only)
    return StoreRef(store.root_uri, read_only, store)


def _map_task(ref: StoreRef, path: str, var_paths: list[str], function: bytes) -> Any:
    """Worker side of ``map``: load one partition and apply the function."""
    fn = pickle.loads(function)
    collection = ref.open_collection()
    dataset = run_sync(collection.load_partition_async(path, variables=var_paths))
    return fn(dataset)


async def _update_one(
    collection: Collection, path: str, var_paths: list[str], fn: Callable[[Dataset], Dataset]
) -> None:
    async with collection.store.session_async("update") as session:
        zs = session.zarr_store()
        immutable = await collection._read_immutable(zs, var_paths)
        await collection._update_partition(zs, path, var_paths, immutable, fn)


def _update_task(ref: StoreRef, path: str, var_paths: list[str], function: bytes) -> str:
    """Worker side of ``update``: load one partition, apply the function, write it back."""
    fn = pickle.loads(function)
    collection = ref.open_collection()
    run_sync(_update_one(collection, path, var_paths, fn))
    return path


async def run_on_client(
    collection: Collection,
    client: Any,
    fn: Callable[[Dataset], Any],
    paths: list[str],
    var_paths: list[str],
    *,
    write: bool,
) -> list[Any]:
    """Run ``fn`` on every partition of ``paths`` on the workers of ``client``.

    Each task reopens the collection from its store, loads its partition, applies ``fn`` and
    (with ``write``) writes the result back. Results come back in the order of ``paths``.
    ``fn`` is serialised once, with cloudpickle (so lambdas, closures and functions of
    modules registered with ``cloudpickle.register_pickle_by_value`` travel by value), and
    scattered to the cluster once for all the tasks.
    """
    if getattr(client, "asynchronous", False):
        raise TypeError("map/update need a synchronous distributed.Client (asynchronous=False)")
    if not paths:
        return []
    import cloudpickle

    function = cloudpickle.dumps(fn)
    ref = store_ref(collection.store, read_only=not write)
    task = _update_task if write else _map_task
    verb = "update" if write else "map"
    token = uuid.uuid4().hex[:12]

    def run() -> list[Any]:
        shared = client.scatter(function, hash=False)
        futures = [
            client.submit(task, ref, path, var_paths, shared, key=f"zcollection-{verb}-{token}-{i}")
            for i, path in enumerate(paths)
        ]
        try:
            return list(client.gather(futures))
        except BaseException:
            client.cancel([*futures, shared])
            raise

    return await asyncio.to_thread(run)
