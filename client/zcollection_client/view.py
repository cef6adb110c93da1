"""RemoteView: the engine's View interface over a Flight server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import zcollection as zc
from zcollection_proto import Insert, Query, encode_command

from .reading import Endpoint, assemble, decode, endpoints_of, fetch_table, read_all

if TYPE_CHECKING:
    from .collection import RemoteCollection


class RemoteView:
    """A view of a served collection: base variables plus the view's own, merged."""

    def __init__(self, base: RemoteCollection, name: str, info: Any, *, read_only: bool) -> None:
        self._base = base
        self.name = name
        self._view_schema = zc.DatasetSchema.from_json(json.loads(info.schema))
        self._variables = tuple(info.variables)
        self._reference_uri = info.reference or base.uri
        self._read_only = read_only or base.read_only
        merged = base.schema.to_json()
        view_vars = self._view_schema.to_json()["variables"]
        names = {v["name"] for v in view_vars}
        merged["variables"] = [v for v in merged["variables"] if v["name"] not in names] + view_vars
        self._schema = zc.DatasetSchema.from_json(merged).with_partition_axis(base.axis)

    @property
    def base(self) -> RemoteCollection:
        """Return the underlying base collection."""
        return self._base

    @property
    def reference(self) -> Any:
        """Return the reference (a ``zcollection.view.ViewReference``) to the base collection."""
        from zcollection.view import ViewReference  # loads the engine's view module on use

        return ViewReference(self._reference_uri)

    @property
    def read_only(self) -> bool:
        """Return whether the view is read-only."""
        return self._read_only

    @property
    def view_schema(self) -> zc.DatasetSchema:
        """Return the view's overlay schema."""
        return self._view_schema

    @property
    def variables(self) -> tuple[str, ...]:
        """Return the names of the view's overlay variables."""
        return self._variables

    @property
    def schema(self) -> zc.DatasetSchema:
        """Return the merged base + view schema."""
        return self._schema

    def __repr__(self) -> str:
        return f"<zcollection_client.RemoteView {self._base.uri} view={self.name!r}>"

    def _var_paths(self, variables: Iterable[str] | None) -> list[str]:
        return self._schema.variable_paths(variables)

    def partitions(self, *, filters: str | None = None) -> Iterator[str]:
        """Yield the base's partition paths, optionally filtered."""
        return self._base.partitions(filters=filters)

    async def partitions_async(self, *, filters: str | None = None) -> list[str]:
        """Async variant of partitions() (returns a list)."""
        return await self._base.partitions_async(filters=filters)

    def _endpoints(self, filters: str | None, var_paths: list[str]) -> list[Endpoint]:
        zc.partitioning.compile_filter(filters, names=self._base.partitioning.axis)
        message = Query(collection=self._base.name, variables=var_paths, view=self.name)
        if filters:
            message.filters = filters
        from pyarrow import flight

        descriptor = flight.FlightDescriptor.for_command(encode_command(message))
        info = self._base.connection.call(lambda c, o: c.get_flight_info(descriptor, o))
        return endpoints_of(info)

    def query(
        self, *, filters: str | None = None, variables: Iterable[str] | None = None
    ) -> zc.Dataset | None:
        """Return the merged base + view dataset of matching partitions (None if none)."""
        var_paths = self._var_paths(variables)
        endpoints = self._endpoints(filters, var_paths)
        if not [e for e in endpoints if not e.immutable]:
            return None
        parts, immutable = read_all(self._base.connection, endpoints, self._schema, self._base.axis)
        return assemble(self._schema, var_paths, self._base.axis, [v for _, v in parts], immutable)

    async def query_async(
        self, *, filters: str | None = None, variables: Iterable[str] | None = None
    ) -> zc.Dataset | None:
        """Async variant of query()."""
        return await asyncio.to_thread(lambda: self.query(filters=filters, variables=variables))

    def update(
        self,
        fn: Callable[[zc.Dataset], dict[str, Any]],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> list[str]:
        """Run ``fn`` on each matching partition (here) and write the view arrays it returns.

        Each partition is written by its own call, so an update is not atomic across
        partitions.
        """
        if self._read_only:
            raise zc.ReadOnlyError(f"cannot update: the view {self.name!r} is read-only")
        var_paths = self._var_paths(variables)
        endpoints = self._endpoints(filters, var_paths)
        _, immutable = read_all(
            self._base.connection,
            [e for e in endpoints if e.immutable],
            self._schema,
            self._base.axis,
        )
        written: list[str] = []
        for endpoint in [e for e in endpoints if not e.immutable]:
            path = endpoint.partition or ""
            variables_read = decode(fetch_table(self._base.connection, endpoint), self._schema)
            dataset = assemble(
                self._schema, var_paths, self._base.axis, [variables_read], immutable
            )
            arrays = fn(dataset)
            if not isinstance(arrays, dict):
                raise TypeError(
                    f"a view update returns a dict of arrays, not {type(arrays).__name__}"
                )
            unknown = sorted(set(arrays) - set(self._variables))
            if unknown:
                raise zc.SchemaError(f"{unknown} are not variables of view {self.name!r}")
            if not arrays:
                continue
            known = self._view_schema.variables
            rows = zc.Dataset(
                self._view_schema.select(list(arrays)),
                [zc.Variable(known[n], getattr(a, "data", a)) for n, a in arrays.items()],
            )
            command = Insert(collection=self._base.name, view=self.name, partition=path)
            written.extend(self._base._put(rows, command))
        return written

    async def update_async(
        self,
        fn: Callable[[zc.Dataset], dict[str, Any]],
        *,
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> list[str]:
        """Async variant of update()."""
        return await asyncio.to_thread(
            lambda: self.update(fn, filters=filters, variables=variables)
        )


__all__ = ["RemoteView"]
