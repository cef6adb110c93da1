"""Server settings: command-line flags and the optional TOML config file."""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zcollection.config import STREAM_BUFFER_BYTES
from zcollection_proto import DEFAULT_MAX_BYTES

from .auth import AuthConfig, AuthConfigError, parse_auth_config
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
    #: Rows of a do_put held before the partitions the stream has moved past are written.
    put_buffer_bytes: int = STREAM_BUFFER_BYTES
    #: Cap of glibc malloc arenas set by the command line server (None: the number of
    #: cores, at least 2; 0: the C library's default, 8 per core).
    malloc_arenas: int | None = None
    #: Seconds running streams get to finish after SIGTERM / SIGINT.
    grace_period: float = 10.0
    #: Locations advertised in endpoints (a fleet sharing one store); empty: this server.
    locations: list[str] = field(default_factory=list)
    #: Emit one JSON object per log line.
    log_json: bool = False
    #: Side port of the standard gRPC health service, on ``host`` (0: any; None: off).
    health_port: int | None = None
    #: Side port of the Prometheus metrics, ``GET /metrics`` (0: any; None: off).
    metrics_port: int | None = None
    #: Address the metrics port binds (loopback by default).
    metrics_host: str = DEFAULT_HOST
    #: PEM files of the certificate chain and private key: with both, the server speaks TLS.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: PEM file of the CA that signs client certificates: clients must show one (mutual TLS).
    tls_client_ca: str | None = None
    #: Serve an address other than loopback without authentication (users, tokens or mTLS).
    allow_insecure: bool = False
    #: Users, static tokens and their permissions (the ``[auth]`` table); None: no auth.
    auth: AuthConfig | None = None

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
        if self.put_buffer_bytes < 0:
            raise SettingsError("put_buffer_bytes must be >= 0")
        if self.malloc_arenas is not None and self.malloc_arenas < 0:
            raise SettingsError("malloc_arenas must be >= 0")
        self._validate_side_ports()
        for name in self.collections:
            try:
                check_collection_name(name)
            except InvalidNameError as exc:
                raise SettingsError(f"[collections]: {exc}") from None
        self._validate_security()
        return self

    def _validate_side_ports(self) -> None:
        for name in ("health_port", "metrics_port"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 65536:
                raise SettingsError(f"invalid {name} {value!r}")
        if not isinstance(self.metrics_host, str) or not self.metrics_host.strip("[]"):
            raise SettingsError(f"invalid metrics_host {self.metrics_host!r}")

    def _validate_security(self) -> None:
        if not isinstance(self.allow_insecure, bool):
            raise SettingsError("allow_insecure must be true or false")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("TLS needs both tls_cert and tls_key")
        if self.tls_client_ca and not self.tls_cert:
            raise SettingsError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise SettingsError(f"{name}: no such file {path}")
        if self.allow_insecure or self.authenticated or is_loopback(self.host):
            return
        raise SettingsError(
            f"refusing to serve {self.host!r} (not a loopback address) without authentication: "
            "configure [auth] users or tokens, or mutual TLS (tls_client_ca), "
            "or pass --allow-insecure"
        )

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return bool(self.tls_cert and self.tls_key)

    @property
    def authenticated(self) -> bool:
        """Whether every caller proves who it is (credentials or a client certificate)."""
        return bool(self.auth is not None and self.auth.enabled) or bool(
            self.tls and self.tls_client_ca
        )

    @property
    def location(self) -> str:
        """The gRPC location this server binds to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'grpc+tls' if self.tls else 'grpc'}://{host}:{self.port}"

    def tls_options(self) -> dict[str, Any]:
        """Return the TLS arguments of ``FlightServerBase`` (certificates read now)."""
        if not self.tls:
            return {}
        try:
            pair = (Path(str(self.tls_cert)).read_bytes(), Path(str(self.tls_key)).read_bytes())
            options: dict[str, Any] = {"tls_certificates": [pair]}
            if self.tls_client_ca:
                options["verify_client"] = True
                options["root_certificates"] = Path(self.tls_client_ca).read_bytes()
        except OSError as exc:
            raise SettingsError(f"cannot read TLS files: {exc}") from None
        return options


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names loopback addresses only (resolved, never bound)."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if not name:
        return False  # every interface
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return False
    try:
        return bool(addresses) and all(
            ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
        )
    except ValueError:
        return False


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

    [auth.users.alice]          # see zcollection_server.auth
    password = "scrypt$..."
    permissions = { "*" = "read" }
    ```
    """
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config {path}: {exc}") from exc
    settings = base or ServerSettings()
    server: dict[str, Any] = doc.get("server", {})
    known = set(ServerSettings.__dataclass_fields__) - {"collections", "auth"}
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
    if "auth" in doc:
        try:
            settings.auth = parse_auth_config(doc["auth"])
        except AuthConfigError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    return settings
