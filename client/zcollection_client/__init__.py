"""zcollection_client: remote collections served by a zcollection Flight server.

``connect("grpc://host:port")`` returns a Connection; its ``open_collection(name)`` returns a
RemoteCollection with the engine's Collection interface. ``zcollection.open_collection(
"grpc://host:port/name")`` does the same through the engine's URL dispatch.
"""

from .collection import RemoteCollection
from .connection import ClientOptions, Connection, connect
from .errors import RemoteError, ServerUnavailableError
from .view import RemoteView

__version__ = "0.1.0"

__all__ = [
    "ClientOptions",
    "Connection",
    "RemoteCollection",
    "RemoteError",
    "RemoteView",
    "ServerUnavailableError",
    "__version__",
    "connect",
]
