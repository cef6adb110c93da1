"""Fixtures of the client tests: real Flight servers on 127.0.0.1 port 0 over real stores (local
disk and memory), a server middleware and server subclass that record the calls a server
receives (method, gRPC peer), and one dask ``LocalCluster`` of worker processes per module.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
from zcollection_server import ServerSettings, ZCollectionFlightServer


class CallLog(flight.ServerMiddlewareFactory):
    """A server middleware recording every call a server receives.

    ``hold_do_get(n)`` makes the first ``n`` DoGet calls wait for each other at a barrier (a
    client reading sequentially never gets past it: proof of concurrent calls, without timing).
    ``delay[method] = seconds`` makes calls of ``method`` (e.g. ``"GET_FLIGHT_INFO"``) slow.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.methods: list[str] = []
        #: (method, gRPC peer) of the calls the server's handlers saw.
        self.peers: list[tuple[str, str]] = []
        self.delay: dict[str, float] = {}
        self._barrier: threading.Barrier | None = None
        self._held = 0

    def hold_do_get(self, parties: int, timeout: float = 20.0) -> None:
        """Make the next ``parties`` DoGet calls wait until all of them have started."""
        with self.lock:
            self._barrier = threading.Barrier(parties, timeout=timeout)
            self._held = parties

    def start_call(self, info: Any, headers: Any) -> None:
        name = info.method.name
        with self.lock:
            self.methods.append(name)
            barrier = None
            if name == "DO_GET" and self._barrier is not None and self._held > 0:
                self._held -= 1
                barrier = self._barrier
        if barrier is not None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                raise flight.FlightInternalError("DoGet calls did not overlap") from None
        if name in self.delay:
            time.sleep(self.delay[name])
        return None

    def count(self, method: str) -> int:
        """Return how many calls of ``method`` (``"DO_GET"``, ``"DO_PUT"``, ...) were received."""
        with self.lock:
            return Counter(self.methods)[method]

    def total(self) -> int:
        """Return how many calls were received."""
        with self.lock:
            return len(self.methods)

    def peers_of(self, *methods: str) -> set[str]:
        """Return the distinct gRPC peers (client connections) of calls of ``methods``."""
        with self.lock:
            return {peer for method, peer in self.peers if not methods or method in methods}


class RecordingServer(ZCollectionFlightServer):
    """The real server, noting the gRPC peer (one per client connection) of each call."""

    def __init__(self, settings: ServerSettings, log: CallLog) -> None:
        super().__init__(settings, middleware={"log": log})
        self.log = log

    def _note(self, method: str, context: flight.ServerCallContext) -> None:
        with self.log.lock:
            self.log.peers.append((method, context.peer()))

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        self._note("GET_FLIGHT_INFO", context)
        return super().get_flight_info(context, descriptor)

    def do_get(self, context: Any, ticket: Any) -> Any:
        self._note("DO_GET", context)
        return super().do_get(context, ticket)

    def do_put(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        self._note("DO_PUT", context)
        super().do_put(context, descriptor, reader, writer)

    def do_action(self, context: Any, action: Any) -> Any:
        self._note("DO_ACTION", context)
        return super().do_action(context, action)


@dataclass
class Served:
    """A server running in this process over ``root`` (a directory or a memory:// URL)."""

    root: str
    settings: ServerSettings
    log: CallLog = field(default_factory=CallLog)
    server: RecordingServer | None = None
    port: int = 0

    @property
    def uri(self) -> str:
        """``grpc://127.0.0.1:<port>``."""
        return f"grpc://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The ``grpc://`` URL of collection ``name``."""
        return f"{self.uri}/{name}"

    def store_url(self, name: str) -> str:
        """The URL of the store the server keeps collection ``name`` in."""
        if "://" in self.root:
            return f"{self.root}/{name}"
        return str(Path(self.root) / name)

    def start(self) -> Served:
        """Start (or restart, on the same port) the server."""
        assert self.server is None
        self.settings.port = self.port
        self.server = RecordingServer(self.settings, self.log)
        self.port = self.server.port
        return self

    def stop(self) -> None:
        """Shut the server down (the port is kept for a restart)."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None


class _Servers:
    """Starts servers over fresh roots under ``folder``; stops them all at ``close()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[Served] = []

    def __call__(self, kind: str = "local", **settings: Any) -> Served:
        if kind == "memory":
            root = f"memory://client-tests-{uuid.uuid4().hex[:8]}"
        else:
            path = self.folder / f"served-{len(self.running)}"
            path.mkdir()
            root = str(path)
        served = Served(root, ServerSettings(host="127.0.0.1", port=0, root=root, **settings))
        self.running.append(served)
        return served.start()

    def close(self) -> None:
        for served in self.running:
            served.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Factory: ``start_server(kind="local" | "memory", **settings)``; stopped at teardown."""
    servers = _Servers(tmp_path)
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def start_module_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Served]]:
    """``start_server`` for fixtures shared by the tests of a module (read-only tests)."""
    servers = _Servers(tmp_path_factory.mktemp("client-module"))
    yield servers
    servers.close()


@pytest.fixture
def served(start_server: Callable[..., Served]) -> Served:
    """A server over a fresh directory."""
    return start_server("local")


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes and a Client not set as the default scheduler."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client
