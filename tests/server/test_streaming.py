"""Streams: a client that goes away stops the server's work, read-ahead is bounded, and each
call leaves one structured log line."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from zcollection_server import sources

PARTITIONS = 20
DELAY = 0.03


class SlowLoads:
    """Wraps CollectionSource.load_async: slow, counted, with the peak of concurrent loads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self.finished = 0
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()
        original = sources.CollectionSource.load_async
        outer = self

        async def load_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            with outer.lock:
                outer.started += 1
                outer.running += 1
                outer.peak = max(outer.peak, outer.running)
            try:
                await asyncio.sleep(DELAY)
                return await original(self, *args, **kwargs)
            finally:
                with outer.lock:
                    outer.running -= 1
                    outer.finished += 1

        monkeypatch.setattr(sources.CollectionSource, "load_async", load_async)


@pytest.fixture(scope="module")
def many_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection of PARTITIONS small partitions."""
    root = tmp_path_factory.mktemp("many")
    schema = (
        zc.Schema()
        .with_dimension("obs", chunks=16)
        .with_variable("num", dtype="int64", dimensions=("obs",))
        .with_variable("value", dtype="float64", dimensions=("obs",))
        .build()
    )
    collection = zc.create_collection(
        str(root / "many"),
        schema=schema,
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
    )
    import numpy

    num = numpy.repeat(numpy.arange(PARTITIONS, dtype="int64"), 100)
    known = schema.all_variables()
    collection.insert(
        zc.Dataset(
            schema,
            {
                "num": zc.Variable(known["/num"], num),
                "value": zc.Variable(known["/value"], num.astype("float64")),
            },
        )
    )
    return root


def _call_lines(
    caplog: pytest.LogCaptureFixture, method: str | None = None
) -> list[dict[str, str]]:
    lines = []
    for record in caplog.records:
        if record.name != "zcollection_server.calls":
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", record.getMessage()))
        if method is None or fields.get("method") == method:
            lines.append(fields)
    return lines


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_cancelled_stream_stops_the_server_work(
    start_server: Any,
    many_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="zcollection_server")
    loads = SlowLoads(monkeypatch)
    running = start_server(many_root, read_ahead=1, max_batch_bytes=1024)
    reader = running.client.do_get(flight.Ticket(zp.encode_command(zp.Query(collection="many"))))
    chunk = reader.read_chunk()
    assert zp.BatchMetadata.FromString(chunk.app_metadata.to_pybytes()).partition == "num=0"
    reader.cancel()
    assert _wait_for(lambda: _call_lines(caplog, "do_get"))
    (line,) = _call_lines(caplog, "do_get")
    assert line["status"] == "cancelled"
    assert line["collection"] == "many"
    time.sleep(5 * DELAY)
    # the reads stopped well before the end: streaming all would take PARTITIONS * DELAY
    assert loads.started < PARTITIONS // 2, loads.started
    assert loads.running == 0
    # and the server keeps serving
    info = running.client.get_flight_info(flight.FlightDescriptor.for_path("many"))
    assert len(info.endpoints) == PARTITIONS


def test_read_ahead_is_bounded(
    h: Any, start_server: Any, many_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = SlowLoads(monkeypatch)
    running = start_server(many_root, read_ahead=2)
    received = h.read(running.client, zp.encode_command(zp.Query(collection="many")))
    assert received.table.num_rows == PARTITIONS * 100
    assert loads.started == PARTITIONS
    assert 2 <= loads.peak <= 3  # the partition being sent and read_ahead more

    loads.peak = 0
    running = start_server(many_root, read_ahead=0)
    query = zp.Query(collection="many", filters="num < 6")
    received = h.read(running.client, zp.encode_command(query))
    assert received.table.num_rows == 6 * 100
    assert loads.peak == 1


def test_a_stream_counts_as_running_until_it_ends(
    start_server: Any, many_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the CLI waits for at shutdown: a stream is a running call until its last batch."""
    SlowLoads(monkeypatch)
    running = start_server(many_root, read_ahead=0)
    reader = running.client.do_get(flight.Ticket(zp.encode_command(zp.Query(collection="many"))))
    reader.read_chunk()
    assert running.server.wait_idle(0.1) is False
    running.server.draining = True
    with pytest.raises(flight.FlightUnavailableError, match="shutting down"):
        running.client.get_flight_info(flight.FlightDescriptor.for_path("many"))
    table = reader.read_all()  # the running stream finishes
    assert table.num_rows == PARTITIONS * 100 - 100
    assert running.server.wait_idle(2.0) is True


@pytest.mark.parametrize("outcome", ["ok", "error"])
def test_one_structured_log_line_per_call(
    h: Any,
    read_server: Any,
    caplog: pytest.LogCaptureFixture,
    outcome: str,
) -> None:
    caplog.set_level(logging.INFO, logger="zcollection_server")
    client = read_server.client
    name = "alti" if outcome == "ok" else "nope"
    calls: list[tuple[str, Any]] = [
        ("get_flight_info", lambda: client.get_flight_info(flight.FlightDescriptor.for_path(name))),
        ("get_schema", lambda: client.get_schema(flight.FlightDescriptor.for_path(name))),
        ("do_get", lambda: h.read(client, zp.encode_command(zp.Query(collection=name)))),
        (
            "do_action",
            lambda: h.action(client, "describe", zp.Describe(collection=name), as_json=True),
        ),
    ]
    if outcome == "ok":
        calls.append(("list_flights", lambda: list(client.list_flights())))
    for method, call in calls:
        caplog.clear()
        if outcome == "ok":
            call()
        else:
            with pytest.raises(Exception):  # noqa: B017 - get_schema raises ArrowException
                call()
        assert _wait_for(lambda: _call_lines(caplog))
        time.sleep(0.05)
        lines = _call_lines(caplog)
        assert len(lines) == 1, lines
        (line,) = lines
        assert line["method"] == method
        assert {"rows", "bytes", "duration_ms", "status", "request_id"} <= set(line)
        assert float(line["duration_ms"]) >= 0
        assert re.fullmatch(r"[0-9a-f]{16}", line["request_id"])
        if method != "list_flights":
            assert line["collection"] == name
        if outcome == "ok":
            assert line["status"] == "ok"
            record = next(r for r in caplog.records if r.name == "zcollection_server.calls")
            assert record.levelno == logging.INFO
        else:
            assert line["status"] == "COLLECTION_NOT_FOUND"
        if outcome == "ok" and method == "do_get":
            assert int(line["rows"]) == 91 * 4
            assert int(line["bytes"]) > 91 * 4 * 21 * 0.9
