"""Fixtures of the Flight server tests: real in-process servers on 127.0.0.1 port 0, a plain
``pyarrow.flight`` client, and real collections on local disk and in memory.

Test files do not import each other (``--import-mode=importlib``): shared helpers are offered
by the ``h`` fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from google.protobuf.message import Message
from zcollection_server import ServerSettings, ZCollectionFlightServer

#: Rows per day of the test collections.
PER_DAY = 4
X_AC = 3


# -- data --------------------------------------------------------------------------------------
def alti_schema() -> zc.DatasetSchema:
    """Altimetry-like schema: a datetime axis, a 2-D float, an immutable and a nested group."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_dimension("x_ac", size=X_AC, chunks=X_AC)
        .with_attribute("title", "server tests")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            attrs={"units": "m"},
        )
        .with_variable("x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1)
        .with_group("/data_01", attrs={"band": "Ku"})
        .with_variable("flag", dtype="uint8", dimensions=("time",), group="/data_01")
        .build()
    )


def alti_dataset(start: str, days: int, *, seed: int = 0, ssh_offset: float = 0.0) -> zc.Dataset:
    """``PER_DAY`` rows a day from ``start`` for ``days`` days (NaNs included)."""
    schema = alti_schema()
    known = schema.all_variables()
    n = days * PER_DAY
    step = numpy.timedelta64(86_400 * 10**9 // PER_DAY, "ns")
    time = numpy.datetime64(start, "ns") + numpy.arange(n) * step
    rng = numpy.random.default_rng(seed)
    ssh = rng.normal(size=(n, X_AC)).astype("float32") + numpy.float32(ssh_offset)
    ssh[::7, 1] = numpy.float32("nan")
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(known["/time"], time),
            "ssh": zc.Variable(known["/ssh"], ssh),
            "x_ac": zc.Variable(known["/x_ac"], numpy.arange(X_AC, dtype="int16") * 10),
            "data_01/flag": zc.Variable(
                known["/data_01/flag"], (numpy.arange(n) % 251).astype("uint8")
            ),
        },
    )


def seq_schema() -> zc.DatasetSchema:
    """A collection partitioned by an integer ``num`` (to check key order: 2 before 10)."""
    return (
        zc.Schema()
        .with_dimension("obs", chunks=16)
        .with_variable("num", dtype="int64", dimensions=("obs",))
        .with_variable("value", dtype="float64", dimensions=("obs",), fill_value=-1.0)
        .build()
    )


def seq_dataset(nums: list[int], rows: int = 5) -> zc.Dataset:
    schema = seq_schema()
    known = schema.all_variables()
    num = numpy.repeat(numpy.asarray(nums, dtype="int64"), rows)
    value = numpy.arange(num.size, dtype="float64") + num * 1000.0
    return zc.Dataset(
        schema,
        {"num": zc.Variable(known["/num"], num), "value": zc.Variable(known["/value"], value)},
    )


def monthly() -> zc.partitioning.Partitioning:
    return zc.partitioning.Date("time", resolution="M")


def make_alti(url: str, *, catalog: bool = False, months: int = 3) -> zc.Collection:
    """Create a monthly collection at ``url`` holding ``months`` months from January 2024."""
    collection = zc.create_collection(
        url, schema=alti_schema(), axis="time", partitioning=monthly(), catalog_enabled=catalog
    )
    days = {1: 31, 2: 60, 3: 91, 4: 121}[months]
    collection.insert(alti_dataset("2024-01-01", days))
    return collection


def make_seq(url: str, *, catalog: bool = True) -> zc.Collection:
    collection = zc.create_collection(
        url,
        schema=seq_schema(),
        axis="obs",
        partitioning=zc.partitioning.Sequence("num", dimension="obs"),
        catalog_enabled=catalog,
    )
    collection.insert(seq_dataset([10, 2, 1]))
    return collection


# -- helpers -----------------------------------------------------------------------------------
@dataclass
class Received:
    """What one do_get returned."""

    table: pa.Table
    batches: list[pa.RecordBatch]
    metadata: list[bytes | None]


