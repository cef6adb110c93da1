"""zcollection: partitioned collections of Zarr v3 groups.

Everything documented in the API reference is importable from here; grouped APIs live in
``zcollection.codecs``, ``zcollection.merge``, ``zcollection.partitioning``,
``zcollection.view``, ``zcollection.indexing`` and ``zcollection.aio``.

The schema, the in-memory data model, codecs, partitioning, merge strategies and errors are
pure numpy and import eagerly; everything that touches storage (zarr, obstore, icechunk) is
loaded on first use, so the Flight client can share the data model without those packages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import codecs, merge, partitioning
from .config import config
from .data import Dataset, Group, Variable
from .errors import (
    CatalogDisabledError,
    CollectionExistsError,
    CollectionNotFoundError,
    ConflictError,
    ExpressionError,
    FormatVersionError,
    InvalidURLError,
    PartitionError,
    PartitionExistsError,
    ReadOnlyError,
    SchemaError,
    StoreError,
    ZCollectionError,
)
from .schema import (
    DatasetSchema,
    Dimension,
    GroupSchema,
    Schema,
    SchemaBuilder,
    VariableRole,
    VariableSchema,
)
from .selection import RowSelection

if TYPE_CHECKING:
    from . import aio, indexing, view
    from .api import create_collection, open_collection
    from .collection import Collection
    from .store import LocalStore, MemoryStore, Store, open_store

__version__ = "0.1.0"

#: Names loaded on first use: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "aio": ("zcollection.aio", None),
    "view": ("zcollection.view", None),
    "indexing": ("zcollection.indexing", None),
    "create_collection": ("zcollection.api", "create_collection"),
    "open_collection": ("zcollection.api", "open_collection"),
    "Collection": ("zcollection.collection", "Collection"),
    "Store": ("zcollection.store", "Store"),
    "LocalStore": ("zcollection.store", "LocalStore"),
    "MemoryStore": ("zcollection.store", "MemoryStore"),
    "open_store": ("zcollection.store", "open_store"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'zcollection' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CatalogDisabledError",
    "Collection",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "ConflictError",
    "Dataset",
    "DatasetSchema",
    "Dimension",
    "ExpressionError",
    "FormatVersionError",
    "Group",
    "GroupSchema",
    "InvalidURLError",
    "LocalStore",
    "MemoryStore",
    "PartitionError",
    "PartitionExistsError",
    "ReadOnlyError",
    "RowSelection",
    "Schema",
    "SchemaBuilder",
    "SchemaError",
    "Store",
    "StoreError",
    "Variable",
    "VariableRole",
    "VariableSchema",
    "ZCollectionError",
    "__version__",
    "aio",
    "codecs",
    "config",
    "create_collection",
    "indexing",
    "merge",
    "open_collection",
    "open_store",
    "partitioning",
    "view",
]
