"""Validation of names coming from clients: nothing outside the served root is reachable."""

from __future__ import annotations

import re

from zcollection import PartitionError, SchemaError
from zcollection.partitioning import Partitioning

_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_DEPTH = 8


class InvalidNameError(SchemaError):
    """Raised for a collection, view or partition name a client may not use."""

    code = "INVALID_NAME"


def check_collection_name(name: str) -> str:
    """Return ``name`` if it is a safe collection name (``a``, ``team/altimetry``)."""
    if not isinstance(name, str) or not name or len(name) > 512:
        raise InvalidNameError(f"invalid collection name {name!r}")
    parts = name.split("/")
    if len(parts) > MAX_DEPTH or any(not _COMPONENT.match(p) or ".." in p for p in parts):
        raise InvalidNameError(
            f"invalid collection name {name!r}: use 1 to {MAX_DEPTH} '/'-separated parts of "
            "letters, digits, '.', '_' and '-', not starting with '.', '_' or '-'"
        )
    return name


def check_view_name(name: str) -> str:
    """Return ``name`` if it is a safe view name (one component)."""
    if not isinstance(name, str) or not _COMPONENT.match(name) or ".." in name:
        raise InvalidNameError(f"invalid view name {name!r}")
    return name


def check_partition_path(partitioning: Partitioning, path: str) -> str:
    """Return ``path`` if it is the canonical path of a partition key of ``partitioning``."""
    if not isinstance(path, str) or not path or len(path) > 1024 or "\x00" in path:
        raise InvalidNameError(f"invalid partition path {path!r}")
    try:
        key = partitioning.decode(path)
    except PartitionError as exc:
        raise InvalidNameError(f"invalid partition path {path!r}: {exc}") from exc
    canonical = partitioning.encode(key)
    if canonical != path.strip("/"):
        raise InvalidNameError(f"invalid partition path {path!r} (expected {canonical!r})")
    return canonical
