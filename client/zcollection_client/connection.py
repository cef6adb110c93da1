"""connect(): a pool of Flight clients to one server, with retries, timeouts and actions."""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow.flight as flight
import zcollection as zc
from google.protobuf.message import Message
from zcollection_proto import (
    ACTIONS,
    CreateCollection,
    DeleteCollection,
    Describe,
    Health,
    HealthResult,
    ListCollections,
    ServerInfo,
    decode_message,
    encode_message,
)

from .errors import STATUS_ERRORS, ServerUnavailableError, from_flight_error

SCHEMES = ("grpc", "grpc+tcp", "grpc+tls")


@dataclass(frozen=True)
class ClientOptions:
    """How the client talks to the server."""

    #: Seconds before a call fails (None: no limit).
    timeout: float | None = 60.0
    #: Attempts of a read that fails with UNAVAILABLE (with exponential backoff).
    retries: int = 4
    #: First backoff delay in seconds (doubled each attempt, with jitter).
    backoff: float = 0.1
    #: Endpoints read at the same time by ``query`` (size of the connection pool).
    parallelism: int = 4


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``grpc://host:port/name`` into (``grpc://host:port``, ``name``)."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise zc.InvalidURLError(f"expected a {', '.join(s + '://' for s in SCHEMES)} URI: {uri!r}")
    try:
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise zc.InvalidURLError(f"the URI needs a host and a port: {uri!r}")
    scheme = "grpc+tls" if parts.scheme == "grpc+tls" else "grpc+tcp"
    return f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}", parts.path.strip("/")


