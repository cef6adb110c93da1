"""The exception tree of zcollection.

Every class carries a stable, machine-readable ``code`` that the Flight server puts in
``extra_info`` and the client maps back to the same class.
"""

from __future__ import annotations

from typing import ClassVar


class ZCollectionError(Exception):
    """Base class for all zcollection errors."""

    code: ClassVar[str] = "ZCOLLECTION_ERROR"


class SchemaError(ZCollectionError, ValueError):
    """Raised when a schema is invalid or inconsistent with data."""

    code = "SCHEMA_ERROR"


class StoreError(ZCollectionError):
    """Raised by the store layer for I/O or transactional failures."""

    code = "STORE_ERROR"


class ConflictError(StoreError):
    """Raised when a transactional commit loses a race against another writer."""

    code = "CONFLICT"


class CollectionExistsError(ZCollectionError):
    """Raised when create_collection targets a path that already exists."""

    code = "COLLECTION_EXISTS"


class CollectionNotFoundError(ZCollectionError):
    """Raised when open_collection cannot locate a collection."""

    code = "COLLECTION_NOT_FOUND"


class PartitionExistsError(CollectionExistsError):
    """Raised when ``insert(overwrite=False)`` meets a partition that already exists."""

    code = "PARTITION_EXISTS"


class ReadOnlyError(ZCollectionError):
    """Raised when a write op is attempted on a read-only collection."""

    code = "READ_ONLY"


class ExpressionError(ZCollectionError, ValueError):
    """Raised when a partition filter expression is malformed or not allowed."""

    code = "EXPRESSION_ERROR"


class PartitionError(ZCollectionError, ValueError):
    """Raised when data cannot be partitioned or a partition path is malformed."""

    code = "PARTITION_ERROR"


class FormatVersionError(ZCollectionError):
    """Raised when an on-disk format is newer than this library supports."""

    code = "FORMAT_VERSION"


class CatalogDisabledError(ZCollectionError, RuntimeError):
    """Raised when a catalog operation targets a collection without a catalog."""

    code = "CATALOG_DISABLED"


class InvalidURLError(ZCollectionError, ValueError):
    """Raised when a store URL cannot be understood."""

    code = "INVALID_URL"


#: Every error class, keyed by its code (used to map wire errors back to classes).
ERROR_CLASSES: dict[str, type[ZCollectionError]] = {
    cls.code: cls
    for cls in (
        ZCollectionError,
        SchemaError,
        StoreError,
        ConflictError,
        CollectionExistsError,
        PartitionExistsError,
        CollectionNotFoundError,
        ReadOnlyError,
        ExpressionError,
        PartitionError,
        FormatVersionError,
        CatalogDisabledError,
        InvalidURLError,
    )
}
