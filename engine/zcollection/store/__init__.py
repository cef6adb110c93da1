"""Stores: where a collection's Zarr hierarchy lives."""

from .base import Store, StoreSession
from .factory import open_store, register_scheme
from .local import LocalStore
from .memory import MemoryStore

__all__ = ["LocalStore", "MemoryStore", "Store", "StoreSession", "open_store", "register_scheme"]
