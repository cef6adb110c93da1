"""The collection config ``_zcollection.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemaError, StoreError
from ..meta_json import read_document
from ..partitioning import Partitioning
from ..partitioning import from_json as partitioning_from_json
from ..schema import DatasetSchema

CONFIG_KEY = "_zcollection.json"
#: The newest collection format this library reads and writes.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CollectionConfig:
    """Everything ``_zcollection.json`` records about a collection."""

    axis: str
    partitioning: Partitioning
    schema: DatasetSchema
    catalog_enabled: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document of the config."""
        payload: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "axis": self.axis,
            "partitioning": self.partitioning.to_json(),
            "catalog": {"enabled": self.catalog_enabled},
            "schema": self.schema.to_json(),
        }
        if self.extras:
            payload["extras"] = self.extras
        return payload

    def to_bytes(self) -> bytes:
        """Return the UTF-8 JSON bytes of the config."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> CollectionConfig:
        """Parse the config bytes read from ``where``."""
        payload = read_document(raw, what="collection", where=where, newest=FORMAT_VERSION)
        try:
            axis = payload["axis"]
            if not isinstance(axis, str):
                raise StoreError(f"corrupt collection config at {where}: axis {axis!r}")
            schema = DatasetSchema.from_json(payload["schema"]).with_partition_axis(axis)
            partitioning = partitioning_from_json(payload["partitioning"])
            catalog = payload.get("catalog") or {}
        except KeyError as exc:
            raise SchemaError(f"collection config at {where} lacks {exc}") from exc
        extras = payload.get("extras") or {}
        if not isinstance(catalog, dict) or not isinstance(extras, dict):
            raise StoreError(
                f"corrupt collection config at {where}: catalog and extras must be JSON objects"
            )
        return cls(
            axis=axis,
            partitioning=partitioning,
            schema=schema,
            catalog_enabled=bool(catalog.get("enabled", False)),
            extras=dict(extras),
        )
