"""The contract from a gRPC stack other than Arrow's: grpcio with stubs generated here from our
own copy of the Flight protocol messages (``flight_protocol.proto``)."""

from __future__ import annotations

import importlib
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import numpy
import pyarrow as pa
import pytest
import zcollection as zc
import zcollection_proto as zp
from zcollection.demo import build
from zcollection_server import ServerSettings, ZCollectionFlightServer

PROTO = Path(__file__).with_name("flight_protocol.proto")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("stubs")
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTO.parent}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO),
        ]
    )
    assert status == 0
    sys.path.insert(0, str(out))
    try:
        yield (
            importlib.import_module("flight_protocol_pb2"),
            importlib.import_module("flight_protocol_pb2_grpc"),
        )
    finally:
        sys.path.remove(str(out))
        for name in ("flight_protocol_pb2", "flight_protocol_pb2_grpc"):
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    root = tmp_path_factory.mktemp("root")
    build(str(root / "altimetry"))
    server = ZCollectionFlightServer(ServerSettings(root=str(root), port=0))
    try:
        yield root, server.port
    finally:
        server.shutdown()


@pytest.fixture
def stub(stubs: Any, served: tuple[Path, int]) -> Iterator[Any]:
    _, grpc_module = stubs
    channel = grpc.insecure_channel(f"127.0.0.1:{served[1]}")
    try:
        yield grpc_module.FlightServiceStub(channel)
    finally:
        channel.close()


def _ipc_stream(messages: Any) -> pa.Table:
    """Rebuild an Arrow IPC stream from FlightData messages and read it."""
    out = bytearray()
    for data in messages:
        header = data.data_header
        padding = (-len(header)) % 8
        out += struct.pack("<Ii", 0xFFFFFFFF, len(header) + padding)
        out += header + b"\0" * padding + data.data_body
    out += struct.pack("<Ii", 0xFFFFFFFF, 0)
    return pa.ipc.open_stream(pa.py_buffer(bytes(out))).read_all()


def test_list_flights_get_flight_info_and_do_get(stubs: Any, stub: Any, served: Any) -> None:
    pb, _ = stubs
    infos = list(stub.ListFlights(pb.Criteria()))
    assert [list(i.flight_descriptor.path) for i in infos] == [["altimetry"]]
    schema = pa.ipc.read_schema(pa.py_buffer(infos[0].schema))
    assert schema.names == ["time", "ssh"]

    command = json.dumps(
        {"query": {"collection": "altimetry", "filters": "month >= 2", "variables": ["ssh"]}}
    ).encode()
    info = stub.GetFlightInfo(pb.FlightDescriptor(type=pb.FlightDescriptor.CMD, cmd=command))
    assert info.ordered
    partitions = [e for e in info.endpoint if e.app_metadata]
    assert len(partitions) == 2
    tables = [_ipc_stream(stub.DoGet(e.ticket)) for e in partitions]
    got = numpy.concatenate([zp.table_to_dataset(t)["ssh"].to_numpy() for t in tables], axis=0)
    local = zc.open_collection(str(served[0] / "altimetry")).query(
        filters="month >= 2", variables=["ssh"]
    )
    assert local is not None
    expected = local["ssh"].to_numpy()
    assert got.tobytes() == expected.tobytes()
    assert sum(t.num_rows for t in tables) == info.total_records


@pytest.mark.parametrize(
    ("descriptor", "status"),
    [
        ({"type": 1, "path": ["nope"]}, grpc.StatusCode.NOT_FOUND),
        ({"type": 1, "path": ["../etc"]}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"type": 2, "cmd": b"\xff\x00garbage"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"type": 2, "cmd": b'{"query": {"collection": 5}}'}, grpc.StatusCode.INVALID_ARGUMENT),
        (
            {"type": 2, "cmd": b'{"query": {"collection": "altimetry", "filters": "x(("}}'},
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_requests_get_clear_grpc_statuses(
    stubs: Any, stub: Any, descriptor: dict[str, Any], status: grpc.StatusCode
) -> None:
    pb, _ = stubs
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetFlightInfo(pb.FlightDescriptor(**descriptor))
    assert caught.value.code() == status
    details = caught.value.details() or ""
    assert details.startswith("[")
    assert "(request " in details
    assert "Traceback" not in details and ".py" not in details
    # the server keeps serving
    assert list(stub.ListFlights(pb.Criteria()))


def test_malformed_tickets_and_action_bodies(stubs: Any, stub: Any) -> None:
    pb, _ = stubs
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.DoGet(pb.Ticket(ticket=b"not a command")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.DoAction(pb.Action(type="zcollection.v1.describe", body=b"{broken")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.DoAction(pb.Action(type="zcollection.v1.describe", body=b'{"collection": "x"}')))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    actions = {a.type for a in stub.ListActions(pb.Empty())}
    assert "zcollection.v1.describe" in actions