class Helpers:
    """Functions shared by the test files (through the ``h`` fixture)."""

    alti_schema = staticmethod(alti_schema)
    alti_dataset = staticmethod(alti_dataset)
    seq_schema = staticmethod(seq_schema)
    seq_dataset = staticmethod(seq_dataset)
    monthly = staticmethod(monthly)
    make_alti = staticmethod(make_alti)
    make_seq = staticmethod(make_seq)

    @staticmethod
    def read(client: flight.FlightClient, ticket: flight.Ticket | bytes) -> Received:
        """Read a whole do_get stream, keeping each batch and its app_metadata."""
        if isinstance(ticket, bytes):
            ticket = flight.Ticket(ticket)
        reader = client.do_get(ticket)
        batches, metadata = [], []
        while True:
            try:
                chunk = reader.read_chunk()
            except StopIteration:
                break
            batches.append(chunk.data)
            metadata.append(None if chunk.app_metadata is None else chunk.app_metadata.to_pybytes())
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return Received(table, batches, metadata)

    @staticmethod
    def action(
        client: flight.FlightClient, verb: str, message: Message | None = None, *, as_json: bool
    ) -> Message:
        """Run ``zcollection.v1.<verb>`` with ``message`` as protobuf or JSON; decode its result.

        The result must come back in the encoding of the body.
        """
        spec = zp.ACTIONS[zp.action_name(verb)]
        message = message if message is not None else spec.request()
        body = zp.encode_message(message, as_json=as_json)
        results = list(client.do_action(flight.Action(spec.name, body)))
        assert len(results) == 1
        raw = results[0].body.to_pybytes()
        if as_json:
            json.loads(raw)  # the result is JSON text too
            assert raw.lstrip().startswith(b"{")
        else:
            assert not raw.lstrip().startswith(b"{") or raw == b""
        return zp.decode_message(raw, spec.result)

    #: What a pyarrow client raises for the server's errors: Flight errors (with extra_info)
    #: and the plain statuses NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED (code in the text).
    SERVER_ERRORS = (
        flight.FlightError,
        pa.ArrowKeyError,
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
    )
    STATUS_KINDS: ClassVar[dict[type[Exception], str]] = {
        pa.ArrowKeyError: "not_found",
        pa.ArrowInvalid: "invalid_argument",
        pa.ArrowNotImplementedError: "unimplemented",
    }

    @staticmethod
    def error_info(exc: BaseException, *, check_leak: bool = True) -> dict[str, Any]:
        """Return ``{code, kind, request_id}`` of a server error (checking the wire shape)."""
        assert isinstance(exc, Helpers.SERVER_ERRORS), type(exc)
        text = str(exc).strip("'\"")
        if isinstance(exc, flight.FlightError):
            info = json.loads(exc.extra_info)
        else:
            match = re.match(r"^\[([A-Z_]+)\] .*? \(request ([0-9a-f]{16})\)", text, re.DOTALL)
            assert match is not None, text
            kind = next(k for c, k in Helpers.STATUS_KINDS.items() if isinstance(exc, c))
            info = {"code": match.group(1), "kind": kind, "request_id": match.group(2)}
        assert set(info) == {"code", "kind", "request_id"}, info
        assert text.startswith(f"[{info['code']}] "), text
        assert f"(request {info['request_id']})" in text, text
        if check_leak:
            Helpers.assert_no_leak(text)
        return dict(info)

    @staticmethod
    def assert_no_leak(text: str) -> None:
        """No traceback and no path of the server's (or engine's) code in a client message."""
        assert "Traceback" not in text, text
        assert ".py" not in text, text
        for package in (zc, zp):
            folder = os.path.dirname(os.path.dirname(package.__file__ or ""))
            assert folder not in text, text
        assert "zcollection_server/" not in text, text

    @staticmethod
    def snapshot(folder: Path) -> dict[str, str]:
        """``{relative path: sha256}`` of every file under ``folder`` (symlinks not followed)."""
        result = {}
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in filenames:
                path = Path(dirpath, name)
                key = str(path.relative_to(folder))
                if path.is_symlink():
                    result[key] = "symlink -> " + os.readlink(path)
                else:
                    result[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            for name in dirnames:
                path = Path(dirpath, name)
                if path.is_symlink():
                    result[str(path.relative_to(folder))] = "symlink -> " + os.readlink(path)
        return result

    @staticmethod
    def store_snapshot(url: str) -> dict[str, str]:
        """``{key: sha256}`` of every key of a store URL (local or memory)."""
        store = zc.open_store(url, read_only=True)
        return {
            key: hashlib.sha256(store.read_bytes(key) or b"").hexdigest()
            for key in store.list_prefix("")
        }

    @staticmethod
    def assert_same_bits(expected: zc.Dataset, actual: zc.Dataset) -> None:
        """Same variables, dtypes, shapes and bytes (NaNs included)."""
        want = expected.all_variables()
        got = actual.all_variables()
        assert sorted(got) == sorted(want)
        for key, variable in want.items():
            a = numpy.asarray(variable.to_numpy())
            b = numpy.asarray(got[key].to_numpy())
            assert b.dtype.str == a.dtype.str, key
            assert b.shape == a.shape, key
            assert numpy.ascontiguousarray(b).tobytes() == numpy.ascontiguousarray(a).tobytes(), key

    @staticmethod
    def query_descriptor(as_json: bool = False, **fields: Any) -> flight.FlightDescriptor:
        """A CMD descriptor holding a Query (protobuf or canonical JSON)."""
        return flight.FlightDescriptor.for_command(
            zp.encode_command(zp.Query(**fields), as_json=as_json)
        )


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers


# -- servers -----------------------------------------------------------------------------------
@dataclass
class Running:
    """A server running in-process and a plain pyarrow.flight client connected to it."""

    server: ZCollectionFlightServer
    client: flight.FlightClient
    root: Path | None

    @property
    def location(self) -> str:
        return f"grpc://127.0.0.1:{self.server.port}"

    def connect(self) -> flight.FlightClient:
        return flight.connect(self.location)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    """Factory: start a server over ``root`` and/or ``collections``; stopped at teardown."""
    running: list[Running] = []

    def start(
        root: Path | str | None = None, collections: dict[str, str] | None = None, **kwargs: Any
    ) -> Running:
        settings = ServerSettings(
            host="127.0.0.1",
            port=0,
            root=str(root) if root is not None else None,
            collections=dict(collections or {}),
            **kwargs,
        )
        server = ZCollectionFlightServer(settings)
        client = flight.connect(f"grpc://127.0.0.1:{server.port}")
        item = Running(
            server, client, Path(root) if root is not None and "://" not in str(root) else None
        )
        running.append(item)
        return item

    yield start
    for item in running:
        item.client.close()
        item.server.shutdown()


@pytest.fixture(scope="session")
def read_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root shared by read-only tests: ``alti`` (monthly, catalog) and ``seq/orbits``."""
    root = tmp_path_factory.mktemp("read-root")
    make_alti(str(root / "alti"), catalog=True)
    make_seq(str(root / "seq" / "orbits"))
    return root


@pytest.fixture(scope="session")
def read_server(read_root: Path) -> Iterator[Running]:
    """One server over ``read_root`` plus a memory collection ``mem``, shared by read tests."""
    url = f"memory://server-tests-{uuid.uuid4().hex[:8]}"
    make_alti(url, months=2)
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        root=str(read_root),
        collections={"mem": url},
        max_batch_bytes=4096,
    )
    server = ZCollectionFlightServer(settings)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    yield Running(server, client, read_root)
    client.close()
    server.shutdown()


@pytest.fixture
def write_root(tmp_path: Path) -> Path:
    """A fresh root holding ``alti`` (monthly, no catalog) for tests that write."""
    root = tmp_path / "root"
    root.mkdir()
    make_alti(str(root / "alti"), months=2)
    return root
