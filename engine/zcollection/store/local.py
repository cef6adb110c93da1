"""File-system backed store."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Self

import zarr.storage
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype

from .base import Store


class LocalStore(Store):
    """File-system backed store rooted at ``path``.

    Reads go through a read-only zarr store, so looking at a path that holds nothing never
    creates it; the directory is created by the first write.

    ``confine_to`` (a folder) keeps the store inside that folder: a symbolic link leading
    out of it is invisible to reads and refused to writes (a server gives its root).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        confine_to: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.read_only = read_only
        self.confine_to = None if confine_to is None else Path(confine_to).resolve()
        self._reader = LocalZarrStore(self.path, read_only=True, boundary=self.confine_to)
        self._writer: LocalZarrStore | None = None

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
            self._writer = LocalZarrStore(self.path, read_only=False, boundary=self.confine_to)
        return self._writer


class LocalZarrStore(zarr.storage.LocalStore):
    """zarr's LocalStore, optionally kept inside ``boundary``, that can also put a whole
    directory in place in one step (:meth:`replace_dir`)."""

    def __init__(
        self, root: Path | str, *, read_only: bool = False, boundary: Path | None = None
    ) -> None:
        super().__init__(root, read_only=read_only)
        self.boundary = boundary
        # plain strings: the check runs for every key, pathlib costs twice as much
        self._root_text = os.fspath(self.root)
        self._boundary_text = None if boundary is None else os.fspath(boundary)
        self._boundary_prefix = (
            None if boundary is None else os.fspath(boundary).rstrip(os.sep) + os.sep
        )

    def with_read_only(self, read_only: bool = False) -> Self:
        return type(self)(self.root, read_only=read_only, boundary=self.boundary)

    # -- confinement ------------------------------------------------------------------------
    def _inside(self, key: str) -> bool:
        if self._boundary_prefix is None:
            return True
        target = os.path.realpath(os.path.join(self._root_text, key))
        return target == self._boundary_text or target.startswith(self._boundary_prefix)

    def _check(self, key: str) -> None:
        if not self._inside(key):
            raise PermissionError(
                errno.EACCES, f"{key!r} leads out of {self.boundary} (a symbolic link)"
            )

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if not self._inside(key):
            return None
        return await super().get(key, prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        ranges = list(key_ranges)
        for key, _ in ranges:
            self._check(key)
        return await super().get_partial_values(prototype, ranges)

    async def exists(self, key: str) -> bool:
        return self._inside(key) and await super().exists(key)

    async def getsize(self, key: str) -> int:
        self._check(key)
        return await super().getsize(key)

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        async for name in super().list_dir(prefix):
            if self._inside(f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name):
                yield name

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        async for key in super().list_prefix(prefix):
            if self._inside(key):
                yield key

    async def list(self) -> AsyncIterator[str]:
        async for key in super().list():
            if self._inside(key):
                yield key

    async def set(self, key: str, value: Buffer) -> None:
        self._check(key)
        await super().set(key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        self._check(key)
        await super().set_if_not_exists(key, value)

    async def delete(self, key: str) -> None:
        self._check(key)
        await super().delete(key)

    async def delete_dir(self, prefix: str) -> None:
        self._check(prefix)
        await super().delete_dir(prefix)

    # -- replacing a directory in one step ------------------------------------------------
    async def replace_dir(self, staged: str, prefix: str) -> None:
        """Put the directory ``staged`` at ``prefix`` in one step, then delete what was there.

        Readers see the old directory or the new one, never a mix or nothing (on Linux; other
        systems have a short window without either), and a crash leaves one of them at
        ``prefix`` (the other under the staged name, which nothing lists).
        """
        self._check_writable()
        self._check(staged)
        self._check(prefix)
        await asyncio.to_thread(_replace_dir, self.root / staged, self.root / prefix)


def _replace_dir(staged: Path, target: Path) -> None:
    try:
        os.rename(staged, target)  # nothing (or an empty folder) there: done
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
    if not _exchange(staged, target):
        aside = staged.with_name(staged.name + ".old")
        os.rename(target, aside)
        os.rename(staged, target)
        os.rename(aside, staged)
    # the old content (a folder, a file, or a link: never followed) now sits at ``staged``
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged)
    else:
        staged.unlink()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
