"""The collections a server serves: discovered under a root URL and/or named in the config."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zcollection as zc
from zcollection.collection.config_file import CONFIG_KEY, CollectionConfig
from zcollection.store import LocalStore

from .names import _COMPONENT, MAX_DEPTH, InvalidNameError, check_collection_name, check_view_name

VIEWS_FOLDER = "_views"


def join_url(base: str, name: str) -> str:
    """Append a relative ``name`` to a store URL or path."""
    if "://" in base:
        return base.rstrip("/") + "/" + name
    return os.path.join(base, name)


#: Collections kept by :class:`Registry` (least recently used dropped first).
CONFIG_CACHE_SIZE = 256


@dataclass(frozen=True)
class _Opened:
    """What the registry keeps of a collection it opened."""

    url: str
    #: The config bytes ``config`` (and ``reader``) were made from.
    raw: bytes
    config: CollectionConfig
    #: The read-only collection of these bytes, handed to the next read-only opens while its
    #: config reads the same (None: the store is opened for each call).
    reader: zc.Collection | None = None


class Registry:
    """Maps collection names to store URLs and opens them.

    Opening a collection reads its config on every call (a collection deleted, recreated or
    changed by anyone, through the actions or not, is seen at once) but parses it only when
    its bytes changed, and a read-only open whose config reads the same bytes as the last one
    returns the same read-only collection (its store included: a collection holds no state
    of its data, and a local store keeps its reads inside the served root on every read).
    """

    def __init__(self, root: str | None, collections: dict[str, str]) -> None:
        self.root = root
        self.explicit = {check_collection_name(n): u for n, u in collections.items()}
        self._opened: OrderedDict[str, _Opened] = OrderedDict()
        self._opened_lock = threading.Lock()

    # -- naming ---------------------------------------------------------------------------
    def url_of(self, name: str) -> str:
        """Return the store URL of collection ``name`` (which may not exist yet).

        Raises:
            CollectionNotFoundError: If ``name`` is not served, or its folder under a local
                root leads outside the root (a symbolic link).
        """
        check_collection_name(name)
        if name in self.explicit:
            return self.explicit[name]
        if self.root is None:
            raise zc.CollectionNotFoundError(f"no collection {name!r} on this server")
        if not self._inside_root(name):
            raise zc.CollectionNotFoundError(f"no collection {name!r} on this server")
        return join_url(self.root, name)

    def _local_root(self) -> Path | None:
        """Return the resolved folder of a local root (None for other stores)."""
        if self.root is None:
            return None
        store = zc.open_store(self.root, read_only=True)
        return Path(store.path).resolve() if isinstance(store, LocalStore) else None

    def _inside_root(self, name: str) -> bool:
        """Return whether ``name`` under a local root stays inside it once links are followed."""
        root = self._local_root()
        if root is None:
            return True
        return root.joinpath(name).resolve().is_relative_to(root)

    def open_store(self, url: str, *, read_only: bool = False) -> zc.Store:
        """Open the store at ``url``. A local one never follows a symbolic link out of the
        served root (for a collection of the config file: out of its folder)."""
        store = zc.open_store(url, read_only=read_only)
        if not isinstance(store, LocalStore):
            return store
        return LocalStore(store.path, read_only=read_only, confine_to=self._boundary(store.path))

    def _boundary(self, path: Path) -> Path:
        folders = [self.root] if self.root is not None else []
        for folder in [*folders, *self.explicit.values()]:
            store = zc.open_store(folder, read_only=True)
            if isinstance(store, LocalStore) and (
                path.is_relative_to(store.path) or path.is_relative_to(store.path.resolve())
            ):
                return store.path.resolve()
        return path.resolve()

    def view_url(self, collection: str, view: str) -> str:
        """Return the store URL of view ``view`` of ``collection``."""
        check_view_name(view)
        return join_url(join_url(self.url_of(collection), VIEWS_FOLDER), view)

    async def names_async(self) -> list[str]:
        """Return every served collection name, sorted."""
        found = set()
        for name, url in self.explicit.items():
            store = self.open_store(url, read_only=True)
            if await store.read_meta_async(CONFIG_KEY) is not None:
                found.add(name)
        if self.root is not None:
            discovered = await self._discover(self.open_store(self.root, read_only=True), "", 0)
            found.update(n for n in discovered if n in self.explicit or self._inside_root(n))
        return sorted(found)

    async def _discover(self, store: zc.Store, prefix: str, depth: int) -> list[str]:
        children = await store.list_dir_async(prefix)
        if CONFIG_KEY in children and prefix:
            return [prefix]
        if depth >= MAX_DEPTH:
            return []
        subdirs = [c for c in children if _COMPONENT.match(c) and "." not in c[:1]]
        nested = await asyncio.gather(
            *(self._discover(store, f"{prefix}/{c}" if prefix else c, depth + 1) for c in subdirs)
        )
        return [name for names in nested for name in names]

    # -- collections ----------------------------------------------------------------------
    async def open_async(self, name: str, *, writable: bool = False) -> zc.Collection:
        """Open collection ``name``.

        Raises:
            CollectionNotFoundError: If there is no such collection (nothing is created).
        """
        if not writable:
            reader = await self._reader(name)
            if reader is not None:
                return reader
        url = self.url_of(name)
        try:
            store = self.open_store(url, read_only=not writable)
            raw = await store.read_meta_async(CONFIG_KEY)
        except zc.CollectionNotFoundError:
            raw = None
        if raw is None:
            self.forget(name)
            raise zc.CollectionNotFoundError(f"no collection {name!r} on this server")
        with self._opened_lock:
            kept = self._opened.get(name)
        if kept is not None and kept.url == url and kept.raw == raw:
            config = kept.config
        else:
            config = CollectionConfig.from_bytes(raw, store.root_uri)  # raises on a bad config
        collection = zc.Collection(
            store,
            schema=config.schema,
            axis=config.axis,
            partitioning=config.partitioning,
            catalog_enabled=config.catalog_enabled,
            read_only=not writable,
        )
        # A named memory store is forgotten and made anew with MemoryStore.forget: not kept.
        reader = collection if not writable and not isinstance(store, zc.MemoryStore) else None
        if kept is None or kept.raw != raw or kept.url != url or reader is not None:
            self._keep(name, _Opened(url, raw, config, reader))
        return collection

    async def _reader(self, name: str) -> zc.Collection | None:
        """Return the kept read-only collection ``name`` if its config still reads the same."""
        with self._opened_lock:
            kept = self._opened.get(name)
        if kept is None or kept.reader is None:
            return None
        try:
            raw = await kept.reader.store.read_meta_async(CONFIG_KEY)
        except Exception:  # the regular open decides, and reports
            return None
        if raw != kept.raw:
            return None
        with self._opened_lock:
            if name in self._opened:
                self._opened.move_to_end(name)
        return kept.reader

    def _keep(self, name: str, opened: _Opened) -> None:
        with self._opened_lock:
            self._opened[name] = opened
            self._opened.move_to_end(name)
            while len(self._opened) > CONFIG_CACHE_SIZE:
                self._opened.popitem(last=False)

    def forget(self, name: str) -> None:
        """Drop what is kept of collection ``name`` (deleted or replaced)."""
        with self._opened_lock:
            self._opened.pop(name, None)

    async def create_async(self, name: str, **kwargs: Any) -> zc.Collection:
        """Create collection ``name`` (under the root, or at its configured URL)."""
        url = self.url_of(name)
        await self._check_not_nested(name)
        self.forget(name)
        return await zc.aio.create_collection(self.open_store(url), **kwargs)

    async def _check_not_nested(self, name: str) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.explicit or self.root is not None:
                store = self.open_store(self.url_of(parent), read_only=True)
                if await store.read_meta_async(CONFIG_KEY) is not None:
                    raise InvalidNameError(f"{name!r} would be inside collection {parent!r}")
        # Nor around one: deleting (or overwriting) it would delete the inner collection.
        inner = await self._discover(self.open_store(self.url_of(name), read_only=True), "", 1)
        if inner:
            raise InvalidNameError(
                f"{name!r} would hold collection {name + '/' + inner[0]!r}; choose another name"
            )

    async def delete_async(self, name: str) -> bool:
        """Delete collection ``name`` and its views; return whether it existed."""
        url = self.url_of(name)
        store = self.open_store(url)
        if await store.read_meta_async(CONFIG_KEY) is None:
            return False
        self.forget(name)
        await store.delete_prefix_async("")
        if isinstance(store, LocalStore) and Path(store.path).is_dir():
            shutil.rmtree(store.path, ignore_errors=True)
        return True

    # -- views ----------------------------------------------------------------------------
    async def view_names_async(self, collection: str) -> list[str]:
        """Return the views of ``collection``, sorted."""
        url = join_url(self.url_of(collection), VIEWS_FOLDER)
        store = self.open_store(url, read_only=True)
        return sorted(c for c in await store.list_dir_async("") if _COMPONENT.match(c))
