"""The ``zcollection.v1.*`` actions: bodies and results are protobuf, or its JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zcollection as zc
from google.protobuf.message import Message
from zcollection._sync import run_sync
from zcollection_proto import (
    ACTIONS,
    CollectionInfo,
    CreateCollectionResult,
    DeleteCollectionResult,
    DescribeResult,
    DropPartitionsResult,
    HealthResult,
    ListCollectionsResult,
    ListPartitionsResult,
    RepairCatalogResult,
    ServerInfoResult,
    decode_message,
    encode_message,
)

from .calllog import CallRecord
from .errors import ClientError
from .names import check_collection_name

if TYPE_CHECKING:
    from .server import ZCollectionFlightServer


def _is_json(body: bytes) -> bool:
    return body.lstrip()[:1] == b"{"


class ActionHandlers:
    """Dispatches actions by their versioned name."""

    def __init__(self, server: ZCollectionFlightServer) -> None:
        self.server = server
        self.registry = server.registry
        self._handlers: dict[str, Callable[[Any, CallRecord], Message]] = {
            "zcollection.v1.list_collections": self.list_collections,
            "zcollection.v1.describe": self.describe,
            "zcollection.v1.create_collection": self.create_collection,
            "zcollection.v1.delete_collection": self.delete_collection,
            "zcollection.v1.list_partitions": self.partitions,
            "zcollection.v1.drop_partitions": self.drop_partitions,
            "zcollection.v1.repair_catalog": self.repair_catalog,
            "zcollection.v1.server_info": self.server_info,
            "zcollection.v1.health": self.health,
        }
        from .views import view_handlers

        self._handlers.update(view_handlers(self))

    def handle(self, name: str, body: bytes, record: CallRecord) -> bytes:
        """Run action ``name`` on ``body``; return the encoded result."""
        spec = ACTIONS.get(name)
        handler = self._handlers.get(name)
        if spec is None or handler is None:
            known = ", ".join(sorted(self._handlers))
            raise ClientError(f"unknown action {name!r}; known: {known}")
        message = decode_message(body, spec.request) if body.strip() else spec.request()
        collection = getattr(message, "collection", None)
        if collection:
            record.collection = collection
        # The one access check of every action (permissions: auth.REQUIRED).
        self.server.authorize(record, name, collection)
        result = handler(message, record)
        return encode_message(result, as_json=_is_json(body))

    # -- collections ----------------------------------------------------------------------
    def info(self, name: str, collection: zc.Collection) -> CollectionInfo:
        """Return the CollectionInfo of an open collection."""
        partitions = run_sync(collection.partitions_async())
        try:
            views = run_sync(self.registry.view_names_async(name))
        except zc.ZCollectionError:
            views = []
        return CollectionInfo(
            collection=name,
            schema=json.dumps(collection.schema.to_json()),
            axis=collection.axis,
            partitioning=json.dumps(collection.partitioning.to_json()),
            catalog_enabled=collection.catalog_enabled,
            read_only=collection.read_only,
            format_version=1,
            views=views,
            partition_count=len(partitions),
        )

    def list_collections(self, message: Any, record: CallRecord) -> Message:
        names = self.server.readable(record, run_sync(self.registry.names_async()))
        record.rows = len(names)
        return ListCollectionsResult(collections=names)

    def describe(self, message: Any, record: CallRecord) -> Message:
        # Opened as do_put opens it, so that read_only says whether inserts can succeed.
        collection = run_sync(self.registry.open_async(message.collection, writable=True))
        return DescribeResult(info=self.info(message.collection, collection))

    def create_collection(self, message: Any, record: CallRecord) -> Message:
        check_collection_name(message.collection)
        try:
            schema = zc.DatasetSchema.from_json(json.loads(message.schema))
            partitioning = zc.partitioning.from_json(json.loads(message.partitioning))
        except ValueError as exc:
            if isinstance(exc, zc.ZCollectionError):
                raise
            raise zc.SchemaError(f"schema and partitioning must be JSON: {exc}") from exc
        if not message.axis:
            raise zc.SchemaError("create_collection needs an axis")
        collection = run_sync(
            self.registry.create_async(
                message.collection,
                schema=schema,
                axis=message.axis,
                partitioning=partitioning,
                catalog_enabled=message.catalog_enabled,
                overwrite=message.overwrite,
            )
        )
        return CreateCollectionResult(info=self.info(message.collection, collection))

    def delete_collection(self, message: Any, record: CallRecord) -> Message:
        deleted = run_sync(self.registry.delete_async(message.collection))
        if not deleted:
            raise zc.CollectionNotFoundError(f"no collection {message.collection!r} on this server")
        return DeleteCollectionResult(collection=message.collection, deleted=True)

    # -- partitions -----------------------------------------------------------------------
    def partitions(self, message: Any, record: CallRecord) -> Message:
        collection = run_sync(self.registry.open_async(message.collection))
        filters = message.filters if message.HasField("filters") else None
        paths = run_sync(collection.partitions_async(filters=filters or None))
        record.rows = len(paths)
        return ListPartitionsResult(partitions=paths)

    def drop_partitions(self, message: Any, record: CallRecord) -> Message:
        filters = message.filters if message.HasField("filters") else None
        if not filters and not message.all:
            raise ClientError("drop_partitions without filters drops everything: set all=true")
        if filters and message.all:
            raise ClientError("drop_partitions takes filters or all=true, not both")
        collection = run_sync(self.registry.open_async(message.collection, writable=True))
        dropped = run_sync(collection.drop_partitions_async(filters=filters or None))
        record.rows = len(dropped)
        return DropPartitionsResult(partitions=dropped)

    def repair_catalog(self, message: Any, record: CallRecord) -> Message:
        collection = run_sync(self.registry.open_async(message.collection, writable=True))
        return RepairCatalogResult(partitions=run_sync(collection.repair_catalog_async()))

    # -- server ---------------------------------------------------------------------------
    def server_info(self, message: Any, record: CallRecord) -> Message:
        info = self.server.server_info()
        return ServerInfoResult(
            version=info["version"],
            protocol=info["protocol"],
            format_version=info["format_version"],
            max_batch_bytes=info["max_batch_bytes"],
            merge_strategies=info["merge_strategies"],
            locations=info["locations"],
            auth=info["auth"],
        )

    def health(self, message: Any, record: CallRecord) -> Message:
        if self.server.draining:
            return HealthResult(status=HealthResult.NOT_SERVING, detail="shutting down")
        return HealthResult(status=HealthResult.SERVING, detail="ok")
