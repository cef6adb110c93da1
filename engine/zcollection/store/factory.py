"""open_store: pick a Store implementation from a URL."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import InvalidURLError
from .base import Store
from .local import LocalStore
from .memory import MemoryStore

StoreFactory = Callable[[str, bool, dict[str, Any] | None], Store]

#: Extra URL schemes registered by optional back-ends (scheme -> factory).
_SCHEMES: dict[str, StoreFactory] = {}


def register_scheme(scheme: str, factory: StoreFactory) -> None:
    """Register a store factory for a URL scheme (used by optional back-ends)."""
    _SCHEMES[scheme.lower()] = factory


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidURLError(f"file URL with a host is not supported: {url!r}")
    path = unquote(parts.path)
    if not path:
        raise InvalidURLError(f"file URL without a path: {url!r}")
    return path


def open_store(
    path: str | os.PathLike[str] | Store,
    *,
    read_only: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Store:
    """Open a Store given a URL or filesystem path.

    Schemes: ``file://`` (and bare paths) -> LocalStore, ``memory://[name]`` -> MemoryStore;
    other schemes come from optional back-ends (S3 and friends through obstore, icechunk).
    """
    if isinstance(path, Store):
        return path
    if isinstance(path, os.PathLike):
        return LocalStore(path, read_only=read_only)
    if not isinstance(path, str) or not path.strip():
        raise InvalidURLError(f"not a store URL or path: {path!r}")
    if "\x00" in path:
        raise InvalidURLError("store URL contains a NUL character")
    if "://" not in path:
        return LocalStore(path, read_only=read_only)
    scheme = path.split("://", 1)[0].lower()
    if scheme == "file":
        return LocalStore(_local_path(path), read_only=read_only)
    if scheme == "memory":
        name = path.split("://", 1)[1].strip("/")
        return MemoryStore(name or None, read_only=read_only)
    if scheme not in _SCHEMES:
        _load_optional(scheme)
    if scheme in _SCHEMES:
        return _SCHEMES[scheme](path, read_only, storage_options)
    raise InvalidURLError(
        f"unsupported store URL scheme {scheme!r} in {path!r}; "
        f"supported: file://, memory://{''.join(', ' + s + '://' for s in sorted(_SCHEMES))}"
    )


def _load_optional(scheme: str) -> None:
    """Import the optional back-end that provides ``scheme``, if it is installed."""
    modules = {
        "s3": "zcollection.store.objectstore",
        "gs": "zcollection.store.objectstore",
        "az": "zcollection.store.objectstore",
        "http": "zcollection.store.objectstore",
        "https": "zcollection.store.objectstore",
        "icechunk": "zcollection.store.icechunk",
        "icechunk+s3": "zcollection.store.icechunk",
    }
    module = modules.get(scheme)
    if module is None:
        return
    import importlib

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("zcollection"):
            return
        raise InvalidURLError(
            f"{scheme}:// needs an optional dependency that is not installed ({exc.name}); "
            "install zcollection-flight with the matching extra (s3 or icechunk)"
        ) from exc
