"""Collection: a partitioned Zarr v3 collection on a Store."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Iterator
from typing import Any

import numpy

from .._sync import run_sync
from ..config import config
from ..conform import conform
from ..data import Dataset, Variable
from ..data.ops import check_same_variables, concat, full_variable, same_array
from ..errors import (
    CatalogDisabledError,
    CollectionExistsError,
    CollectionNotFoundError,
    PartitionExistsError,
    ReadOnlyError,
    SchemaError,
    StoreError,
)
from ..merge import MergeCallable, resolve
from ..partitioning import Partitioning, check_schema, compile_filter, partition_rows, sort_paths
from ..schema import DatasetSchema
from ..selection import RowSelection, rows_of
from ..store import Store, StoreSession
from ..store.base import delete_prefix, list_dir
from . import catalog, locks
from .config_file import CONFIG_KEY, CollectionConfig
from .dask_support import (
    client_for,
    materialise_async,
    read_partition_lazy,
    run_on_client,
)
from .layout import parents, staged_leftovers, walk_partitions
from .streaming import STREAM_BUFFER_BYTES, PartitionBuffer, PendingPartition, StagedPartition
from .zarr_io import (
    PARTITION_KEY_ATTR,
    ShapeChangedError,
    array_shape,
    gather_limited,
    in_dtype,
    join,
    read_array,
    read_array_into,
    read_group_attrs,
    write_array,
    write_group,
)

IMMUTABLE_PREFIX = "_immutable"
VIEW_CONFIG_KEY = "_zcollection_view.json"

Key = tuple[tuple[str, int], ...]


class Collection:
    """A partitioned Zarr v3 collection on a Store."""

    def __init__(
        self,
        store: Store,
        *,
        schema: DatasetSchema,
        axis: str,
        partitioning: Partitioning,
        catalog_enabled: bool = False,
        read_only: bool = False,
    ) -> None:
        self._store = store
        self._schema = schema.with_partition_axis(axis)
        self._axis = axis
        self._partitioning = partitioning
        self._catalog_enabled = catalog_enabled
        self._read_only = read_only or store.read_only

    # -- properties ---------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """Return the backing store."""
        return self._store

    @property
    def schema(self) -> DatasetSchema:
        """Return the bound dataset schema."""
        return self._schema

    @property
    def axis(self) -> str:
        """Return the name of the partition axis."""
        return self._axis

    @property
    def partitioning(self) -> Partitioning:
        """Return the partitioning strategy."""
        return self._partitioning

    @property
    def read_only(self) -> bool:
        """Return whether the collection is read-only."""
        return self._read_only

    @property
    def catalog_enabled(self) -> bool:
        """Return whether the collection keeps a catalog of its partitions."""
        return self._catalog_enabled

    def __repr__(self) -> str:
        return (
            f"<zcollection.Collection {self._store.root_uri} axis={self._axis!r} "
            f"partitioning={self._partitioning.to_json()} read_only={self._read_only}>"
        )

    # -- create / open ------------------------------------------------------------------
    @classmethod
    async def create_async(
        cls,
        store: Store,
        *,
        schema: DatasetSchema,
        axis: str,
        partitioning: Partitioning,
        catalog_enabled: bool = False,
        overwrite: bool = False,
    ) -> Collection:
        """Write a new collection's root config on ``store`` and return a writable handle."""
        if not isinstance(schema, DatasetSchema):
            raise SchemaError("schema must be a DatasetSchema (use zcollection.Schema().build())")
        bound = schema.with_partition_axis(axis)
        if partitioning.dimension != axis:
            raise SchemaError(
                f"the partitioning splits dimension {partitioning.dimension!r}, "
                f"but the collection axis is {axis!r}"
            )
        check_schema(partitioning, bound)
        config_doc = CollectionConfig(
            axis=axis, partitioning=partitioning, schema=bound, catalog_enabled=catalog_enabled
        )
        if store.read_only:
            raise ReadOnlyError(f"cannot create a collection on read-only store {store.root_uri}")
        async with store.session_async("create collection") as session:
            zs = session.zarr_store()
            exists = await session.meta_exists_async(CONFIG_KEY) or await session.meta_exists_async(
                VIEW_CONFIG_KEY
            )
            if exists and not overwrite:
                raise CollectionExistsError(f"a collection already exists at {store.root_uri}")
            if exists or overwrite:
                await delete_prefix(zs, "")
            await write_group(zs, "", dict(bound.attrs))
            if bound.all_variables_by_role(immutable=True):
                await write_group(zs, IMMUTABLE_PREFIX)
            if catalog_enabled:
                await session.write_meta_async(catalog.CATALOG_KEY, catalog.encode([]))
            await session.write_meta_async(CONFIG_KEY, config_doc.to_bytes())
        return cls(
            store,
            schema=bound,
            axis=axis,
            partitioning=partitioning,
            catalog_enabled=catalog_enabled,
        )

    @classmethod
    def create(
        cls,
        store: Store,
        *,
        schema: DatasetSchema,
        axis: str,
        partitioning: Partitioning,
        catalog_enabled: bool = False,
        overwrite: bool = False,
    ) -> Collection:
        """Write a new collection's root config on ``store`` and return a writable handle."""
        return run_sync(
            cls.create_async(
                store,
                schema=schema,
                axis=axis,
                partitioning=partitioning,
                catalog_enabled=catalog_enabled,
                overwrite=overwrite,
            )
        )

    @classmethod
    async def open_async(cls, store: Store, *, read_only: bool = False) -> Collection:
        """Open the collection stored on ``store``.

        Raises:
            CollectionNotFoundError: If ``store`` holds no collection (nothing is created).
        """
        raw = await store.read_meta_async(CONFIG_KEY)
        if raw is None:
            raise CollectionNotFoundError(f"no collection at {store.root_uri}")
        doc = CollectionConfig.from_bytes(raw, store.root_uri)
        return cls(
            store,
            schema=doc.schema,
            axis=doc.axis,
            partitioning=doc.partitioning,
            catalog_enabled=doc.catalog_enabled,
            read_only=read_only,
        )

    @classmethod
    def open(cls, store: Store, *, read_only: bool = False) -> Collection:
        """Open the collection stored on ``store``."""
        return run_sync(cls.open_async(store, read_only=read_only))

    # -- helpers ------------------------------------------------------------------------
    def _check_writable(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyError(
                f"cannot {what}: the collection at {self._store.root_uri} is read-only"
            )

    def _compile(self, filters: str | None) -> Callable[[dict[str, Any]], bool]:
        return compile_filter(filters, names=self._partitioning.axis)

    def _resolve_variables(self, variables: Iterable[str] | None) -> list[str]:
        """Return absolute paths of the requested variables (all when None), schema order."""
        return self._schema.variable_paths(variables)

    def _merge_axis(self) -> str:
        """Return the variable merge strategies compare rows on."""
        candidates = [self._axis, *self._partitioning_variables()]
        for name in candidates:
            var = self._schema.variables.get(name)
            if var is not None and var.dimensions == (self._axis,):
                return name
        return self._axis

    def _partitioning_variables(self) -> tuple[str, ...]:
        names = getattr(self._partitioning, "variables", None)
        if isinstance(names, tuple):
            return names
        return tuple(self._partitioning.axis)

    @property
    def _coordinated(self) -> bool:
        """Whether this process coordinates its readers and writers (see ``locks``)."""
        return not self._store.transactional

    def _writing(self) -> Any:
        """The writer's turn of this collection in this process (one writer at a time)."""
        return locks.writing(self._store.root_uri, enabled=self._coordinated)

    def _holding(self, path: str, *, exclusive: bool) -> Any:
        """Partition ``path`` held shared (read) or exclusively (swapped or rewritten)."""
        return locks.partition(
            self._store.root_uri, path, exclusive=exclusive, enabled=self._coordinated
        )

    async def _listing(self, io: Store | StoreSession) -> list[str]:
        zs = io.zarr_store()
        if self._catalog_enabled:
            raw = await io.read_meta_async(catalog.CATALOG_KEY)
            if raw is not None:
                paths = catalog.decode(raw)
                if paths is not None:
                    return sort_paths(self._partitioning, paths)
        return await walk_partitions(zs, self._partitioning)

    async def _select_paths(
        self, filters: str | None, io: Store | StoreSession | None = None
    ) -> list[str]:
        predicate = self._compile(filters)
        paths = await self._listing(io if io is not None else self._store)
        if filters is None or not filters.strip():
            return paths
        return [p for p in paths if predicate(dict(self._partitioning.decode(p)))]

    # -- listing ------------------------------------------------------------------------
    async def partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Return relative partition paths in key order, optionally filtered."""
        return await self._select_paths(filters)

    def partitions(self, *, filters: str | None = None) -> Iterator[str]:
        """Yield relative partition paths in key order, optionally filtered.

        Raises:
            ExpressionError: If ``filters`` is malformed or names an unknown key.
        """
        self._compile(filters)
        yield from run_sync(self.partitions_async(filters=filters))

    # -- reading ------------------------------------------------------------------------
    async def _read_immutable(self, zs: Any, paths: list[str]) -> dict[str, Variable]:
        wanted = [p for p in paths if self._schema.all_variables()[p].immutable]
        arrays = await asyncio.gather(*(read_array(zs, join(IMMUTABLE_PREFIX, p)) for p in wanted))
        result = {}
        for path, array in zip(wanted, arrays, strict=True):
            var = self._schema.all_variables()[path]
            if array is None:
                sizes = {d: self._schema.all_dimensions()[d].size or 0 for d in var.dimensions}
                result[path] = full_variable(var, sizes)
            else:
                result[path] = Variable(var, in_dtype(array, var.dtype))
        return result

    async def _partition_length(self, zs: Any, path: str) -> int:
        for var_path, var in self._schema.all_variables().items():
            if var.immutable:
                continue
            shape = await array_shape(zs, join(path, var_path))
            if shape is not None:
                return shape[var.dimensions.index(self._axis)]
        return 0

    async def _read_partition(
        self,
        zs: Any,
        path: str,
        var_paths: list[str],
        selection: RowSelection | None = None,
    ) -> dict[str, Variable]:
        """Read the partitioned variables ``var_paths`` of one partition (missing -> filled).

        With a ``selection``, the axis variable is read first and only the kept rows of the
        other variables are read.
        """
        async with self._holding(path, exclusive=False):
            return await self._read_partition_unlocked(zs, path, var_paths, selection)

    async def _read_partition_unlocked(
        self,
        zs: Any,
        path: str,
        var_paths: list[str],
        selection: RowSelection | None,
    ) -> dict[str, Variable]:
        all_vars = self._schema.all_variables()
        wanted = [p for p in var_paths if not all_vars[p].immutable]
        rows: slice | numpy.ndarray[Any, Any] = slice(None)
        if selection is not None and not selection.is_open:
            axis_path = "/" + self._merge_axis()
            axis_var = all_vars[axis_path]
            values = await read_array(zs, join(path, axis_path))
            if values is None:
                values = numpy.empty(0, dtype=axis_var.dtype)
            rows = rows_of(selection.typed(axis_var.dtype).mask(values))

        def selector(var_path: str) -> Any:
            if isinstance(rows, slice) and rows == slice(None):
                return Ellipsis
            dims = all_vars[var_path].dimensions
            return (slice(None),) * dims.index(self._axis) + (rows,)

        async def read(var_path: str) -> numpy.ndarray[Any, Any] | None:
            key = selector(var_path)
            if isinstance(rows, numpy.ndarray):
                array = await read_array(zs, join(path, var_path))
                return None if array is None else array[key]
            return await read_array(zs, join(path, var_path), key)

        arrays = await asyncio.gather(*(read(p) for p in wanted))
        length: int | None = None
        for var_path, array in zip(wanted, arrays, strict=True):
            if array is not None:
                length = int(array.shape[all_vars[var_path].dimensions.index(self._axis)])
                break
        if length is None and any(a is None for a in arrays):
            length = await self._partition_length(zs, path)
            if isinstance(rows, slice):
                length = len(range(*rows.indices(length)))
            else:
                length = int(rows.size)
        sizes = {n: d.size or 0 for n, d in self._schema.all_dimensions().items()}
        sizes[self._axis] = length or 0
        result: dict[str, Variable] = {}
        for var_path, array in zip(wanted, arrays, strict=True):
            var = all_vars[var_path]
            result[var_path] = (
                full_variable(var, sizes)
                if array is None
                else Variable(var, in_dtype(array, var.dtype))
            )
        return result

    async def _read_rows_into(
        self, zs: Any, paths: list[str], partitioned: list[str]
    ) -> dict[str, Variable] | None:
        """Read ``partitioned`` of every partition of ``paths`` into one array per variable.

        The partitions' lengths come from their metadata; each partition is decoded straight
        into its rows of the result: no per-partition arrays, no concatenation (one copy of
        the data fewer, and half the peak memory). None when that does not apply (the axis
        not first, a dimension of unknown size, or a partition changed under the read): the
        caller then reads and concatenates.
        """
        all_vars = self._schema.all_variables()
        sizes = {name: dim.size for name, dim in self._schema.all_dimensions().items()}
        if not partitioned or any(
            all_vars[p].dimensions[0] != self._axis
            or any(sizes.get(d) is None for d in all_vars[p].dimensions[1:])
            for p in partitioned
        ):
            return None
        lengths = await gather_limited(
            config["partition.concurrency"], [self._partition_length(zs, p) for p in paths]
        )
        total = sum(lengths)
        outputs = {}
        for var_path in partitioned:
            var = all_vars[var_path]
            shape = (total, *(int(sizes[d] or 0) for d in var.dimensions[1:]))
            outputs[var_path] = numpy.empty(shape, dtype=var.dtype)
        starts = numpy.concatenate(([0], numpy.cumsum(lengths)[:-1])).tolist()
        known = {name: int(size or 0) for name, size in sizes.items()}

        async def one(path: str, start: int, length: int) -> None:
            async with self._holding(path, exclusive=False):
                found = await asyncio.gather(
                    *(
                        read_array_into(zs, join(path, p), outputs[p][start : start + length])
                        for p in partitioned
                    )
                )
            for var_path, present in zip(partitioned, found, strict=True):
                if not present:
                    var = all_vars[var_path]
                    filled = full_variable(var, {**known, self._axis: length})
                    outputs[var_path][start : start + length] = filled.to_numpy()

        try:
            await gather_limited(
                config["partition.concurrency"],
                [one(p, s, n) for p, s, n in zip(paths, starts, lengths, strict=True)],
            )
        except ShapeChangedError:
            return None
        return {p: Variable(all_vars[p], outputs[p]) for p in partitioned}

    async def partition_length_async(self, path: str) -> int:
        """Return the number of rows of partition ``path`` (from metadata, no data read)."""
        self._partitioning.decode(path)
        return await self._partition_length(self._store.zarr_store(), path)

    async def load_partition_async(
        self,
        path: str,
        *,
        variables: Iterable[str] | None = None,
        selection: RowSelection | None = None,
        io: Store | StoreSession | None = None,
    ) -> Dataset:
        """Return one partition (immutable variables merged in), as ``map`` passes it."""
        self._partitioning.decode(path)
        var_paths = self._resolve_variables(variables)
        zs = (io if io is not None else self._store).zarr_store()
        immutable = await self._read_immutable(zs, var_paths)
        variables_read = await self._read_partition(zs, path, var_paths, selection)
        variables_read.update({p: v for p, v in immutable.items() if p not in variables_read})
        return self._dataset(var_paths, variables_read)

    def _dataset(self, var_paths: list[str], variables: dict[str, Variable]) -> Dataset:
        schema = self._schema.select(var_paths) if var_paths else self._schema.select([])
        ordered = {p.lstrip("/"): variables[p] for p in var_paths if p in variables}
        return Dataset(schema, ordered, attrs=dict(self._schema.attrs))

    async def _load(
        self, zs: Any, path: str, var_paths: list[str], immutable: dict[str, Variable]
    ) -> Dataset:
        variables = await self._read_partition(zs, path, var_paths)
        variables.update({p: v for p, v in immutable.items() if p not in variables})
        return self._dataset(var_paths, variables)

    async def query_async(
        self,
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        selection: RowSelection | None = None,
        lazy: bool = False,
    ) -> Dataset | None:
        """Read matching partitions and return the concatenated dataset (None if none match).

        See :meth:`query`; with ``lazy=True`` the partitioned variables are Dask arrays.
        """
        var_paths = self._resolve_variables(variables)
        zs = self._store.zarr_store()
        paths = await self._select_paths(filters)
        if not paths:
            return None
        partitioned = [p for p in var_paths if not self._schema.all_variables()[p].immutable]
        if not lazy and (selection is None or selection.is_open):
            rows = await self._read_rows_into(zs, paths, partitioned)
            if rows is not None:
                result = await self._read_immutable(zs, var_paths)
                result.update(rows)
                return self._dataset(var_paths, result)
        read = read_partition_lazy if lazy else Collection._read_partition
        parts = await gather_limited(
            config["partition.concurrency"],
            [read(self, zs, path, partitioned, selection) for path in paths],
        )
        immutable = await self._read_immutable(zs, var_paths)
        datasets = [self._dataset(partitioned, part) for part in parts]
        merged = concat(datasets, self._axis) if partitioned else datasets[0]
        result = dict(immutable)
        result.update({"/" + k: v for k, v in merged.all_variables().items()})
        return self._dataset(var_paths, result)

    def query(
        self,
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        selection: RowSelection | None = None,
        lazy: bool = False,
    ) -> Dataset | None:
        """Read matching partitions and return the concatenated dataset (None if none match).

        ``selection`` (a RowSelection) keeps only rows whose axis value lies within bounds,
        applied inside each partition (an extension of the reference API).

        ``lazy=True`` (needs dask) returns the partitioned variables as Dask arrays over the
        stored chunks (at least one Dask chunk per partition, concatenated along the axis in
        key order); only metadata is read until ``.compute()`` / ``to_numpy()``, except the
        axis variable, read eagerly when a ``selection`` has to find its rows. Immutable
        variables are always read eagerly.

        Raises:
            ExpressionError: If ``filters`` is malformed or names an unknown key.
            SchemaError: If ``variables`` names an unknown variable.
        """
        return run_sync(
            self.query_async(filters=filters, variables=variables, selection=selection, lazy=lazy)
        )

    async def map_async(
        self,
        fn: Callable[[Dataset], Any],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> dict[str, Any]:
        """Apply ``fn`` to each matching partition; return ``{partition_path: fn(dataset)}``.

        See :meth:`map` for ``client``.
        """
        var_paths = self._resolve_variables(variables)
        zs = self._store.zarr_store()
        paths = await self._select_paths(filters)
        dask_client = client_for(self._store, client, write=False)
        if dask_client is not None:
            results = await run_on_client(self, dask_client, fn, paths, var_paths, write=False)
            return dict(zip(paths, results, strict=True))
        immutable = await self._read_immutable(zs, var_paths)
        loop = asyncio.get_running_loop()

        async def one(path: str) -> Any:
            ds = await self._load(zs, path, var_paths, immutable)
            return await loop.run_in_executor(None, fn, ds)

        results = await gather_limited(config["partition.concurrency"], [one(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def map(
        self,
        fn: Callable[[Dataset], Any],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> dict[str, Any]:
        """Apply ``fn`` to each matching partition; return ``{partition_path: fn(dataset)}``.

        ``client`` (a ``distributed.Client``; default ``zcollection.config["dask.client"]``)
        runs each partition on a worker of a dask cluster: the worker reopens the collection
        from its store, loads the partition and applies ``fn`` (which must pickle); results
        come back in key order. An explicit client refuses a MemoryStore (StoreError), which
        workers cannot reach; the configured default then runs the partitions here.
        """
        return run_sync(self.map_async(fn, filters=filters, variables=variables, client=client))

    # -- writing ------------------------------------------------------------------------
    async def _write_partition(self, zs: Any, path: str, key: Key, dataset: Dataset) -> None:
        """Replace the partition at ``path`` by ``dataset`` (partitioned variables only)."""
        staged = await self._stage_partition(zs, path, key, dataset)
        await staged.commit()

    async def _stage_partition(
        self, zs: Any, path: str, key: Key, dataset: Dataset
    ) -> StagedPartition:
        """Write the partition at ``path``; return the step that puts it in place.

        A store that can put a folder in place in one step (local) gets the partition
        written aside, swapped in by ``commit``: readers, and a crash, see the old partition
        or the new one, and ``discard`` leaves the old one untouched. Elsewhere it is
        rewritten in place now, the group's key attribute last: a partition interrupted
        half-way is never listed as complete.
        """
        replace_dir = getattr(zs, "replace_dir", None)
        if replace_dir is None:
            async with self._holding(path, exclusive=True):
                await delete_prefix(zs, path)
                await self._write_partition_at(zs, path, key, dataset)
            return StagedPartition(path)
        parent, _, name = path.rpartition("/")
        staged = join(parent, f".{name}.zc-{uuid.uuid4().hex[:12]}")
        try:
            await self._write_partition_at(zs, staged, key, dataset)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await delete_prefix(zs, staged)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write partition {path!r}: {exc}") from exc
            raise

        async def swap() -> None:
            async with self._holding(path, exclusive=True):
                await replace_dir(staged, path)

        async def discard() -> None:
            await delete_prefix(zs, staged)

        return StagedPartition(path, swap, discard)

    async def _write_partition_at(self, zs: Any, path: str, key: Key, dataset: Dataset) -> None:
        all_vars = self._schema.all_variables()
        writes = []
        for rel, var in dataset.all_variables().items():
            schema_var = all_vars["/" + rel]
            if schema_var.immutable:
                continue
            writes.append(
                write_array(zs, join(path, rel), schema_var, var.to_numpy(), self._schema)
            )
        await asyncio.gather(*writes)
        for parts, group in self._schema.walk():
            if parts and group.all_variables():
                await write_group(zs, join(path, *parts), dict(group.attrs))
        await write_group(zs, path, {PARTITION_KEY_ATTR: [[name, value] for name, value in key]})

    async def _write_immutable(self, zs: Any, dataset: Dataset) -> None:
        """Write the immutable variables that differ from the stored ones.

        An identical array is not rewritten: a writer must not touch what it does not change
        (on icechunk that would conflict with every concurrent insert).
        """
        all_vars = self._schema.all_variables()
        candidates = [
            (rel, var)
            for rel, var in dataset.all_variables().items()
            if all_vars["/" + rel].immutable
        ]
        stored = await asyncio.gather(
            *(read_array(zs, join(IMMUTABLE_PREFIX, rel)) for rel, _ in candidates)
        )
        items = [
            (rel, var)
            for (rel, var), old in zip(candidates, stored, strict=True)
            if not same_array(old, var.to_numpy())
        ]
        if not items:
            return
        await write_group(zs, IMMUTABLE_PREFIX)
        await asyncio.gather(
            *(
                write_array(
                    zs,
                    join(IMMUTABLE_PREFIX, rel),
                    all_vars["/" + rel],
                    var.to_numpy(),
                    self._schema,
                )
                for rel, var in items
            )
        )
        for parts, group in self._schema.walk():
            if parts and any(v.immutable for v in group.all_variables().values()):
                await write_group(zs, join(IMMUTABLE_PREFIX, *parts), dict(group.attrs))

    async def _update_catalog(
        self, session: StoreSession, added: Iterable[str] = (), removed: Iterable[str] = ()
    ) -> None:
        if not self._catalog_enabled:
            return
        zs = session.zarr_store()
        raw = await session.read_meta_async(catalog.CATALOG_KEY)
        current = catalog.decode(raw) if raw is not None else None
        if current is None:
            current = await walk_partitions(zs, self._partitioning)
        paths = (set(current) | set(added)) - set(removed)
        await session.write_meta_async(catalog.CATALOG_KEY, catalog.encode(paths))

    async def insert_async(
        self,
        dataset: Dataset,
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
    ) -> list[str]:
        """Insert ``dataset``, split by the partitioning; return the written partition paths."""
        return await self._insert(_single(dataset), overwrite=overwrite, merge=merge, limit=None)

    async def insert_stream_async(
        self,
        datasets: Iterable[Dataset] | AsyncIterable[Dataset],
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
        buffer_bytes: int | None = STREAM_BUFFER_BYTES,
    ) -> list[str]:
        """Insert a stream of datasets as one insert; return the written partition paths.

        See :meth:`insert_stream`.
        """
        if buffer_bytes is not None and buffer_bytes < 0:
            raise ValueError(f"buffer_bytes must be >= 0 or None, not {buffer_bytes}")
        return await self._insert(
            _stream(datasets), overwrite=overwrite, merge=merge, limit=buffer_bytes
        )

    def insert_stream(
        self,
        datasets: Iterable[Dataset] | AsyncIterable[Dataset],
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
        buffer_bytes: int | None = STREAM_BUFFER_BYTES,
    ) -> list[str]:
        """Insert the rows of ``datasets``, which arrive one after the other, as one insert.

        The result is that of ``insert`` of all the rows at once, in one session (one commit
        on icechunk), but a partition is written as soon as the stream has moved past it
        and more than ``buffer_bytes`` of rows are held (``None``: hold everything until
        the end), so memory stays about ``max(buffer_bytes, one partition)`` plus the
        partition being written. Each dataset is checked against the schema on arrival;
        immutable variables may come with any of them (the same values each time).
        On a local store every partition is written aside and swapped in at the end: an
        error leaves the collection as it was. On stores without that step (memory,
        object stores) partitions written before an error stay written.

        Raises:
            PartitionError: If rows arrive for a partition already written (send the rows
                of each partition together, e.g. sorted along the partitioning axis), or
                the key variables are invalid.
            (and everything :meth:`insert` raises)
        """
        return run_sync(
            self.insert_stream_async(
                datasets, overwrite=overwrite, merge=merge, buffer_bytes=buffer_bytes
            )
        )

    async def _insert(
        self,
        datasets: AsyncGenerator[Dataset],
        *,
        overwrite: bool,
        merge: str | MergeCallable | None,
        limit: int | None,
    ) -> list[str]:
        """Insert the rows of ``datasets`` in one session, writing complete partitions early."""
        self._check_writable("insert")
        strategy = resolve(merge)
        required = self._partitioning_variables()
        buffer = PartitionBuffer(self._partitioning, self._axis, limit)
        exists: dict[str, bool] = {}
        staged: list[StagedPartition] = []
        immutable: Dataset | None = None
        writing: asyncio.Future[None] | None = None
        async with (
            contextlib.aclosing(datasets),
            self._writing(),
            self._store.session_async("insert") as session,
        ):
            zs = session.zarr_store()
            try:
                async for dataset in datasets:
                    data = conform(dataset, self._schema, self._axis, required=required)
                    # Dask-backed data: the key variables now, each partition's rows when
                    # written
                    data = await materialise_async(data, required)
                    immutable = _immutable_of(data, immutable)
                    opened = buffer.add(_partitioned_of(data))
                    await self._check_targets(zs, opened, exists, overwrite)
                    ready = buffer.complete()
                    if ready:
                        if writing is not None:
                            await writing
                        writing = asyncio.ensure_future(
                            self._write_pending(zs, ready, strategy, exists, staged)
                        )
                    elif writing is not None and buffer.over_limit():
                        # back-pressure: hold no more than the limit while a write runs
                        await writing
                        writing = None
                if writing is not None:
                    await writing
                    writing = None
                # The rest is merged, then written: merges run before this last group is
                # written, so a failing merge leaves it (and a staged store all) untouched.
                await self._write_pending(
                    zs, buffer.drain(), strategy, exists, staged, immutable=immutable
                )
                for partition in staged:
                    await partition.commit()
            except BaseException:
                if writing is not None:
                    # let the partition being written finish (cancelling zarr half-way
                    # leaves coroutines behind), then drop it with the others
                    with contextlib.suppress(Exception):
                        await writing
                for partition in staged:
                    await partition.discard()
                raise
            written = [partition.path for partition in staged]
            await self._update_catalog(session, added=written)
        return sort_paths(self._partitioning, written)

    async def _check_targets(
        self, zs: Any, opened: list[PendingPartition], exists: dict[str, bool], overwrite: bool
    ) -> None:
        """Record whether each newly seen partition exists; refuse them if it must not."""
        attrs = await asyncio.gather(*(read_group_attrs(zs, p.path) for p in opened))
        for pending, found in zip(opened, attrs, strict=True):
            exists[pending.path] = bool(found and PARTITION_KEY_ATTR in found)
        if not overwrite:
            clash = [p.path for p in opened if exists[p.path]]
            if clash:
                raise PartitionExistsError(
                    f"partition(s) {clash} already exist and overwrite=False"
                )

    async def _write_pending(
        self,
        zs: Any,
        group: list[PendingPartition],
        strategy: MergeCallable | None,
        exists: dict[str, bool],
        staged: list[StagedPartition],
        *,
        immutable: Dataset | None = None,
    ) -> None:
        """Merge, then write, the partitions of ``group`` (and ``immutable`` in between)."""
        dim = self._partitioning.dimension
        partitioned = [p for p, v in self._schema.all_variables().items() if not v.immutable]
        merge_axis = self._merge_axis()

        async def merged(pending: PendingPartition) -> Dataset:
            part = await materialise_async(pending.take_rows(dim))
            stored = self._dataset(
                partitioned, await self._read_partition(zs, pending.path, partitioned)
            )
            assert strategy is not None
            result = strategy(stored, part, axis=merge_axis, partitioning_dim=dim)
            if not isinstance(result, Dataset):
                raise SchemaError(
                    f"merge strategy returned {type(result).__name__}, expected a Dataset"
                )
            return result

        to_merge = [p for p in group if strategy is not None and exists[p.path]]
        results = await gather_limited(
            config["partition.concurrency"], [merged(p) for p in to_merge]
        )
        merged_parts = {p.path: r for p, r in zip(to_merge, results, strict=True)}
        if immutable is not None:
            await self._write_immutable(zs, immutable)

        async def one(pending: PendingPartition) -> None:
            part = merged_parts.pop(pending.path, None)
            if part is None:
                part = await materialise_async(pending.take_rows(dim))
            staged.append(await self._stage_partition(zs, pending.path, pending.key, part))

        await gather_limited(config["partition.concurrency"], [one(p) for p in group])

    def insert(
        self,
        dataset: Dataset,
        *,
        overwrite: bool = True,
        merge: str | MergeCallable | None = None,
    ) -> list[str]:
        """Insert ``dataset`` into the collection; return the written partition paths.

        Raises:
            ReadOnlyError: If the collection is read-only.
            KeyError: If ``merge`` is an unknown strategy name.
            PartitionError: If the dataset lacks the partitioning variables.
            SchemaError: If the dataset does not match the collection schema.
        """
        return run_sync(self.insert_async(dataset, overwrite=overwrite, merge=merge))

    async def update_async(
        self,
        fn: Callable[[Dataset], Dataset],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> list[str]:
        """Rewrite each matching partition with ``fn(partition)``; return the paths written.

        See :meth:`update` for ``client``.
        """
        self._check_writable("update")
        var_paths = self._resolve_variables(variables)
        dask_client = client_for(self._store, client, write=True)
        if dask_client is not None:
            paths = await self._select_paths(filters)
            return await run_on_client(self, dask_client, fn, paths, var_paths, write=True)
        async with self._writing(), self._store.session_async("update") as session:
            zs = session.zarr_store()
            paths = await self._select_paths(filters, session)
            immutable = await self._read_immutable(zs, var_paths)
            await gather_limited(
                config["partition.concurrency"],
                [self._update_partition(zs, p, var_paths, immutable, fn) for p in paths],
            )
        return paths

    async def _update_partition(
        self,
        zs: Any,
        path: str,
        var_paths: list[str],
        immutable: dict[str, Variable],
        fn: Callable[[Dataset], Dataset],
    ) -> None:
        """Load one partition, transform it with ``fn`` and write the result back."""
        ds = await self._load(zs, path, var_paths, immutable)
        result = await asyncio.get_running_loop().run_in_executor(None, fn, ds)
        if not isinstance(result, Dataset):
            raise SchemaError(
                f"update function returned {type(result).__name__}, expected a Dataset"
            )
        new = await materialise_async(conform(result, self._schema, self._axis, require_all=False))
        await self._write_partition(zs, path, self._partitioning.decode(path), new)

    def update(
        self,
        fn: Callable[[Dataset], Dataset],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
        client: Any = None,
    ) -> list[str]:
        """Read each matching partition, transform it with ``fn`` and write it back wholesale.

        ``client`` (a ``distributed.Client``; default ``zcollection.config["dask.client"]``)
        loads, transforms and writes each partition on a worker of a dask cluster (the
        worker reopens the collection from its store; ``fn`` must pickle); the paths come
        back in key order. An explicit client refuses a MemoryStore and transactional stores
        (icechunk: one commit made here) with StoreError; the configured default then runs
        the partitions here.
        """
        return run_sync(self.update_async(fn, filters=filters, variables=variables, client=client))

    async def rewrite_partitions_async(
        self, dataset: Dataset, *, partition: str | None = None
    ) -> list[str]:
        """Rewrite each partition the rows of ``dataset`` fall in, wholesale, in one session.

        This is ``update`` with the new partitions given instead of computed: variables
        absent from ``dataset`` are dropped from the partitions it touches. With
        ``partition``, all rows replace that one existing partition, as ``update`` writes a
        function's result back to the partition it read. Used by the Flight server for
        remote ``update``.
        """
        self._check_writable("rewrite partitions")
        data = conform(
            dataset,
            self._schema,
            self._axis,
            required=() if partition is not None else self._partitioning_variables(),
            require_all=False,
        )
        moving = data.select(
            ["/" + p for p, v in data.all_variables().items() if not v.schema.immutable]
        )
        dim = self._partitioning.dimension
        if partition is not None:
            key = self._partitioning.decode(partition)
            if partition not in await self._select_paths(None):
                raise CollectionNotFoundError(f"no partition {partition!r} to rewrite")
            rows: list[tuple[Key, Any]] = [(key, slice(None))]
        else:
            rows = partition_rows(self._partitioning, data)
        async with self._writing(), self._store.session_async("rewrite partitions") as session:
            zs = session.zarr_store()
            written = []
            for key, index in rows:
                path = self._partitioning.encode(key)
                await self._write_partition(zs, path, key, moving.isel(dim, index))
                written.append(path)
            await self._update_catalog(session, added=written)
        return written

    async def drop_partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Delete matching partitions (every partition when ``filters`` is None)."""
        self._check_writable("drop partitions")
        async with self._writing(), self._store.session_async("drop partitions") as session:
            zs = session.zarr_store()
            paths = await self._select_paths(filters, session)
            for path in paths:
                await delete_prefix(zs, path)
            for parent in sorted(
                {p for path in paths for p in parents(path)}, key=len, reverse=True
            ):
                children = await list_dir(zs, parent)
                if set(children) <= {"zarr.json"}:
                    await delete_prefix(zs, parent)
            await self._update_catalog(session, removed=paths)
        return paths

    def drop_partitions(self, *, filters: str | None = None) -> list[str]:
        """Delete matching partitions; return their paths.

        Raises:
            ReadOnlyError: If the collection is read-only.
            ExpressionError: If ``filters`` is malformed.
        """
        return run_sync(self.drop_partitions_async(filters=filters))

    async def repair_catalog_async(self) -> list[str]:
        """Rebuild the catalog by walking the store; return the new path list.

        Partitions a crashed writer left aside (never listed) are deleted too.
        """
        if not self._catalog_enabled:
            raise CatalogDisabledError(
                f"the collection at {self._store.root_uri} has no catalog to repair"
            )
        self._check_writable("repair the catalog")
        async with self._writing(), self._store.session_async("repair catalog") as session:
            zs = session.zarr_store()
            paths = await walk_partitions(zs, self._partitioning)
            await session.write_meta_async(catalog.CATALOG_KEY, catalog.encode(paths))
            for leftover in await staged_leftovers(zs, self._partitioning):
                await delete_prefix(zs, leftover)
        return paths

    def repair_catalog(self) -> list[str]:
        """Rebuild the catalog by walking the store; return the new path list.

        Raises:
            RuntimeError: (CatalogDisabledError) if the collection has no catalog.
            ReadOnlyError: If the collection is read-only.
        """
        return run_sync(self.repair_catalog_async())


__all__ = ["Collection"]


async def _single(dataset: Dataset) -> AsyncGenerator[Dataset]:
    yield dataset


async def _stream(datasets: Iterable[Dataset] | AsyncIterable[Dataset]) -> AsyncGenerator[Dataset]:
    """Yield from ``datasets``; a blocking iterator is advanced in a thread of its own.

    Not in the loop's shared executor: a stream waiting on a slow sender (a do_put) must not
    take a worker that zarr's codecs and other requests need.
    """
    if isinstance(datasets, AsyncIterable):
        async for dataset in datasets:
            yield dataset
        return
    iterator = iter(datasets)
    end = object()
    loop = asyncio.get_running_loop()
    reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="zc-stream")
    try:
        while True:
            item = await loop.run_in_executor(reader, next, iterator, end)
            if item is end:
                return
            yield item  # type: ignore[misc]
    finally:
        reader.shutdown(wait=False)  # never block the loop on a sender that went quiet


def _partitioned_of(data: Dataset) -> Dataset:
    return data.select(["/" + p for p, v in data.all_variables().items() if not v.schema.immutable])


def _immutable_of(data: Dataset, seen: Dataset | None) -> Dataset | None:
    """Return the immutable variables of a stream: those of ``data``, the same as ``seen``.

    Raises:
        SchemaError: If ``data`` carries immutable values that differ from earlier ones.
    """
    fixed = ["/" + p for p, v in data.all_variables().items() if v.schema.immutable]
    if not fixed:
        return seen
    found = data.select(fixed)
    if seen is None:
        return found
    check_same_variables(seen.all_variables(), found.all_variables())
    return seen
