"""Fixtures of the reliability tests: real servers (in this process or as ``python -m
zcollection_server`` subprocesses on 127.0.0.1 port 0), small collections, checksums of every
stored file, and the checks every error must pass.

Test files do not import each other (``--import-mode=importlib``): shared helpers are offered
by the ``rel`` fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp

#: Rows per day of the altimetry-like collections.
PER_DAY = 4
X_AC = 3

#: What a pyarrow client raises for the server's errors: Flight errors (with extra_info) and
#: the plain statuses NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED (code in the message).
SERVER_ERRORS = (flight.FlightError, pa.ArrowKeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError)
_STATUS_KINDS: dict[type[Exception], str] = {
    pa.ArrowKeyError: "not_found",
    pa.ArrowInvalid: "invalid_argument",
    pa.ArrowNotImplementedError: "unimplemented",
}
_CODED = re.compile(r"^\[([A-Z_]+)\] .*? \(request ([0-9a-f]{16})\)", re.DOTALL)
LISTENING = re.compile(r"^zcollection-server listening on grpc://127\.0\.0\.1:(\d+)$")


# -- data --------------------------------------------------------------------------------------
def alti_schema() -> zc.DatasetSchema:
    """A datetime axis, a 2-D float, an immutable variable and a nested group."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=X_AC, chunks=X_AC)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh", dtype="float32", dimensions=("time", "x_ac"), fill_value=numpy.float32("nan")
        )
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1)
        .with_group("/data_01")
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .build()
    )


def alti_dataset(start: str, days: int, *, seed: int = 0, offset: float = 0.0) -> zc.Dataset:
    """``PER_DAY`` rows a day from ``start`` for ``days`` days (``ssh`` around ``offset``)."""
    schema = alti_schema()
    known = schema.all_variables()
    n = days * PER_DAY
    step = numpy.timedelta64(86_400 * 10**9 // PER_DAY, "ns")
    time_ = numpy.datetime64(start, "ns") + numpy.arange(n) * step
    rng = numpy.random.default_rng(seed)
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(known["/time"], time_),
            "ssh": zc.Variable(
                known["/ssh"], (rng.normal(size=(n, X_AC)) + offset).astype("float32")
            ),
            "x_ac": zc.Variable(known["/x_ac"], numpy.arange(X_AC, dtype="int16")),
            "data_01/flag": zc.Variable(
                known["/data_01/flag"], (numpy.arange(n) % 251).astype("u1")
            ),
        },
    )


def make_alti(
    url: str, *, months: int = 2, catalog: bool = True, offset: float = 0.0
) -> zc.Collection:
    """A monthly collection holding ``months`` months from January 2024."""
    collection = zc.create_collection(
        url,
        schema=alti_schema(),
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="M"),
        catalog_enabled=catalog,
    )
    days = {1: 31, 2: 60, 3: 91}[months]
    collection.insert(alti_dataset("2024-01-01", days, offset=offset))
    return collection


def seq_schema(width: int = 4) -> zc.DatasetSchema:
    """Rows keyed by ``obs`` (a unique row id, the axis variable merges compare), partitioned
    by ``num``; ``check`` and ``blob`` derive from ``obs``, so a torn row shows."""
    return (
        zc.Schema()
        .with_dimension("obs", chunks=1024)
        .with_dimension("x", size=width, chunks=width)
        .with_variable("obs", dtype="int64", dimensions=("obs",), fill_value=-1)
        .with_variable("num", dtype="int64", dimensions=("obs",))
        .with_variable("check", dtype="float64", dimensions=("obs",), fill_value=-1.0)
        .with_variable("blob", dtype="float32", dimensions=("obs", "x"), fill_value=-1.0)
        .build()
    )


def make_seq(url: str, *, width: int = 4, catalog: bool = True) -> zc.Collection:
    return zc.create_collection(
        url,
        schema=seq_schema(width),
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
        catalog_enabled=catalog,
    )


