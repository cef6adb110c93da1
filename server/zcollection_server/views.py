"""Views over served collections: actions, read sources and updates (views live in ``_views/``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zcollection as zc
from zcollection._sync import run_sync
from zcollection_proto import (
    CreateViewResult,
    DescribeViewResult,
    ListViewsResult,
    ViewInfo,
)

from .calllog import CallRecord
from .names import check_view_name
from .sources import CollectionSource

if TYPE_CHECKING:
    from .actions import ActionHandlers
    from .server import ZCollectionFlightServer


def key_filter(partitioning: Any, path: str) -> str:
    """Return the filter expression that selects exactly partition ``path``."""
    return " and ".join(f"{name} == {value}" for name, value in partitioning.decode(path))


async def open_view_async(
    server: ZCollectionFlightServer, collection: str, base: zc.Collection, view: str
) -> Any:
    """Open view ``view`` of ``collection`` over ``base`` (read-only like its base)."""
    from zcollection.view import View

    check_view_name(view)
    url = server.registry.view_url(collection, view)
    store = server.registry.open_store(url, read_only=base.read_only)
    try:
        return await View.open_async(store, base=base, read_only=base.read_only)
    except zc.CollectionNotFoundError:
        raise zc.CollectionNotFoundError(
            f"collection {collection!r} has no view {view!r}"
        ) from None


class ViewSource(CollectionSource):
    """Reads of a view: the base's partitions with the view's variables merged in."""

    def __init__(self, name: str, base: zc.Collection, view: Any) -> None:
        super().__init__(name, base)
        self.view = view
        self.schema = view.schema

    async def partitions_async(self, filters: str | None) -> list[str]:
        return list(await self.view.partitions_async(filters=filters))

    async def load_async(
        self, path: str, variables: list[str], selection: zc.RowSelection | None
    ) -> zc.Dataset:
        ds = await self.view.query_async(
            filters=key_filter(self.partitioning, path), variables=variables
        )
        if ds is None:
            raise zc.CollectionNotFoundError(f"no partition {path!r}")
        if selection is None or selection.is_open:
            return ds
        axis_name = zc.partitioning.axis_variable(
            self.collection.schema, self.axis, self.partitioning
        )
        axis_values = await self.collection.load_partition_async(path, variables=[axis_name])
        mask = selection.typed(axis_values[axis_name].dtype).mask(axis_values[axis_name].to_numpy())
        return ds.isel(self.axis, mask.nonzero()[0])


def view_source(
    server: ZCollectionFlightServer, name: str, collection: zc.Collection, view: str
) -> ViewSource:
    """Return the read source of view ``view`` of collection ``name``."""
    return ViewSource(name, collection, run_sync(open_view_async(server, name, collection, view)))


def view_info(collection: str, name: str, view: Any) -> ViewInfo:
    """Return the ViewInfo of an open view."""
    return ViewInfo(
        collection=collection,
        view=name,
        schema=json.dumps(view.view_schema.to_json()),
        variables=list(view.variables),
        reference=view.reference.uri,
    )


async def update_view_async(
    server: ZCollectionFlightServer,
    collection: str,
    view: str,
    partition: str,
    rows: zc.Dataset,
) -> list[str]:
    """Write the view variables of ``rows`` into ``partition`` of the view (one session)."""
    base = await server.registry.open_async(collection, writable=True)
    opened = await open_view_async(server, collection, base, view)
    arrays = {name: variable.data for name, variable in rows.all_variables().items()}
    unknown = sorted(set(arrays) - set(opened.variables))
    if unknown:
        raise zc.SchemaError(f"{unknown} are not variables of view {view!r}")
    path = partition.strip("/")
    if path not in await base.partitions_async():
        raise zc.CollectionNotFoundError(f"collection {collection!r} has no partition {path!r}")
    return list(
        await opened.update_async(
            lambda _: arrays, filters=key_filter(base.partitioning, path), variables=[]
        )
    )


def view_handlers(actions: ActionHandlers) -> dict[str, Callable[[Any, CallRecord], Any]]:
    """Return the view actions."""
    server = actions.server
    registry = server.registry

    def create_view(message: Any, record: CallRecord) -> Any:
        from zcollection.view import View

        check_view_name(message.view)
        try:
            variables = [zc.VariableSchema.from_json(json.loads(v)) for v in message.variables]
        except ValueError as exc:
            if isinstance(exc, zc.ZCollectionError):
                raise
            raise zc.SchemaError(f"view variables must be VariableSchema JSON: {exc}") from exc
        base = run_sync(registry.open_async(message.collection, writable=True))
        store = registry.open_store(registry.view_url(message.collection, message.view))
        view = run_sync(
            View.create_async(
                store,
                base=base,
                variables=variables,
                reference=registry.url_of(message.collection),
                overwrite=message.overwrite,
            )
        )
        return CreateViewResult(info=view_info(message.collection, message.view, view))

    def describe_view(message: Any, record: CallRecord) -> Any:
        base = run_sync(registry.open_async(message.collection))
        view = run_sync(open_view_async(server, message.collection, base, message.view))
        return DescribeViewResult(info=view_info(message.collection, message.view, view))

    def list_views(message: Any, record: CallRecord) -> Any:
        run_sync(registry.open_async(message.collection))  # the collection must exist
        names = run_sync(registry.view_names_async(message.collection))
        record.rows = len(names)
        return ListViewsResult(views=names)

    return {
        "zcollection.v1.create_view": create_view,
        "zcollection.v1.describe_view": describe_view,
        "zcollection.v1.list_views": list_views,
    }
