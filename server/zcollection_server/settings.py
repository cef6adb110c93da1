"""Server settings: command-line flags and the optional TOML config file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zcollection_proto import DEFAULT_MAX_BYTES

from .names import InvalidNameError, check_collection_name

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8815


class SettingsError(ValueError):
    """Raised for an invalid configuration."""


@dataclass
class ServerSettings:
    """Everything the server needs to start."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: URL under which every collection is served (name = path relative to the root).
    root: str | None = None
    #: Explicit collections: name -> store URL (any URL the engine accepts).
    collections: dict[str, str] = field(default_factory=dict)
    #: Upper bound of the bytes of one record batch sent to clients.
    max_batch_bytes: int = DEFAULT_MAX_BYTES
    #: Partitions read ahead of the one being streamed.
    read_ahead: int = 1
    #: Seconds running streams get to finish after SIGTERM / SIGINT.
    grace_period: float = 10.0
    #: Locations advertised in endpoints (a fleet sharing one store); empty: this server.
    locations: list[str] = field(default_factory=list)
    #: Emit one JSON object per log line.
    log_json: bool = False

    def validate(self) -> ServerSettings:
        """Check the settings; return self."""
        if not self.root and not self.collections:
            raise SettingsError("nothing to serve: give --root and/or collections in --config")
        if not 0 <= self.port < 65536:
            raise SettingsError(f"invalid port {self.port}")
        if self.max_batch_bytes < 1024:
            raise SettingsError("max_batch_bytes must be at least 1024")
        if self.read_ahead < 0:
            raise SettingsError("read_ahead must be >= 0")
        for name in self.collections:
            try:
                check_collection_name(name)
            except InvalidNameError as exc:
                raise SettingsError(f"[collections]: {exc}") from None
        return self

    @property
    def location(self) -> str:
        """The gRPC location this server binds to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"grpc://{host}:{self.port}"


def load_config(path: str | Path, base: ServerSettings | None = None) -> ServerSettings:
    """Read a TOML config file over ``base``.

    ```toml
    [server]
    host = "127.0.0.1"
    port = 8815
    root = "file:///data/collections"
    max_batch_bytes = 4194304

    [collections]
    altimetry = "s3://bucket/altimetry"
    ```
    """
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config {path}: {exc}") from exc
    settings = base or ServerSettings()
    server: dict[str, Any] = doc.get("server", {})
    known = set(ServerSettings.__dataclass_fields__) - {"collections"}
    unknown = set(server) - known
    if unknown:
        raise SettingsError(f"unknown [server] keys in {path}: {sorted(unknown)}")
    for key, value in server.items():
        setattr(settings, key, value)
    collections = doc.get("collections", {})
    if not isinstance(collections, dict) or not all(
        isinstance(v, str) for v in collections.values()
    ):
        raise SettingsError("[collections] maps names to store URLs")
    settings.collections.update(collections)
    return settings
