"""File-system backed store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zarr.storage

from .base import Store


class LocalStore(Store):
    """File-system backed store rooted at ``path``.

    Reads go through a read-only zarr store, so looking at a path that holds nothing never
    creates it; the directory is created by the first write.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser().absolute()
        self.read_only = read_only
        self._reader = zarr.storage.LocalStore(self.path, read_only=True)
        self._writer: zarr.storage.LocalStore | None = None

    @property
    def root_uri(self) -> str:
        """Human-readable URI for diagnostics."""
        return self.path.as_uri()

    def zarr_store(self) -> Any:
        """Return the (read-only) zarr store used for reads."""
        return self._reader

    def writable_zarr_store(self) -> Any:
        """Return the zarr store used for writes, creating the root directory if needed."""
        self._check_writable()
        if self._writer is None:
            self._writer = zarr.storage.LocalStore(self.path, read_only=False)
        return self._writer
