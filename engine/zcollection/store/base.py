"""The narrow Store abstraction: bytes, listings, prefixes and write sessions."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from zarr.abc.store import Store as ZarrStoreABC
from zarr.core.buffer import default_buffer_prototype

from .._sync import run_sync
from ..errors import StoreError


class MetaFiles:
    """How a store keeps the collection's non-Zarr files (config, catalog, view config).

    The default keeps each at its own key; stores that hold only Zarr nodes (icechunk)
    override this.
    """

    async def read(self, store: ZarrStoreABC, key: str) -> bytes | None:
        """Return the content of meta file ``key`` (None when absent)."""
        return await read_key(store, key)

    async def write(self, store: ZarrStoreABC, key: str, data: bytes) -> None:
        """Write meta file ``key``."""
        await write_key(store, key, data)

    async def exists(self, store: ZarrStoreABC, key: str) -> bool:
        """Return whether meta file ``key`` exists."""
        return await key_exists(store, key)


class StoreSession:
    """A write block on a store: everything written through it lands together or not at all.

    On stores without transactions the writes go straight to the store and ``commit`` does
    nothing; transactional stores override this class.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def zarr_store(self) -> Any:
        """Return the zarr store that writes of this session must go through."""
        return self.store.zarr_store()

    async def commit(self, message: str) -> None:
        """Make the session's writes durable and visible."""

    async def rollback(self) -> None:
        """Discard what the session wrote, where the store can."""

    # meta files and byte-level helpers that route through this session's zarr store
    async def read_meta_async(self, key: str) -> bytes | None:
        """Return the content of meta file ``key`` as seen by this session."""
        return await self.store.meta_files.read(self.zarr_store(), key)

    async def write_meta_async(self, key: str, data: bytes) -> None:
        """Write meta file ``key`` inside this session."""
        await self.store.meta_files.write(self.zarr_store(), key, data)

    async def meta_exists_async(self, key: str) -> bool:
        """Return whether meta file ``key`` exists as seen by this session."""
        return await self.store.meta_files.exists(self.zarr_store(), key)

    async def read_bytes_async(self, key: str) -> bytes | None:
        """Return the bytes at ``key`` as seen by this session."""
        return await read_key(self.zarr_store(), key)

    async def write_bytes_async(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` inside this session."""
        await write_key(self.zarr_store(), key, data)

    async def delete_prefix_async(self, prefix: str) -> None:
        """Delete everything under ``prefix`` inside this session."""
        await delete_prefix(self.zarr_store(), prefix)

    async def list_dir_async(self, prefix: str) -> list[str]:
        """Return the direct children of ``prefix`` as seen by this session."""
        return await list_dir(self.zarr_store(), prefix)

    async def exists_async(self, key: str) -> bool:
        """Return whether ``key`` exists as seen by this session."""
        return await key_exists(self.zarr_store(), key)


async def read_key(store: ZarrStoreABC, key: str) -> bytes | None:
    """Read one key of a zarr store (None when absent)."""
    try:
        buf = await store.get(key, prototype=default_buffer_prototype())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {key!r}: {exc}") from exc
    return None if buf is None else buf.to_bytes()


async def key_exists(store: ZarrStoreABC, key: str) -> bool:
    """Return whether ``key`` exists in a zarr store (False when its root does not exist)."""
    try:
        return bool(await store.exists(key))
    except FileNotFoundError:
        return False


async def write_key(store: ZarrStoreABC, key: str, data: bytes) -> None:
    """Write one key of a zarr store."""
    try:
        await store.set(key, default_buffer_prototype().buffer.from_bytes(data))
    except OSError as exc:
        raise StoreError(f"cannot write {key!r}: {exc}") from exc


async def delete_prefix(store: ZarrStoreABC, prefix: str) -> None:
    """Delete every key under ``prefix`` (the whole store for ``""``)."""
    prefix = prefix.strip("/")
    try:
        if prefix:
            await store.delete_dir(prefix)
        else:
            await store.clear()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot delete {prefix!r}: {exc}") from exc
    except ValueError:
        # zarr's LocalStore refuses a prefix naming a file; nothing lies under a file (the
        # other stores leave such a key alone too)
        if await key_exists(store, prefix):
            return
        raise


async def list_dir(store: ZarrStoreABC, prefix: str) -> list[str]:
    """Return the sorted direct children (one path segment) of ``prefix``."""
    prefix = prefix.strip("/")
    try:
        return sorted({name async for name in store.list_dir(prefix)})
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot list {prefix!r}: {exc}") from exc


class Store(abc.ABC):
    """Capability surface for a backend that can hold a Zarr v3 hierarchy."""

    read_only: bool = False
    #: Whether sessions commit atomically (icechunk): otherwise the engine coordinates the
    #: readers and writers of this process itself (``collection.locks``).
    transactional: bool = False
    #: Where the collection's non-Zarr files live on this store.
    meta_files: MetaFiles = MetaFiles()

    @property
    @abc.abstractmethod
    def root_uri(self) -> str:
        """Human-readable URI for diagnostics."""

    @abc.abstractmethod
    def zarr_store(self) -> Any:
        """Return the underlying ``zarr.abc.store.Store`` instance."""

    # -- async primitives (the implementation every sync method shares) ------------------
    async def read_meta_async(self, key: str) -> bytes | None:
        """Return the content of meta file ``key`` (config, catalog) or None if absent."""
        return await self.meta_files.read(self.zarr_store(), key)

    async def read_bytes_async(self, key: str) -> bytes | None:
        """Return the raw bytes stored at ``key`` or None if absent."""
        return await read_key(self.zarr_store(), key)

    async def write_bytes_async(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (overwriting any existing value)."""
        self._check_writable()
        await write_key(self.writable_zarr_store(), key, data)

    async def exists_async(self, key: str) -> bool:
        """Return whether ``key`` is present in the store."""
        return await key_exists(self.zarr_store(), key)

    async def list_dir_async(self, prefix: str) -> list[str]:
        """Return the direct children (groups, arrays, files) under ``prefix``."""
        return await list_dir(self.zarr_store(), prefix)

    async def list_prefix_async(self, prefix: str) -> list[str]:
        """Return every key under ``prefix`` (relative to the store root)."""
        prefix = prefix.strip("/")
        # whole path segments only: "a" lists "a/x" but neither "ab/y" nor the key "a"
        query = f"{prefix}/" if prefix else ""
        try:
            keys = [key async for key in self.zarr_store().list_prefix(query)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(key for key in keys if key.startswith(query))

    async def delete_prefix_async(self, prefix: str) -> None:
        """Recursively delete everything under ``prefix``."""
        self._check_writable()
        await delete_prefix(self.writable_zarr_store(), prefix)

    # -- sync facade --------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes | None:
        """Return the raw bytes stored at ``key`` or None if absent."""
        return run_sync(self.read_bytes_async(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (overwriting any existing value)."""
        run_sync(self.write_bytes_async(key, data))

    def exists(self, key: str) -> bool:
        """Return whether ``key`` is present in the store."""
        return run_sync(self.exists_async(key))

    def list_dir(self, prefix: str) -> Iterator[str]:
        """Yield direct children (groups + arrays) under ``prefix``."""
        yield from run_sync(self.list_dir_async(prefix))

    def list_prefix(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``."""
        yield from run_sync(self.list_prefix_async(prefix))

    def delete_prefix(self, prefix: str) -> None:
        """Recursively delete everything under ``prefix``."""
        run_sync(self.delete_prefix_async(prefix))

    # -- sessions -----------------------------------------------------------------------
    def writable_zarr_store(self) -> Any:
        """Return the zarr store used for writes (the same as zarr_store() by default)."""
        return self.zarr_store()

    def _check_writable(self) -> None:
        if self.read_only:
            from ..errors import ReadOnlyError

            raise ReadOnlyError(f"store {self.root_uri} is read-only")

    def new_session(self) -> StoreSession:
        """Return a fresh write session (transactional stores override this)."""
        self._check_writable()
        return _DirectSession(self)

    async def new_session_async(self) -> StoreSession:
        """Async twin of ``new_session`` (stores whose sessions start with I/O override it)."""
        return self.new_session()

    @contextlib.asynccontextmanager
    async def session_async(
        self, message: str = "zcollection write"
    ) -> AsyncIterator[StoreSession]:
        """Async write block: commits on success, rolls back on error (nothing committed)."""
        session = await self.new_session_async()
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit(message)

    @contextlib.contextmanager
    def session(self) -> Iterator[StoreSession]:
        """Yield a StoreSession for the duration of a write block."""
        session = self.new_session()
        try:
            yield session
        except BaseException:
            run_sync(session.rollback())
            raise
        run_sync(session.commit("zcollection write"))

    def __repr__(self) -> str:
        suffix = ", read_only=True" if self.read_only else ""
        return f"{type(self).__name__}({self.root_uri!r}{suffix})"


class _DirectSession(StoreSession):
    """Session of a non-transactional store: writes go straight to the store."""

    def zarr_store(self) -> Any:
        return self.store.writable_zarr_store()
