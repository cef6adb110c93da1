"""zcollection: partitioned collections of Zarr v3 groups."""

from . import codecs
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

__version__ = "0.1.0"
