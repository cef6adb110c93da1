"""Side ports of a server: the standard gRPC health service and the Prometheus metrics.

- ``health_port``: a small ``grpcio`` server offering ``grpc.health.v1.Health`` (``Check`` and
  ``Watch``) on the Flight server's host. The overall service (``""``) and
  ``arrow.flight.protocol.FlightService`` are SERVING while the Flight server serves, and
  NOT_SERVING from the moment it starts draining (SIGTERM / SIGINT) until it stops.
- ``metrics_port``: ``GET /metrics`` in the Prometheus text format on ``metrics_host``
  (loopback by default), see ``metrics``.

Both are off by default; ``0`` picks a free port (read it back from ``SidePorts``).
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .metrics import MetricsServer

_log = logging.getLogger("zcollection_server")

#: Services whose status the health service reports.
SERVICES = ("", "arrow.flight.protocol.FlightService")


class HealthServer:
    """``grpc.health.v1.Health`` on ``host:port`` (0: any free port)."""

    def __init__(self, host: str, port: int) -> None:
        self._servicer = health.HealthServicer(experimental_non_blocking=True)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="zcollection-health")
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, self._server)
        name = host.strip("[]")
        address = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot serve gRPC health on {address}: {exc}") from None
        if not bound:
            raise OSError(f"cannot serve gRPC health on {address}")
        #: The bound port.
        self.port: int = bound
        self.set_serving(True)
        self._server.start()
        self._closed = False

    def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for every service (watchers are told at once)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in SERVICES:
            self._servicer.set(service, status)

    def close(self, grace: float = 0.5) -> None:
        """Report NOT_SERVING for good, then stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._servicer.enter_graceful_shutdown()
        self._server.stop(grace).wait(grace + 5)


class SidePorts:
    """The side servers a ``ServerSettings`` asks for (none by default)."""

    def __init__(
        self, host: str, health_port: int | None, metrics_host: str, metrics_port: int | None
    ) -> None:
        self.health: HealthServer | None = None
        self.metrics: MetricsServer | None = None
        try:
            if health_port is not None:
                self.health = HealthServer(host, health_port)
                _log.info("gRPC health service on %s:%d", host, self.health.port)
            if metrics_port is not None:
                self.metrics = MetricsServer(metrics_host, metrics_port)
                _log.info("metrics on http://%s:%d/metrics", metrics_host, self.metrics.port)
        except BaseException:
            self.close()
            raise

    @property
    def health_port(self) -> int | None:
        """The bound port of the health service (None: off)."""
        return self.health.port if self.health is not None else None

    @property
    def metrics_port(self) -> int | None:
        """The bound port of ``/metrics`` (None: off)."""
        return self.metrics.port if self.metrics is not None else None

    def set_serving(self, serving: bool) -> None:
        """Tell the health service whether the Flight server takes calls."""
        if self.health is not None:
            self.health.set_serving(serving)

    def close(self) -> None:
        """Stop the side servers (idempotent)."""
        if self.health is not None:
            self.health.close()
        if self.metrics is not None:
            self.metrics.close()
