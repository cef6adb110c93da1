"""The ``zcollection-server`` command in a subprocess: port 0, reads, SIGTERM / SIGINT with a
grace period, exit codes, and one-line configuration errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from zcollection_server import cli

LISTENING = re.compile(r"^zcollection-server listening on grpc://127\.0\.0\.1:(\d+)$")
GRACE = 3.0


class Process:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "zcollection_server", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().strip()
        match = LISTENING.match(line)
        assert match, (line, self.stop_output())
        self.port = int(match.group(1))
        assert self.port > 0
        self.client = flight.connect(f"grpc://127.0.0.1:{self.port}")

    def stop_output(self) -> str:
        if self.popen.poll() is None:
            self.popen.kill()
        _, err = self.popen.communicate(timeout=10)
        return err

    def terminate(self, sig: int) -> tuple[int, float, str]:
        """Send ``sig``; return the exit code, seconds to exit and stderr."""
        start = time.monotonic()
        self.popen.send_signal(sig)
        try:
            _, err = self.popen.communicate(timeout=GRACE + 20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            _, err = self.popen.communicate()
            return -999, time.monotonic() - start, err
        return self.popen.returncode, time.monotonic() - start, err


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.client.close()
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.communicate(timeout=10)


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection far larger than what gRPC buffers for a client that stops reading."""
    root = tmp_path_factory.mktemp("big")
    schema = (
        zc.Schema()
        .with_dimension("obs", chunks=4096)
        .with_dimension("x", size=1024, chunks=1024)
        .with_variable("num", dtype="int64", dimensions=("obs",))
        .with_variable("value", dtype="float64", dimensions=("obs", "x"))
        .build()
    )
    collection = zc.create_collection(
        str(root / "big"),
        schema=schema,
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
    )
    rows = 8192  # 64 MiB of float64 in 4 partitions
    known = schema.all_variables()
    num = numpy.repeat(numpy.arange(4, dtype="int64"), rows // 4)
    collection.insert(
        zc.Dataset(
            schema,
            {
                "num": zc.Variable(known["/num"], num),
                "value": zc.Variable(known["/value"], numpy.zeros((rows, 1024))),
            },
        )
    )
    return root


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_read_and_stop(h: Any, tmp_path: Path, processes: list[Process], sig: int) -> None:
    root = tmp_path / "root"
    h.make_alti(str(root / "alti"), months=2)
    process = Process("--root", str(root), "--port", "0", "--grace-period", str(GRACE))
    processes.append(process)
    client = process.client
    assert [i.descriptor.path for i in client.list_flights()] == [[b"alti"]]
    info = client.get_flight_info(flight.FlightDescriptor.for_path("alti"))
    tables = [h.read(client, e.ticket).table for e in info.endpoints[:-1]]
    got = zp.batches_to_dataset(tables[0].schema, [b for t in tables for b in t.to_batches()])
    expected = zc.open_collection(str(root / "alti")).query(
        variables=["time", "ssh", "data_01/flag"]
    )
    h.assert_same_bits(expected, got)

    # A stream running when the signal comes finishes within the grace period.
    ticket = flight.Ticket(zp.encode_command(zp.Query(collection="alti", max_batch_bytes=1024)))
    reader = client.do_get(ticket)
    first = reader.read_chunk()
    start = time.monotonic()
    process.popen.send_signal(sig)
    time.sleep(0.3)
    rest = reader.read_all()
    assert first.data.num_rows + rest.num_rows == 60 * 4
    _, err = process.popen.communicate(timeout=GRACE + 20)
    assert process.popen.returncode == 0, err
    assert time.monotonic() - start < GRACE + 2
    assert "Traceback" not in err
    calls = [line for line in err.splitlines() if "zcollection_server.calls" in line]
    assert any("method=list_flights" in line and "status=ok" in line for line in calls), err
    assert sum("method=do_get" in line and "status=ok" in line for line in calls) == 3
    assert "grace period over" not in err


def test_a_stalled_stream_does_not_hold_the_server_past_its_grace_period(
    big_root: Path, processes: list[Process]
) -> None:
    process = Process(
        "--root", str(big_root), "--port", "0", "--grace-period", "1", "--read-ahead", "0"
    )
    processes.append(process)
    reader = process.client.do_get(flight.Ticket(zp.encode_command(zp.Query(collection="big"))))
    reader.read_chunk()  # then stop reading: the server's writes block on flow control
    time.sleep(0.5)
    code, seconds, err = process.terminate(signal.SIGTERM)
    assert code == 0, err
    assert "grace period over" in err  # the stream was still running
    assert seconds < 1 + 5, seconds
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "config"),
    [
        ([], None),
        (["--root", "{root}", "--port", "70000"], None),
        (["--root", "{root}", "--max-batch-bytes", "10"], None),
        (["--root", "{root}", "--read-ahead", "-1"], None),
        (["--config", "{config}"], "[server]\nroot = '{root}'\nbogus = 1\n"),
        (["--config", "{config}"], "[server\nroot = "),
        (["--config", "{config}"], "[collections]\nalti = 3\n"),
        (["--config", "{config}"], "[collections]\n'../x' = '{root}'\n"),
        (["--config", "{tmp}/missing.toml"], None),
    ],
    ids=[
        "nothing to serve",
        "port",
        "max batch bytes",
        "read ahead",
        "unknown key",
        "bad TOML",
        "collection URL not text",
        "bad collection name",
        "missing config",
    ],
)
def test_a_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], config: str | None
) -> None:
    values = {"root": str(tmp_path), "config": str(tmp_path / "server.toml"), "tmp": str(tmp_path)}
    if config is not None:
        (tmp_path / "server.toml").write_text(config.format(**values))
    assert cli.main([a.format(**values) for a in args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zcollection-server: error: ")
    assert "Traceback" not in err
    assert out == ""


def test_the_command_exits_2_on_a_bad_configuration(tmp_path: Path) -> None:
    (tmp_path / "server.toml").write_text("[collections]\n'/etc' = 'memory://x'\n")
    result = subprocess.run(
        [sys.executable, "-m", "zcollection_server", "--config", str(tmp_path / "server.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("zcollection-server: error: ")
    assert result.stdout == ""
