"""The view config ``_zcollection_view.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..collection.collection import VIEW_CONFIG_KEY
from ..errors import StoreError
from ..meta_json import read_document
from ..schema import DatasetSchema
from .reference import ViewReference

#: The newest view format this library reads and writes.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ViewConfig:
    """Everything ``_zcollection_view.json`` records about a view."""

    reference: ViewReference
    schema: DatasetSchema

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document of the config."""
        return {
            "format_version": FORMAT_VERSION,
            "reference": self.reference.to_json(),
            "schema": self.schema.to_json(),
        }

    def to_bytes(self) -> bytes:
        """Return the UTF-8 JSON bytes of the config."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> ViewConfig:
        """Parse the config bytes read from ``where``.

        Raises:
            StoreError: If the document is not a valid view config.
            FormatVersionError: If it was written by a newer format.
        """
        payload = read_document(raw, what="view", where=where, newest=FORMAT_VERSION)
        try:
            reference = ViewReference.from_json(payload["reference"])
            schema = DatasetSchema.from_json(payload["schema"])
        except KeyError as exc:
            raise StoreError(f"corrupt view config at {where}: lacks {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise StoreError(f"corrupt view config at {where}: {exc}") from exc
        return cls(reference=reference, schema=schema)


__all__ = ["FORMAT_VERSION", "VIEW_CONFIG_KEY", "ViewConfig"]
