"""View: extra variables overlaid on a base collection, stored in a store of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._sync import run_sync
from ..collection import Collection
from ..collection.config_file import CONFIG_KEY
from ..collection.zarr_io import gather_limited, write_group
from ..config import config
from ..data import Dataset, Variable
from ..data.ops import concat
from ..errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ReadOnlyError,
    ZCollectionError,
)
from ..schema import DatasetSchema, VariableSchema
from ..store import Store
from .config_file import VIEW_CONFIG_KEY, ViewConfig
from .overlay import coerce_result, dimension_sizes, load_merged, write_overlay
from .reference import ViewReference
from .schema import build_view_schema, check_view_schema, merged_schema
from .selection import VariableSelection, select_variables


def _check_base(base: Any) -> Collection:
    if not isinstance(base, Collection):
        raise TypeError(f"the base of a view must be a Collection, not {type(base).__name__}")
    return base


def _check_distinct(store: Store, base: Collection) -> None:
    if store is base.store or store.root_uri == base.store.root_uri:
        raise ZCollectionError(
            f"a view needs a store of its own; {store.root_uri} is the base collection's store"
        )


class View:
    """Overlay of extra variables on top of a base Collection.

    The view stores only its own variables, one Zarr array per variable at the same
    partition path as in the base. Reads merge base and overlay:

    - a partition whose overlay has not been written yet shows the view variables filled
      with their fill value (zeros when the variable has none);
    - a view variable may be named like a root variable of the base (it must then have the
      same dimensions): it shadows that variable wherever the overlay holds data and shows
      the base values elsewhere, so an update function can read the base values it corrects;
    - an overlay array whose length no longer matches its base partition (the base was
      rewritten since) is treated as absent until the next update writes it again.
    """

    def __init__(
        self,
        *,
        store: Store,
        base: Collection,
        view_schema: DatasetSchema,
        reference: ViewReference | str,
        read_only: bool = False,
    ) -> None:
        self._base = _check_base(base)
        _check_distinct(store, base)
        check_view_schema(base.schema, base.axis, view_schema)
        self._store = store
        self._view_schema = view_schema.with_partition_axis(base.axis)
        self._merged = merged_schema(base.schema, base.axis, self._view_schema)
        self._reference = ViewReference.coerce(reference)
        self._read_only = read_only or store.read_only

    # -- properties ---------------------------------------------------------------------
    @property
    def base(self) -> Collection:
        """Return the underlying base collection."""
        return self._base

    @property
    def store(self) -> Store:
        """Return the backing store for the view overlay."""
        return self._store

    @property
    def reference(self) -> ViewReference:
        """Return the reference to the base collection."""
        return self._reference

    @property
    def read_only(self) -> bool:
        """Return whether the view is read-only."""
        return self._read_only

    @property
    def view_schema(self) -> DatasetSchema:
        """Return the view's overlay schema (the base's root dimensions plus its variables)."""
        return self._view_schema

    @property
    def variables(self) -> tuple[str, ...]:
        """Return the names of the view's overlay variables."""
        return tuple(self._view_schema.variables)

    @property
    def schema(self) -> DatasetSchema:
        """Return the schema of the merged datasets the view returns (base + overlay)."""
        return self._merged

    def __repr__(self) -> str:
        return (
            f"<zcollection.view.View {self._store.root_uri} base={self._reference.uri!r} "
            f"variables={list(self.variables)} read_only={self._read_only}>"
        )

    # -- create / open ------------------------------------------------------------------
    @classmethod
    async def create_async(
        cls,
        store: Store,
        *,
        base: Collection,
        variables: Iterable[VariableSchema],
        reference: ViewReference | str,
        overwrite: bool = False,
    ) -> View:
        """Create a new view backed by ``store`` and overlaying ``base``."""
        base = _check_base(base)
        _check_distinct(store, base)
        ref = ViewReference.coerce(reference)
        schema = build_view_schema(base.schema, base.axis, variables)
        if store.read_only:
            raise ReadOnlyError(f"cannot create a view on read-only store {store.root_uri}")
        async with store.session_async("create view") as session:
            exists = await session.meta_exists_async(VIEW_CONFIG_KEY)
            exists = exists or await session.meta_exists_async(CONFIG_KEY)
            if exists and not overwrite:
                raise CollectionExistsError(
                    f"a view or collection already exists at {store.root_uri}"
                )
            if exists or overwrite:
                await session.delete_prefix_async("")
            await write_group(session.zarr_store(), "")
            await session.write_meta_async(VIEW_CONFIG_KEY, ViewConfig(ref, schema).to_bytes())
        return cls(store=store, base=base, view_schema=schema, reference=ref)

    @classmethod
    def create(
        cls,
        store: Store,
        *,
        base: Collection,
        variables: Iterable[VariableSchema],
        reference: ViewReference | str,
        overwrite: bool = False,
    ) -> View:
        """Create a new view backed by ``store`` and overlaying ``base``.

        Raises:
            CollectionExistsError: If a view (or a collection) already exists on ``store``
                and ``overwrite`` is False.
            ZCollectionError: If ``store`` is the base's store.
            SchemaError: If a view variable does not span the partitioning dimension, uses a
                dimension that is not a root dimension of the base, or shadows a base
                variable with other dimensions.
            ReadOnlyError: If ``store`` is read-only.
        """
        return run_sync(
            cls.create_async(
                store, base=base, variables=variables, reference=reference, overwrite=overwrite
            )
        )

    @classmethod
    async def read_config_async(cls, store: Store) -> ViewConfig:
        """Return the view config stored on ``store``.

        Raises:
            CollectionNotFoundError: If ``store`` holds no view (nothing is created).
        """
        raw = await store.read_meta_async(VIEW_CONFIG_KEY)
        if raw is None:
            raise CollectionNotFoundError(f"no view at {store.root_uri}")
        return ViewConfig.from_bytes(raw, store.root_uri)

    @classmethod
    async def open_async(cls, store: Store, *, base: Collection, read_only: bool = False) -> View:
        """Open the view stored on ``store``, overlaying ``base``."""
        doc = await cls.read_config_async(store)
        return cls(
            store=store,
            base=base,
            view_schema=doc.schema,
            reference=doc.reference,
            read_only=read_only,
        )

    @classmethod
    def open(cls, store: Store, *, base: Collection, read_only: bool = False) -> View:
        """Open an existing view from ``store``.

        Raises:
            CollectionNotFoundError: If no view config exists on ``store``.
            SchemaError: If the view's variables do not fit ``base``.
        """
        return run_sync(cls.open_async(store, base=base, read_only=read_only))

    # -- helpers ------------------------------------------------------------------------
    def _select(self, variables: Iterable[str] | None) -> VariableSelection:
        return select_variables(self._base.schema, self._view_schema, self._merged, variables)

    def _dataset(self, order: Iterable[str], variables: dict[str, Variable]) -> Dataset:
        paths = [p for p in order if p in variables]
        ordered = {p.lstrip("/"): variables[p] for p in paths}
        return Dataset(self._merged.select(paths), ordered, attrs=dict(self._merged.attrs))

    async def _immutable(self, selection: VariableSelection, path: str) -> dict[str, Variable]:
        if not selection.base_immutable:
            return {}
        loaded = await self._base.load_partition_async(path, variables=selection.base_immutable)
        return {"/" + rel: var for rel, var in loaded.all_variables().items()}

    # -- listing ------------------------------------------------------------------------
    async def partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Return the base's partition paths in key order, optionally filtered."""
        return await self._base.partitions_async(filters=filters)

    def partitions(self, *, filters: str | None = None) -> Iterator[str]:
        """Yield partition paths from the base collection, optionally filtered.

        Raises:
            ExpressionError: If ``filters`` is malformed or names an unknown key.
        """
        yield from self._base.partitions(filters=filters)

    # -- reading ------------------------------------------------------------------------
    async def query_async(
        self, *, filters: str | None = None, variables: Iterable[str] | None = None
    ) -> Dataset | None:
        """Return the merged base + overlay dataset of the matching partitions."""
        selection = self._select(variables)
        paths = await self._base.partitions_async(filters=filters)
        if not paths:
            return None
        zs = self._store.zarr_store()
        parts = await gather_limited(
            config["partition.concurrency"],
            [load_merged(self._base, self._merged, zs, path, selection) for path in paths],
        )
        immutable = await self._immutable(selection, paths[0])
        partitioned = [p for p in selection.order if p not in immutable]
        result = dict(immutable)
        if partitioned:
            datasets = [self._dataset(partitioned, part) for part, _ in parts]
            merged = concat(datasets, self._base.axis)
            result.update({"/" + k: v for k, v in merged.all_variables().items()})
        return self._dataset(selection.order, result)

    def query(
        self, *, filters: str | None = None, variables: Iterable[str] | None = None
    ) -> Dataset | None:
        """Return the merged base + overlay dataset for matching partitions.

        On a name collision the overlay wins. Partitions whose overlay has not been written
        yet show the view variables filled with their fill value. Returns None when no base
        partition matches ``filters``.

        Raises:
            ExpressionError: If ``filters`` is malformed or names an unknown key.
            SchemaError: If ``variables`` names neither a base nor a view variable.
        """
        return run_sync(self.query_async(filters=filters, variables=variables))

    # -- writing ------------------------------------------------------------------------
    async def update_async(
        self,
        fn: Callable[[Dataset], dict[str, Any]],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> list[str]:
        """Compute and write view arrays for each matching partition; one store session."""
        if self._read_only:
            raise ReadOnlyError(f"cannot update: the view at {self._store.root_uri} is read-only")
        selection = self._select(variables)
        base = self._base
        async with self._store.session_async("update view") as session:
            zs = session.zarr_store()
            paths = await base.partitions_async(filters=filters)
            immutable = await self._immutable(selection, paths[0]) if paths else {}
            loop = asyncio.get_running_loop()

            async def one(path: str) -> bool:
                current, length = await load_merged(base, self._merged, zs, path, selection)
                current.update(immutable)
                result = await loop.run_in_executor(
                    None, fn, self._dataset(selection.order, current)
                )
                sizes = dimension_sizes(self._view_schema, base.axis, length)
                arrays = coerce_result(result, self._view_schema, sizes, path)
                if not arrays:
                    return False
                key = base.partitioning.decode(path)
                await write_overlay(zs, self._view_schema, path, key, arrays)
                return True

            written = await gather_limited(config["partition.concurrency"], [one(p) for p in paths])
        return [p for p, done in zip(paths, written, strict=True) if done]

    def update(
        self,
        fn: Callable[[Dataset], dict[str, Any]],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> list[str]:
        """Compute view-variable arrays for each base partition and write them.

        ``fn`` receives the merged base + view dataset of one partition (immutable variables
        included) and returns ``{view variable: array sized along the partitioning
        dimension}``; missing keys are left as stored, unknown keys raise. The whole update
        is one store session (one commit on icechunk). Returns the partition paths written,
        in key order.

        Raises:
            ReadOnlyError: If the view was opened with ``read_only=True``.
            SchemaError: If ``fn`` returns an unknown variable or an array of the wrong shape.
            TypeError: If ``fn`` returns something other than a mapping.
        """
        return run_sync(self.update_async(fn, filters=filters, variables=variables))


__all__ = ["View"]