class Connection:
    """A connection to a zcollection Flight server (a bounded pool of Flight clients)."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_root_certs: bytes | None = None,
        cert_chain: bytes | None = None,
        private_key: bytes | None = None,
        override_hostname: str | None = None,
        disable_server_verification: bool = False,
        options: ClientOptions | None = None,
    ) -> None:
        self.location, _ = parse_uri(uri)
        self.options = options or ClientOptions()
        self._client_kwargs: dict[str, Any] = {}
        if tls_root_certs is not None:
            self._client_kwargs["tls_root_certs"] = tls_root_certs
        if cert_chain is not None:
            self._client_kwargs["cert_chain"] = cert_chain
        if private_key is not None:
            self._client_kwargs["private_key"] = private_key
        if override_hostname is not None:
            self._client_kwargs["override_hostname"] = override_hostname
        if disable_server_verification:
            self._client_kwargs["disable_server_verification"] = True
        self._pool: queue.LifoQueue[flight.FlightClient] = queue.LifoQueue()
        #: At most ``parallelism`` clients are borrowed (hence open) at a time, whatever the
        #: number of threads using this connection.
        self._slots = threading.BoundedSemaphore(max(1, self.options.parallelism))
        self._created = 0
        self._lock = threading.Lock()
        self._closed = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._uri_kwargs: dict[str, Any] = {
            "tls_root_certs": tls_root_certs,
            "cert_chain": cert_chain,
            "private_key": private_key,
            "override_hostname": override_hostname,
            "disable_server_verification": disable_server_verification,
            "options": self.options,
        }
        self._peers: dict[str, Connection] = {}
        if token is not None:
            self._headers.append((b"authorization", f"Bearer {token}".encode()))
        elif username is not None:
            client = self._new_client()
            try:
                pair = client.authenticate_basic_token(username, password or "")
            except (flight.FlightError, *STATUS_ERRORS) as exc:
                raise from_flight_error(exc) from None
            self._headers.append(pair)
            self._pool.put(client)

    # -- pool -----------------------------------------------------------------------------
    def _new_client(self) -> flight.FlightClient:
        with self._lock:
            self._created += 1
        return flight.FlightClient(self.location, **self._client_kwargs)

    @contextmanager
    def client(self) -> Iterator[flight.FlightClient]:
        """Borrow a Flight client from the pool (created on demand, reused afterwards).

        At most ``options.parallelism`` clients are lent at a time (others wait). A client
        whose call failed with UNAVAILABLE is closed rather than pooled: its channel would
        wait out gRPC's reconnect backoff, failing fast for a while after the server is back.
        """
        if self._closed:
            raise zc.StoreError("the connection is closed")
        self._slots.acquire()
        try:
            try:
                client = self._pool.get_nowait()
            except queue.Empty:
                client = self._new_client()
            broken = False
            try:
                yield client
            except flight.FlightUnavailableError:
                broken = True
                raise
            finally:
                if self._closed or broken:
                    client.close()
                else:
                    self._pool.put(client)
        finally:
            self._slots.release()

    def call_options(self, timeout: float | None = None) -> flight.FlightCallOptions:
        """Options of one call: timeout and authorization headers."""
        return flight.FlightCallOptions(
            timeout=timeout if timeout is not None else self.options.timeout,
            headers=self._headers,
        )

    def call[T](
        self,
        fn: Callable[[flight.FlightClient, flight.FlightCallOptions], T],
        *,
        retry: bool = True,
    ) -> T:
        """Run ``fn(client, options)``; retry on UNAVAILABLE; raise engine errors."""
        attempts = self.options.retries if retry else 1
        delay = self.options.backoff
        for attempt in range(max(1, attempts)):
            try:
                with self.client() as client:
                    return fn(client, self.call_options())
            except flight.FlightUnavailableError as exc:
                error = from_flight_error(exc)
                if attempt + 1 >= attempts or not isinstance(error, ServerUnavailableError):
                    raise error from None
                time.sleep(delay * (1 + random.random()))
                delay *= 2
            except (flight.FlightError, *STATUS_ERRORS) as exc:
                raise from_flight_error(exc) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every pooled client."""
        self._closed = True
        for peer in self._peers.values():
            peer.close()
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<zcollection_client.Connection {self.location}>"

    def for_location(self, location: str | None) -> Connection:
        """Return the connection to another server of the fleet (same credentials)."""
        if not location or location == self.location:
            return self
        with self._lock:
            peer = self._peers.get(location)
            if peer is None:
                peer = Connection(location, **self._uri_kwargs)
                peer._headers = list(self._headers)
                self._peers[location] = peer
            return peer

    @property
    def fetch_spec(self) -> tuple[str, dict[str, Any], list[tuple[bytes, bytes]], float | None]:
        """What a worker process needs to open its own client: location, TLS, headers."""
        return self.location, dict(self._client_kwargs), list(self._headers), self.options.timeout

    # -- actions --------------------------------------------------------------------------
    def action(self, verb: str, message: Message, *, retry: bool = False) -> Any:
        """Run action ``zcollection.v1.<verb>`` and return its decoded result message."""
        name = "zcollection.v1." + verb
        spec = ACTIONS[name]
        body = encode_message(message)

        def run(client: flight.FlightClient, options: flight.FlightCallOptions) -> bytes:
            results = list(client.do_action(flight.Action(name, body), options))
            return results[0].body.to_pybytes() if results else b""

        return decode_message(self.call(run, retry=retry), spec.result)

    def list_collections(self) -> list[str]:
        """Return the names of the collections the server serves."""
        return list(self.action("list_collections", ListCollections(), retry=True).collections)

    def describe(self, name: str) -> Any:
        """Return the CollectionInfo of collection ``name``."""
        return self.action("describe", Describe(collection=name), retry=True).info

    def server_info(self) -> dict[str, Any]:
        """Return the server's version, protocol, limits and locations."""
        info = self.action("server_info", ServerInfo(), retry=True)
        return {
            "version": info.version,
            "protocol": info.protocol,
            "format_version": info.format_version,
            "max_batch_bytes": info.max_batch_bytes,
            "merge_strategies": list(info.merge_strategies),
            "locations": list(info.locations),
        }

    def health(self) -> bool:
        """Return whether the server answers that it is serving."""
        result = self.action("health", Health(), retry=True)
        return bool(result.status == HealthResult.SERVING)

    def open_collection(self, name: str, *, mode: str = "r") -> Any:
        """Open collection ``name`` in ``r`` or ``rw`` mode."""
        from .collection import RemoteCollection

        if mode not in ("r", "rw"):
            raise ValueError(f"mode must be 'r' (read-only) or 'rw' (read-write), not {mode!r}")
        return RemoteCollection(self, name, self.describe(name), read_only=mode == "r")

    def create_collection(
        self,
        name: str,
        *,
        schema: zc.DatasetSchema,
        axis: str,
        partitioning: Any,
        catalog_enabled: bool = False,
        overwrite: bool = False,
    ) -> Any:
        """Create collection ``name`` on the server and return it (writable)."""
        from .collection import RemoteCollection

        message = CreateCollection(
            collection=name,
            schema=json.dumps(schema.to_json()),
            axis=axis,
            partitioning=json.dumps(partitioning.to_json()),
            catalog_enabled=catalog_enabled,
            overwrite=overwrite,
        )
        info = self.action("create_collection", message).info
        return RemoteCollection(self, name, info, read_only=False)

    # -- views ----------------------------------------------------------------------------
    def list_views(self, collection: str) -> list[str]:
        """Return the views of ``collection``."""
        from zcollection_proto import ListViews

        return list(self.action("list_views", ListViews(collection=collection), retry=True).views)

    def open_view(self, collection: str, view: str, *, read_only: bool = False) -> Any:
        """Open view ``view`` of ``collection``."""
        from zcollection_proto import DescribeView

        from .view import RemoteView

        base = self.open_collection(collection, mode="r" if read_only else "rw")
        info = self.action("describe_view", DescribeView(collection=collection, view=view)).info
        return RemoteView(base, view, info, read_only=read_only)

    def create_view(
        self,
        collection: str,
        view: str,
        *,
        variables: Any,
        overwrite: bool = False,
    ) -> Any:
        """Create view ``view`` of ``collection`` adding ``variables`` (VariableSchema)."""
        from zcollection_proto import CreateView

        from .view import RemoteView

        message = CreateView(
            collection=collection,
            view=view,
            variables=[json.dumps(v.to_json()) for v in variables],
            overwrite=overwrite,
        )
        info = self.action("create_view", message).info
        return RemoteView(self.open_collection(collection, mode="rw"), view, info, read_only=False)

    def delete_collection(self, name: str) -> None:
        """Delete collection ``name`` from the server."""
        self.action("delete_collection", DeleteCollection(collection=name))


def connect(uri: str, **kwargs: Any) -> Connection:
    """Connect to a zcollection Flight server at ``grpc://``, ``grpc+tcp://`` or ``grpc+tls://``.

    Keyword arguments: ``token`` (bearer), ``username``/``password`` (basic, exchanged for a
    token), ``tls_root_certs``, ``cert_chain``/``private_key`` (mutual TLS),
    ``override_hostname``, ``disable_server_verification``, ``options`` (ClientOptions:
    timeout, retries, backoff, parallelism).
    """
    return Connection(uri, **kwargs)
