"""Indexing: lookup tables from user-defined keys to row ranges of a collection's partitions.

``Indexer`` (in ``zcollection.indexing.parquet``) needs pyarrow, an optional dependency
(the ``parquet`` extra); it is imported on first use, so ``import zcollection`` never loads
pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .parquet import Indexer

__all__ = ["Indexer", "parquet"]


def __getattr__(name: str) -> Any:
    if name == "Indexer":
        from .parquet import Indexer

        return Indexer
    if name == "parquet":
        from . import parquet

        return parquet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
