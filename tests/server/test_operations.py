"""Operations: the standard gRPC health service and the Prometheus metrics on side ports, and
error log lines (text and JSON) that carry the request id the client received."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection_proto as zp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zcollection_server import ServerSettings, ZCollectionFlightServer, calllog, cli, metrics
from zcollection_server import server as server_module
from zcollection_server.settings import SettingsError, load_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
FLIGHT_SERVICE = "arrow.flight.protocol.FlightService"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- helpers -----------------------------------------------------------------------------------
def scrape(port: int) -> tuple[Samples, str]:
    """GET /metrics: the samples and the raw text (checking the content type)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return parse(text), text


def parse(text: str) -> Samples:
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, labels, value = match.groups()
        pairs = frozenset(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in LABEL.findall(labels or "")
        )
        key = (name, pairs)
        assert key not in samples, line
        samples[key] = float(value.replace("+Inf", "inf"))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((f"zcollection_server_{name}", frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def health_stub(port: int) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, health_pb2_grpc.HealthStub(channel)


def check(stub: Any, service: str = "") -> int:
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def corrupt_chunks(folder: Path) -> None:
    """Overwrite the chunks of ``ssh``: reading them is an internal error."""
    for dirpath, _, files in os.walk(folder):
        if f"{os.sep}ssh{os.sep}c" in dirpath + os.sep:
            for name in files:
                Path(dirpath, name).write_bytes(b"not zstd at all" * 8)


@pytest.fixture(scope="module")
def ops_root(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Path:
    """``ops_alti`` (two months) and ``ops_broken`` (its ssh chunks corrupt)."""
    root = tmp_path_factory.mktemp("ops")
    h.make_alti(str(root / "ops_alti"), months=2)
    h.make_alti(str(root / "ops_broken"), months=1)
    corrupt_chunks(root / "ops_broken")
    return root


# -- health ------------------------------------------------------------------------------------
def test_health_is_serving_then_not_serving_once_draining(
    h: Any, start_server: Any, ops_root: Path
) -> None:
    running = start_server(ops_root, health_port=0)
    port = running.server.health_port
    assert isinstance(port, int) and port > 0 and port != running.server.port
    assert running.server.metrics_port is None  # off unless asked for
    channel, stub = health_stub(port)
    try:
        assert check(stub) == SERVING
        assert check(stub, FLIGHT_SERVICE) == SERVING
        with pytest.raises(grpc.RpcError) as caught:
            check(stub, "no.such.Service")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert next(watch).status == SERVING

        running.server.draining = True  # what the command does on SIGTERM / SIGINT
        assert check(stub) == NOT_SERVING
        assert check(stub, FLIGHT_SERVICE) == NOT_SERVING
        assert next(watch).status == NOT_SERVING
        # the health action agrees, and other calls are refused
        result = h.action(running.client, "health", as_json=True)
        assert result.status == zp.HealthResult.NOT_SERVING
        with pytest.raises(flight.FlightUnavailableError):
            list(running.client.list_flights())
        watch.cancel()
    finally:
        channel.close()


def test_health_stops_with_the_server(ops_root: Path) -> None:
    server = ZCollectionFlightServer(
        ServerSettings(host="127.0.0.1", port=0, root=str(ops_root), health_port=0)
    )
    channel, stub = health_stub(server.health_port or 0)
    try:
        assert check(stub) == SERVING
        server.shutdown()
        with pytest.raises(grpc.RpcError) as caught:
            check(stub)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()


def test_a_side_port_in_use_is_an_error(ops_root: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for key in ("metrics_port", "health_port"):
            settings = ServerSettings(host="127.0.0.1", port=0, root=str(ops_root), **{key: taken})
            with pytest.raises(OSError, match=str(taken)):
                ZCollectionFlightServer(settings)


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_count_calls_rows_bytes_errors_and_latency(
    h: Any, start_server: Any, ops_root: Path
) -> None:
    running = start_server(ops_root, metrics_port=0)
    port = running.server.metrics_port
    assert isinstance(port, int) and port > 0
    assert running.server.health_port is None
    client = running.client
    before, _ = scrape(port)

    info = client.get_flight_info(flight.FlightDescriptor.for_path("ops_alti"))
    partitions = info.endpoints[:-1]  # the last one: immutable variables
    received = [h.read(client, e.ticket) for e in partitions]
    rows = sum(r.table.num_rows for r in received)
    names = [i.descriptor.path[0].decode() for i in client.list_flights()]
    errors = [
        lambda: client.get_flight_info(flight.FlightDescriptor.for_path("ops_nope")),
        lambda: client.get_flight_info(flight.FlightDescriptor.for_path("ops_nope")),
        lambda: client.do_exchange(flight.FlightDescriptor.for_path("ops_alti"))[1].read_all(),
        lambda: list(client.do_action(flight.Action("zcollection.v1.nope", b""))),
    ]
    for call in errors:
        with pytest.raises(h.SERVER_ERRORS):
            call()

    after, text = scrape(port)
    assert rows == 60 * 4
    assert delta(before, after, "calls_total", method="do_get", collection="ops_alti") == len(
        partitions
    )
    assert delta(before, after, "rows_total", method="do_get", collection="ops_alti") == rows
    sent = delta(before, after, "bytes_total", method="do_get", collection="ops_alti")
    assert sent >= sum(r.table.nbytes for r in received) > 0
    assert delta(before, after, "calls_total", method="get_flight_info", collection="ops_alti")
    assert delta(before, after, "calls_total", method="list_flights", collection="") == 1
    assert delta(before, after, "rows_total", method="list_flights", collection="") == len(names)
    # errors, by method, collection and code; the calls that failed count as calls too
    not_found = {"method": "get_flight_info", "collection": "ops_nope"}
    assert delta(before, after, "errors_total", **not_found, code="COLLECTION_NOT_FOUND") == 2
    assert delta(before, after, "calls_total", **not_found) == 2
    assert delta(before, after, "errors_total", method="do_exchange", collection="",
                 code="UNIMPLEMENTED") == 1  # fmt: skip
    assert delta(before, after, "errors_total", method="do_action", collection="",
                 code="INVALID_REQUEST") == 1  # fmt: skip
    assert not delta(before, after, "errors_total", method="do_get", collection="ops_alti",
                     code="INTERNAL")  # fmt: skip
    # one histogram per method, fixed buckets, cumulative
    for method, calls in [("do_get", len(partitions)), ("get_flight_info", 3)]:
        buckets = [
            (float(dict(labels)["le"].replace("+Inf", "inf")), count)
            for (name, labels), count in after.items()
            if name == "zcollection_server_call_duration_seconds_bucket"
            and dict(labels)["method"] == method
        ]
        bounds = sorted(b for b, _ in buckets)
        assert bounds == [*metrics.BUCKETS, float("inf")]
        counts = [c for _, c in sorted(buckets)]
        assert counts == sorted(counts)  # cumulative
        count = value(after, "call_duration_seconds_count", method=method)
        assert counts[-1] == count
        assert count - value(before, "call_duration_seconds_count", method=method) == calls
        assert value(after, "call_duration_seconds_sum", method=method) > 0
    for family, kind in [
        ("calls_total", "counter"),
        ("errors_total", "counter"),
        ("rows_total", "counter"),
        ("bytes_total", "counter"),
        ("call_duration_seconds", "histogram"),
        ("inflight_calls", "gauge"),
    ]:
        assert f"# TYPE zcollection_server_{family} {kind}\n" in text
        assert f"# HELP zcollection_server_{family} " in text


def test_only_metrics_is_served(start_server: Any, ops_root: Path) -> None:
    running = start_server(ops_root, metrics_port=0)
    for path in ("/", "/metrics/x", "/favicon.ico"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{running.server.metrics_port}{path}")
        assert caught.value.code == 404
    request = urllib.request.Request(
        f"http://127.0.0.1:{running.server.metrics_port}/metrics", method="POST", data=b"x"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 501


def test_the_inflight_gauge_rises_during_a_stream_and_falls_after(
    start_server: Any, ops_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    original = server_module.partition_batches

    def gated(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for i, item in enumerate(original(*args, **kwargs)):
            if i == 1:
                gate.wait(20)  # the stream stays open until the test lets it go
            yield item

    monkeypatch.setattr(server_module, "partition_batches", gated)
    running = start_server(ops_root, metrics_port=0, max_batch_bytes=1024)
    port = running.server.metrics_port

    def inflight() -> float:
        return value(scrape(port)[0], "inflight_calls")

    base = inflight()
    ticket = flight.Ticket(zp.encode_command(zp.Query(collection="ops_alti")))
    reader = running.client.do_get(ticket)
    try:
        first = reader.read_chunk()
        assert wait_for(lambda: inflight() == base + 1), inflight()
        assert metrics.REGISTRY.inflight == base + 1
    finally:
        gate.set()
    rest = reader.read_all()
    assert first.data.num_rows + rest.num_rows == 60 * 4
    assert wait_for(lambda: inflight() == base), inflight()


def test_collection_labels_are_capped() -> None:
    registry = metrics.Metrics(max_collections=2)
    for name in ["a", "b", "c", "d", "a", 'x"\n\\']:
        registry.observe_call(
            method="do_get", collection=name, status="ok", rows=1, nbytes=2, seconds=0.01
        )
    registry.observe_call(
        method="do_get", collection=None, status="INTERNAL", rows=0, nbytes=0, seconds=400.0
    )
    registry.observe_call(
        method="do_get", collection="a", status="not a code!", rows=0, nbytes=0, seconds=0
    )
    registry.observe_call(
        method="do_get", collection="b", status="cancelled", rows=0, nbytes=0, seconds=0
    )
    samples = parse(registry.render())
    labels = {dict(k)["collection"] for n, k in samples if "collection" in dict(k)}
    assert labels == {"a", "b", metrics.OTHER, ""}
    assert value(samples, "calls_total", method="do_get", collection="a") == 3
    assert value(samples, "calls_total", method="do_get", collection=metrics.OTHER) == 3
    assert value(samples, "rows_total", method="do_get", collection=metrics.OTHER) == 3
    assert value(samples, "bytes_total", method="do_get", collection=metrics.OTHER) == 6
    assert value(samples, "errors_total", method="do_get", collection="", code="INTERNAL") == 1
    assert value(samples, "errors_total", method="do_get", collection="a", code="error") == 1
    assert value(samples, "cancelled_total", method="do_get", collection="b") == 1
    assert value(samples, "call_duration_seconds_bucket", method="do_get", le="300.0") == 8
    assert value(samples, "call_duration_seconds_bucket", method="do_get", le="+Inf") == 9
    # label values are escaped
    other = metrics.Metrics()
    other.observe_call(
        method="do_get", collection='x"\n\\', status="ok", rows=0, nbytes=0, seconds=0
    )
    text = other.render()
    assert 'collection="x\\"\\n\\\\"' in text
    assert value(parse(text), "calls_total", method="do_get", collection='x"\n\\') == 1


# -- logs ----------------------------------------------------------------------------------------
@pytest.fixture
def server_logging() -> Iterator[Callable[[bool], None]]:
    """Configure the server's logging like the command does; restored afterwards."""
    logger = logging.getLogger("zcollection_server")
    saved = (logger.handlers[:], logger.level, logger.propagate, calllog.JSON_LOGS)
    yield lambda json_lines: calllog.configure_logging(json_lines=json_lines)
    logger.handlers[:], logger.level, logger.propagate, calllog.JSON_LOGS = (
        saved[0],
        saved[1],
        saved[2],
        saved[3],
    )


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_error_log_lines_carry_the_request_id(
    h: Any,
    start_server: Any,
    ops_root: Path,
    capsys: pytest.CaptureFixture[str],
    server_logging: Callable[[bool], None],
    json_lines: bool,
) -> None:
    server_logging(json_lines)
    running = start_server(ops_root)
    info = running.client.get_flight_info(flight.FlightDescriptor.for_path("ops_broken"))
    with pytest.raises(flight.FlightInternalError) as caught:
        h.read(running.client, info.endpoints[0].ticket)
    internal = h.error_info(caught.value)["request_id"]
    with pytest.raises(pa.ArrowKeyError) as missing:
        running.client.get_flight_info(flight.FlightDescriptor.for_path("ops_nope"))
    not_found = h.error_info(missing.value)["request_id"]
    lines = capsys.readouterr().err.splitlines()

    if json_lines:
        records = [json.loads(line) for line in lines if line.startswith("{")]
        errors = [r for r in records if r["level"] in ("ERROR", "WARNING")]
        assert errors
        for record in errors:
            assert re.fullmatch(r"[0-9a-f]{16}", record.get("request_id", "")), record
        traced = [r for r in errors if r["level"] == "ERROR"]
        assert [r["request_id"] for r in traced] == [internal]
        assert "Traceback" in traced[0]["traceback"]
        calls = {r["request_id"]: r for r in errors if r["logger"] == "zcollection_server.calls"}
        assert calls[internal]["status"] == "INTERNAL"
        assert calls[internal]["method"] == "do_get"
        assert calls[not_found]["status"] == "COLLECTION_NOT_FOUND"
        assert calls[not_found]["collection"] == "ops_nope"
    else:
        errors = [line for line in lines if " ERROR " in line or " WARNING " in line]
        assert errors
        for line in errors:
            assert re.search(r"\brequest_id=[0-9a-f]{16}\b", line), line
        traced = [line for line in errors if " ERROR " in line]
        assert len(traced) == 1 and f"request_id={internal}" in traced[0]
        assert any(
            f"request_id={internal}" in line and "status=INTERNAL" in line for line in errors
        )
        assert any(
            f"request_id={not_found}" in line and "status=COLLECTION_NOT_FOUND" in line
            for line in errors
        )
        assert "Traceback" in "\n".join(lines)  # the traceback follows the error line


def test_the_text_formatter_adds_a_request_id_field(
    capsys: pytest.CaptureFixture[str], server_logging: Callable[[bool], None]
) -> None:
    for json_lines in (False, True):
        server_logging(json_lines)
        logging.getLogger("zcollection_server.x").error(
            "something failed", extra={"request_id": "0123456789abcdef"}
        )
        line = capsys.readouterr().err.strip()
        if json_lines:
            assert json.loads(line)["request_id"] == "0123456789abcdef"
        else:
            assert line.endswith("something failed request_id=0123456789abcdef")


# -- settings and the command --------------------------------------------------------------------
def test_side_ports_from_toml_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        f"[server]\nroot = '{tmp_path}'\nhealth_port = 9000\nmetrics_port = 0\n"
        "metrics_host = '::1'\n"
    )
    settings = load_config(config).validate()
    assert (settings.health_port, settings.metrics_port, settings.metrics_host) == (9000, 0, "::1")
    args = cli._parser().parse_args(
        ["--config", str(config), "--health-port", "0", "--metrics-port", "9464"]
    )
    settings = cli.settings_from_args(args)
    assert (settings.health_port, settings.metrics_port) == (0, 9464)
    defaults = ServerSettings(root=str(tmp_path)).validate()
    assert (defaults.health_port, defaults.metrics_port) == (None, None)
    assert defaults.metrics_host == "127.0.0.1"
    for bad in ({"health_port": 70000}, {"metrics_port": -1}, {"health_port": True}):
        with pytest.raises(SettingsError):
            ServerSettings(root=str(tmp_path), **bad).validate()


def test_the_command_reports_health_and_metrics_and_drains_on_sigterm(
    h: Any, ops_root: Path
) -> None:
    """The real command: side ports, JSON logs with request ids, NOT_SERVING on SIGTERM."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "zcollection_server", "--root", str(ops_root), "--port", "0",
         "--health-port", "0", "--metrics-port", "0", "--log-json", "--grace-period", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    channel = None
    try:
        assert popen.stdout is not None
        head = [popen.stdout.readline().strip() for _ in range(3)]
        ports = [int(line.rsplit(":", 1)[1].split("/")[0]) for line in head]
        assert head[0].startswith("zcollection-server listening on grpc://127.0.0.1:"), head
        assert head[1].startswith("zcollection-server health on 127.0.0.1:"), head
        assert head[2].startswith("zcollection-server metrics on http://127.0.0.1:"), head
        assert head[2].endswith("/metrics")
        flight_port, health_port, metrics_port = ports
        client = flight.connect(f"grpc://127.0.0.1:{flight_port}")
        channel, stub = health_stub(health_port)
        assert check(stub) == SERVING
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=FLIGHT_SERVICE), timeout=30)
        assert next(watch).status == SERVING

        info = client.get_flight_info(flight.FlightDescriptor.for_path("ops_broken"))
        with pytest.raises(flight.FlightInternalError) as caught:
            h.read(client, info.endpoints[0].ticket)
        request_id = h.error_info(caught.value)["request_id"]
        samples, _ = scrape(metrics_port)
        broken = {"method": "do_get", "collection": "ops_broken"}
        assert value(samples, "errors_total", **broken, code="INTERNAL") == 1
        assert value(samples, "calls_total", method="get_flight_info", collection="ops_broken") == 1
        client.close()

        popen.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING
        _, err = popen.communicate(timeout=30)
        assert popen.returncode == 0, err
    finally:
        if channel is not None:
            channel.close()
        if popen.poll() is None:
            popen.kill()
            popen.communicate(timeout=10)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert "Traceback" not in "\n".join(line for line in err.splitlines() if line[:1] != "{")
    traced = [r for r in records if r["level"] == "ERROR"]
    assert [r["request_id"] for r in traced] == [request_id]
    assert "traceback" in traced[0]
    call = [r for r in records if r.get("request_id") == request_id and "status" in r]
    assert [(c["method"], c["status"]) for c in call] == [("do_get", "INTERNAL")]
