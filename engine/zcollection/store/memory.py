"""Process-local in-memory store; a named one is shared by every open of its URL."""

from __future__ import annotations

import threading
from typing import Any

import zarr.storage
from zarr.core.buffer import Buffer

from .base import Store

_REGISTRY: dict[str, dict[str, Buffer]] = {}
_LOCK = threading.Lock()


class MemoryStore(Store):
    """All keys held in a process-local dict; chiefly for tests.

    ``MemoryStore()`` is anonymous; ``MemoryStore(name="x")`` (or ``memory://x``) shares its
    content with every other store of that name in this process.
    """

    def __init__(self, name: str | None = None, *, read_only: bool = False) -> None:
        self.name = name
        self.read_only = read_only
        if name is None:
            self._dict: dict[str, Buffer] = {}
        else:
            with _LOCK:
                self._dict = _REGISTRY.setdefault(name, {})
        self._store = zarr.storage.MemoryStore(store_dict=self._dict)

    @property
    def root_uri(self) -> str:
        """Human-readable URI for diagnostics."""
        return f"memory://{self.name}" if self.name else f"memory://<anonymous {id(self):x}>"

    def zarr_store(self) -> Any:
        """Return the underlying zarr MemoryStore."""
        return self._store

    @staticmethod
    def forget(name: str) -> None:
        """Drop the named memory store's content from the process registry."""
        with _LOCK:
            _REGISTRY.pop(name, None)
