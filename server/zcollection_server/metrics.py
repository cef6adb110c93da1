"""Prometheus metrics of the server, and the side HTTP port that exposes them.

One registry per process (``REGISTRY``), fed from two places only: ``CallRecord.finish()``
(every call ends there: method, collection, status, rows, bytes, duration) and the in-flight
counter of ``ZCollectionFlightServer._begin`` / ``_end``. The text exposition format
(version 0.0.4) is written here; no client library is needed.

Collection names are user input: the first ``MAX_COLLECTIONS`` distinct names get their own
label, later ones are aggregated under ``collection="(other)"`` (a value no valid collection
name can take). Calls that name no collection have ``collection=""``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import AF_INET6
from typing import Any, ClassVar
from urllib.parse import urlsplit

_log = logging.getLogger("zcollection_server")

#: Content type of the Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the call latency histogram buckets (then +Inf).
BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
#: Distinct collection label values kept before aggregating under ``OTHER``.
MAX_COLLECTIONS = 1000
#: Label value of the collections beyond ``MAX_COLLECTIONS`` (never a valid name).
OTHER = "(other)"
#: Statuses that are not errors.
NOT_ERRORS = frozenset({"ok", "cancelled"})
PREFIX = "zcollection_server_"

_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class Metrics:
    """Counters, histograms and a gauge of the calls of this process (thread-safe)."""

    def __init__(self, max_collections: int = MAX_COLLECTIONS) -> None:
        self.max_collections = max_collections
        self._lock = threading.Lock()
        self._collections: set[str] = set()
        self._calls: dict[tuple[str, str], int] = {}
        self._errors: dict[tuple[str, str, str], int] = {}
        self._cancelled: dict[tuple[str, str], int] = {}
        self._rows: dict[tuple[str, str], int] = {}
        self._bytes: dict[tuple[str, str], int] = {}
        #: method -> (bucket counts (not cumulative, +Inf last), sum of seconds)
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        self._inflight = 0

    # -- feeding ------------------------------------------------------------------------------
    def observe_call(
        self,
        *,
        method: str,
        collection: str | None,
        status: str,
        rows: int,
        nbytes: int,
        seconds: float,
    ) -> None:
        """Count one finished call."""
        with self._lock:
            label = self._collection_label(collection)
            key = (method, label)
            self._calls[key] = self._calls.get(key, 0) + 1
            self._rows[key] = self._rows.get(key, 0) + max(int(rows), 0)
            self._bytes[key] = self._bytes.get(key, 0) + max(int(nbytes), 0)
            if status == "cancelled":
                self._cancelled[key] = self._cancelled.get(key, 0) + 1
            elif status not in NOT_ERRORS:
                code = status if _CODE.fullmatch(status) else "error"
                error_key = (method, label, code)
                self._errors[error_key] = self._errors.get(error_key, 0) + 1
            counts, total = self._latency.setdefault(method, ([0] * (len(BUCKETS) + 1), [0.0]))
            counts[_bucket(seconds)] += 1
            total[0] += max(seconds, 0.0)

    def add_inflight(self, delta: int) -> None:
        """Move the in-flight gauge (a call began: +1; it ended: -1)."""
        with self._lock:
            self._inflight += delta

    @property
    def inflight(self) -> int:
        """Calls and streams running now."""
        with self._lock:
            return self._inflight

    def _collection_label(self, collection: str | None) -> str:
        if not collection:
            return ""
        if collection in self._collections:
            return collection
        if len(self._collections) >= self.max_collections:
            return OTHER
        self._collections.add(collection)
        return collection

    # -- exposition ---------------------------------------------------------------------------
    def render(self) -> str:
        """Return every metric in the Prometheus text format (version 0.0.4)."""
        with self._lock:
            calls = dict(self._calls)
            errors = dict(self._errors)
            cancelled = dict(self._cancelled)
            rows = dict(self._rows)
            nbytes = dict(self._bytes)
            latency = {m: (list(c), s[0]) for m, (c, s) in self._latency.items()}
            inflight = self._inflight
        lines: list[str] = []
        pair = ("method", "collection")
        counters: list[tuple[str, str, tuple[str, ...], dict[Any, int]]] = [
            ("calls_total", "Calls that ended, by Flight method and collection.", pair, calls),
            (
                "errors_total",
                "Calls that failed, by method, collection and error code.",
                (*pair, "code"),
                errors,
            ),
            ("cancelled_total", "Streams the client abandoned.", pair, cancelled),
            ("rows_total", "Rows streamed or received (items, for discovery calls).", pair, rows),
            ("bytes_total", "Bytes of the record batches streamed or received.", pair, nbytes),
        ]
        for name, help_text, names, values in counters:
            _family(lines, name, "counter", help_text)
            for key, value in sorted(values.items()):
                lines.append(_sample(name, zip(names, key, strict=True), value))
        name = "call_duration_seconds"
        _family(lines, name, "histogram", "Duration of the calls, streams included, by method.")
        for method in sorted(latency):
            counts, total = latency[method]
            cumulative = 0
            for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                cumulative += count
                labels = (("method", method), ("le", _number(bound)))
                lines.append(_sample(f"{name}_bucket", labels, cumulative))
            lines.append(_sample(f"{name}_sum", (("method", method),), total))
            lines.append(_sample(f"{name}_count", (("method", method),), cumulative))
        _family(lines, "inflight_calls", "gauge", "Calls and streams running now.")
        lines.append(_sample("inflight_calls", (), inflight))
        return "\n".join(lines) + "\n"


#: The registry of this process.
REGISTRY = Metrics()


def _bucket(seconds: float) -> int:
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS)


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {PREFIX}{name} {help_text}")
    lines.append(f"# TYPE {PREFIX}{name} {kind}")


def _sample(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    series = f"{PREFIX}{name}{{{text}}}" if text else f"{PREFIX}{name}"
    return f"{series} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# -- the side HTTP port --------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    registry: ClassVar[Metrics] = REGISTRY
    server_version = "zcollection-server-metrics"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        if urlsplit(self.path).path != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        payload = self.registry.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("metrics: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = AF_INET6


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (0: any free port), served by a daemon thread."""

    def __init__(self, host: str, port: int, registry: Metrics = REGISTRY) -> None:
        handler = type("Handler", (_Handler,), {"registry": registry})
        name = host.strip("[]")
        cls = _Server6 if _is_ipv6(name) else _Server
        try:
            self._httpd = cls((name, port), handler)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        #: The bound port.
        self.port: int = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="zcollection-server-metrics",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).version == 6
    except ValueError:
        return False
