"""The ``zcollection-server`` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .allocator import limit_malloc_arenas
from .calllog import configure_logging
from .server import ZCollectionFlightServer
from .settings import DEFAULT_HOST, DEFAULT_PORT, ServerSettings, SettingsError, load_config

_log = logging.getLogger("zcollection_server")

#: Seconds the server waits, after the grace period, for its calls to end before exiting.
SHUTDOWN_TIMEOUT = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcollection-server",
        description="Serve zcollection collections over Arrow Flight. "
        "Also: zcollection-server hash-password | new-token (credentials for [auth]).",
    )
    parser.add_argument("--root", help="serve every collection under this URL or path")
    parser.add_argument("--config", help="TOML file: [server] settings and [collections]")
    parser.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT}; 0 = any)")
    parser.add_argument("--max-batch-bytes", type=int, help="cap of one record batch in bytes")
    parser.add_argument("--read-ahead", type=int, help="partitions read ahead while streaming")
    parser.add_argument(
        "--malloc-arenas",
        type=int,
        help="cap of glibc malloc arenas (default: the number of cores, at least 2; 0: the C "
        "library's default)",
    )
    parser.add_argument(
        "--put-buffer-bytes",
        type=int,
        help="rows of a do_put held before the partitions it has moved past are written",
    )
    parser.add_argument("--grace-period", type=float, help="seconds streams get at shutdown")
    parser.add_argument(
        "--location", action="append", default=None, help="location advertised in endpoints"
    )
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    parser.add_argument(
        "--health-port", type=int, help="side port of the gRPC health service (0 = any)"
    )
    parser.add_argument(
        "--metrics-port", type=int, help="side port of Prometheus /metrics (0 = any)"
    )
    parser.add_argument(
        "--metrics-host", help=f"address of the metrics port (default {DEFAULT_HOST})"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve grpc+tls://")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", help="PEM CA of client certificates: require one (mutual TLS)"
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="serve an address other than loopback without authentication",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Merge the config file and the flags (flags win)."""
    settings = load_config(args.config) if args.config else ServerSettings()
    for flag, attr in (
        ("root", "root"),
        ("host", "host"),
        ("port", "port"),
        ("max_batch_bytes", "max_batch_bytes"),
        ("read_ahead", "read_ahead"),
        ("put_buffer_bytes", "put_buffer_bytes"),
        ("malloc_arenas", "malloc_arenas"),
        ("grace_period", "grace_period"),
        ("location", "locations"),
        ("health_port", "health_port"),
        ("metrics_port", "metrics_port"),
        ("metrics_host", "metrics_host"),
        ("tls_cert", "tls_cert"),
        ("tls_key", "tls_key"),
        ("tls_client_ca", "tls_client_ca"),
    ):
        value = getattr(args, flag)
        if value is not None:
            setattr(settings, attr, value)
    if args.log_json:
        settings.log_json = True
    if args.allow_insecure:
        settings.allow_insecure = True
    return settings.validate()


def serve(settings: ServerSettings, ready: threading.Event | None = None) -> int:
    """Run the server until SIGTERM / SIGINT; return the exit code."""
    server = ZCollectionFlightServer(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _log.info("serving on grpc://%s:%d", settings.host, server.port)
    scheme = "grpc+tls" if settings.tls else "grpc"
    print(f"zcollection-server listening on {scheme}://{settings.host}:{server.port}", flush=True)
    if server.health_port is not None:
        print(f"zcollection-server health on {settings.host}:{server.health_port}", flush=True)
    if server.metrics_port is not None:
        where = f"{settings.metrics_host}:{server.metrics_port}"
        print(f"zcollection-server metrics on http://{where}/metrics", flush=True)
    if ready is not None:
        ready.set()
    while not stop.wait(0.2):
        pass
    _log.info("shutting down: waiting up to %.1f s for running calls", settings.grace_period)
    server.draining = True
    if not server.wait_idle(settings.grace_period):
        _log.warning("grace period over; closing the remaining streams")
        server.closing = True
    # Flight's shutdown waits for every call, and a stream whose client stopped reading
    # never ends: give the calls a moment, then leave without them.
    stopped = threading.Event()

    def shutdown() -> None:
        server.shutdown()
        stopped.set()

    threading.Thread(target=shutdown, name="zcollection-server-shutdown", daemon=True).start()
    if not stopped.wait(SHUTDOWN_TIMEOUT):
        _log.warning("streams blocked on their clients; exiting without them")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    _log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``zcollection-server`` (and of its ``hash-password``, ``new-token``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["hash-password"], ["new-token"]):
        from .auth import main as auth_main

        return auth_main(argv)
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"zcollection-server: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(json_lines=settings.log_json)
    limit_malloc_arenas(
        max(2, os.cpu_count() or 2) if settings.malloc_arenas is None else settings.malloc_arenas
    )
    try:
        return serve(settings)
    except OSError as exc:
        print(f"zcollection-server: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
