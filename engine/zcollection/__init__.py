"""zcollection: partitioned collections of Zarr v3 groups.

Everything documented in the API reference is importable from here; grouped APIs live in
``zcollection.codecs``, ``zcollection.merge``, ``zcollection.partitioning``,
``zcollection.view`` and ``zcollection.aio``.
"""

from . import aio, codecs, merge, partitioning
from .api import create_collection, open_collection
from .collection import Collection, RowSelection
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
from .store import LocalStore, MemoryStore, Store, open_store

__version__ = "0.1.0"

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
    "merge",
    "open_collection",
    "open_store",
    "partitioning",
]
