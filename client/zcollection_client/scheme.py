"""The ``grpc://host:port/name`` URL scheme of zcollection.open_collection / create_collection.

Registered through the ``zcollection.collection_schemes`` entry point group, so the engine
never imports the client unless such a URL is opened.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .connection import Connection, parse_uri

_connections: dict[str, Connection] = {}
_lock = threading.Lock()


def _connection(uri: str) -> tuple[Connection, str]:
    location, name = parse_uri(uri)
    if not name:
        from zcollection import InvalidURLError

        raise InvalidURLError(f"the URI names no collection: {uri!r} (grpc://host:port/name)")
    with _lock:
        connection = _connections.get(location)
        if connection is None:
            connection = _connections[location] = Connection(location)
    return connection, name


async def open_collection_async(uri: str, *, mode: str = "r") -> Any:
    """Open the remote collection of ``uri``."""
    connection, name = _connection(uri)
    return await asyncio.to_thread(connection.open_collection, name, mode=mode)


async def create_collection_async(uri: str, **kwargs: Any) -> Any:
    """Create the remote collection of ``uri``."""
    connection, name = _connection(uri)
    return await asyncio.to_thread(lambda: connection.create_collection(name, **kwargs))


__all__ = ["create_collection_async", "open_collection_async"]
