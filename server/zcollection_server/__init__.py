"""zcollection_server: an Apache Arrow Flight server over zcollection collections."""

__version__ = "0.1.0"

from .server import ZCollectionFlightServer
from .settings import ServerSettings, load_config

__all__ = ["ServerSettings", "ZCollectionFlightServer", "__version__", "load_config"]