def check_of(ident: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
    """The ``check`` value of each row identifier (a reader recomputes it)."""
    return (ident.astype("float64") * 0.5) + 1.25


def blob_of(ident: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
    return (ident % 100_003).astype("float32")


def seq_rows(
    nums: numpy.ndarray[Any, Any], idents: numpy.ndarray[Any, Any], width: int = 4
) -> zc.Dataset:
    """Rows whose every value derives from (``num``, ``obs``)."""
    schema = seq_schema(width)
    known = schema.all_variables()
    nums = numpy.asarray(nums, dtype="int64")
    idents = numpy.asarray(idents, dtype="int64")
    blob = numpy.repeat(blob_of(idents)[:, None], width, axis=1)
    return zc.Dataset(
        schema,
        {
            "obs": zc.Variable(known["/obs"], idents),
            "num": zc.Variable(known["/num"], nums),
            "check": zc.Variable(known["/check"], check_of(idents)),
            "blob": zc.Variable(known["/blob"], blob),
        },
    )


def check_seq_rows(columns: dict[str, Any]) -> None:
    """Every row read is whole, as some writer wrote it: no fill value, no mix of versions."""
    ident = numpy.asarray(columns["obs"])
    assert (ident >= 0).all(), "fill values in obs: a torn partition was read"
    assert numpy.unique(ident).size == ident.size, "a row was read twice"
    if "check" in columns:
        check = numpy.asarray(columns["check"])
        assert numpy.array_equal(check, check_of(ident)), "check does not match obs"
    if "blob" in columns:
        blob = numpy.asarray(columns["blob"])
        assert (blob == blob_of(ident)[:, None]).all(), "blob does not match obs"
    if "num" in columns:
        assert (numpy.asarray(columns["num"]) >= 0).all()


# -- checks ------------------------------------------------------------------------------------
def check_same(expected: zc.Dataset | None, actual: zc.Dataset | None) -> None:
    """Same variables, dtypes, shapes and bytes (NaNs included)."""
    assert expected is not None and actual is not None
    want, got = expected.all_variables(), actual.all_variables()
    assert sorted(got) == sorted(want)
    for key, variable in want.items():
        a, b = numpy.asarray(variable.to_numpy()), numpy.asarray(got[key].to_numpy())
        assert (a.dtype.str, a.shape) == (b.dtype.str, b.shape), key
        assert numpy.ascontiguousarray(a).tobytes() == numpy.ascontiguousarray(b).tobytes(), key


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``; directories and symbolic
    links are listed too (links are not followed)."""
    result: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            path = Path(dirpath, name)
            key = str(path.relative_to(folder))
            result[key] = "link -> " + os.readlink(path) if path.is_symlink() else "dir"
        for name in filenames:
            path = Path(dirpath, name)
            key = str(path.relative_to(folder))
            if path.is_symlink():
                result[key] = "link -> " + os.readlink(path)
            else:
                result[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def assert_no_leak(text: str) -> None:
    """No traceback and no file of the server's (or engine's) code in a client message."""
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
    assert ".py" not in text, text
    for package in (zc, zp):
        folder = os.path.dirname(os.path.dirname(package.__file__ or ""))
        assert folder not in text, text


def error_info(exc: BaseException) -> dict[str, str]:
    """Return ``{code, kind, request_id}`` of a server error after checking its shape: a
    ``[CODE] message (request <id>)`` text, extra_info JSON on Flight errors, no leak."""
    assert isinstance(exc, SERVER_ERRORS), f"{type(exc).__name__}: {exc}"
    text = str(exc).strip("'\"")
    match = _CODED.match(text)
    assert match is not None, f"{type(exc).__name__} without a [CODE]: {text}"
    if isinstance(exc, flight.FlightError) and exc.extra_info:
        info = json.loads(exc.extra_info)
        assert set(info) == {"code", "kind", "request_id"}, info
        assert info["code"] == match.group(1), (info, text)
    else:
        kind = next((k for c, k in _STATUS_KINDS.items() if isinstance(exc, c)), "unknown")
        info = {"code": match.group(1), "kind": kind, "request_id": match.group(2)}
    assert_no_leak(text)
    return dict(info)


def attempt(call: Callable[[], Any], *, allow_ok: bool = True) -> dict[str, str] | None:
    """Run a call made of client input: it succeeds (None) or fails with a clear error that is
    never INTERNAL (returned). Anything else fails the test."""
    try:
        call()
    except SERVER_ERRORS as exc:
        info = error_info(exc)
        assert info["code"] != "INTERNAL" and info["kind"] != "internal", str(exc)
        return info
    assert allow_ok, "the call was expected to fail"
    return None


def attempt_get_schema(call: Callable[[], Any]) -> str | None:
    """Like :func:`attempt` for get_schema, whose errors reach pyarrow clients as plain
    ArrowExceptions (any class, no extra_info) but still carry ``[CODE]`` and the request."""
    try:
        call()
    except pa.ArrowException as exc:
        text = str(exc)
        match = re.search(r"\[([A-Z_]+)\] .*\(request [0-9a-f]{16}\)", text, re.DOTALL)
        assert match is not None, text
        assert match.group(1) != "INTERNAL", text
        assert_no_leak(text)
        return match.group(1)
    return None


def read_all(client: flight.FlightClient, ticket: bytes, timeout: float = 30.0) -> pa.Table:
    options = flight.FlightCallOptions(timeout=timeout)
    return client.do_get(flight.Ticket(ticket), options).read_all()


def put(
    client: flight.FlightClient,
    descriptor: flight.FlightDescriptor,
    schema: pa.Schema,
    batches: list[pa.RecordBatch],
    timeout: float = 30.0,
) -> list[bytes]:
    """Run one do_put; return the app_metadata of its PutResults."""
    options = flight.FlightCallOptions(timeout=timeout)
    writer, reader = client.do_put(descriptor, schema, options)
    try:
        for batch in batches:
            writer.write_batch(batch)
        writer.done_writing()
        acks = []
        while True:
            buffer = reader.read()
            if buffer is None:
                break
            acks.append(buffer.to_pybytes())
    finally:
        writer.close()
    return acks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- server subprocesses -------------------------------------------------------------------
class ServerProcess:
    """``python -m zcollection_server ARGS`` with its stderr (the call log) in a file."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self._stderr = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "zcollection_server", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().decode().strip()
        match = LISTENING.match(line)
        if match is None:
            self.kill()
            raise AssertionError(f"the server did not start: {line!r}\n{self.log_text()}")
        self.port = int(match.group(1))
        self.location = f"grpc://127.0.0.1:{self.port}"
        self.metrics_url: str | None = None
        if "--metrics-port" in args:
            while self.metrics_url is None:
                line = self.popen.stdout.readline().decode().strip()
                assert line, self.log_text()
                if line.startswith("zcollection-server metrics on "):
                    self.metrics_url = line.rsplit(" ", 1)[-1]

    def connect(self) -> flight.FlightClient:
        return flight.connect(self.location)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._close()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM; return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=30)
        self._close()
        return int(self.popen.returncode)

    def _close(self) -> None:
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()

    def log_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.log.read_text(errors="replace")

    def call_lines(self, method: str | None = None) -> list[dict[str, str]]:
        """The parsed ``key=value`` call log lines (one per call) of this server's log."""
        lines = []
        for line in self.log_text().splitlines():
            if "zcollection_server.calls" not in line:
                continue
            fields = dict(re.findall(r"(\w+)=(\S+)", line.split("zcollection_server.calls", 1)[1]))
            if method is None or fields.get("method") == method:
                lines.append(fields)
        return lines

    def metrics(self) -> dict[str, float]:
        """The samples of the Prometheus metrics (``name{labels}`` -> value)."""
        assert self.metrics_url is not None, "start the server with --metrics-port 0"
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            text = answer.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.popen.pid}/task"))

    def rss(self) -> int:
        """Resident memory in bytes."""
        with open(f"/proc/{self.popen.pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory of server subprocesses; every one left running is killed at teardown."""
    started: list[ServerProcess] = []
    count = 0

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        nonlocal count
        count += 1
        process = ServerProcess(tmp_path / f"server-{count}.log", *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


class Tools:
    """Helpers shared by the test files (the ``rel`` fixture)."""

    PER_DAY = PER_DAY
    X_AC = X_AC
    SERVER_ERRORS = SERVER_ERRORS
    alti_schema = staticmethod(alti_schema)
    alti_dataset = staticmethod(alti_dataset)
    make_alti = staticmethod(make_alti)
    seq_schema = staticmethod(seq_schema)
    make_seq = staticmethod(make_seq)
    seq_rows = staticmethod(seq_rows)
    check_seq_rows = staticmethod(check_seq_rows)
    check_of = staticmethod(check_of)
    snapshot = staticmethod(snapshot)
    check_same = staticmethod(check_same)
    error_info = staticmethod(error_info)
    attempt = staticmethod(attempt)
    attempt_get_schema = staticmethod(attempt_get_schema)
    assert_no_leak = staticmethod(assert_no_leak)
    read_all = staticmethod(read_all)
    put = staticmethod(put)
    free_port = staticmethod(free_port)
    wait_for = staticmethod(wait_for)
    ServerProcess = ServerProcess


@pytest.fixture(scope="session")
def rel() -> type[Tools]:
    return Tools
