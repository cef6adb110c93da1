"""Where an index file lives: a local path, or a file name inside a store URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import InvalidURLError


@dataclass(frozen=True)
class Location:
    """A local file (``local`` set) or the key ``name`` of the store at ``parent``."""

    local: str | None = None
    parent: str | None = None
    name: str | None = None


def locate(path: str | os.PathLike[str]) -> Location:
    """Split ``path`` into a local file path or a (store URL, file name) pair.

    Raises:
        InvalidURLError: If a store URL has no parent location or no file name, or names an
            icechunk repository.
    """
    if isinstance(path, os.PathLike):
        return Location(local=os.fspath(path))
    if not isinstance(path, str) or not path.strip():
        raise InvalidURLError(f"not an index path or URL: {path!r}")
    if "://" not in path:
        return Location(local=path)
    scheme, rest = path.split("://", 1)
    if scheme.lower() == "file":
        parts = urlsplit(path)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise InvalidURLError(f"unsupported file URL {path!r}")
        return Location(local=unquote(parts.path))
    if scheme.lower().startswith("icechunk"):
        raise InvalidURLError(
            f"an icechunk repository holds only Zarr nodes, not Parquet files ({path!r}); "
            "write the index to a local path or an object store URL"
        )
    container, _, name = rest.rstrip().rpartition("/")
    if not container.strip("/") or not name:
        raise InvalidURLError(
            f"an index URL names a file inside a store, e.g. {scheme}://bucket/index.parquet; "
            f"got {path!r}"
        )
    return Location(parent=f"{scheme}://{container}", name=name)


async def read_bytes_async(location: Location, storage_options: dict[str, Any] | None) -> bytes:
    """Return the content of the store file ``location``.

    Raises:
        FileNotFoundError: If it does not exist.
    """
    from ..store import open_store

    assert location.parent is not None and location.name is not None
    store = open_store(location.parent, read_only=True, storage_options=storage_options)
    data = await store.read_bytes_async(location.name)
    if data is None:
        raise FileNotFoundError(f"no index file {location.name!r} in {store.root_uri}")
    return data


async def write_bytes_async(
    location: Location, data: bytes, storage_options: dict[str, Any] | None
) -> None:
    """Write ``data`` as the store file ``location`` (in one store session)."""
    from ..store import open_store

    assert location.parent is not None and location.name is not None
    store = open_store(location.parent, storage_options=storage_options)
    async with store.session_async(f"write index {location.name}") as session:
        await session.write_bytes_async(location.name, data)


__all__ = ["Location", "locate", "read_bytes_async", "write_bytes_async"]
