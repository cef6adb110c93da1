"""Views over the wire: the client's RemoteView against the engine's View on the same store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_client as zcc
import zcollection_proto as zp
from zcollection.view import View
from zcollection_server import ServerSettings, ZCollectionFlightServer


def _dataset(start: str, days: int) -> zc.Dataset:
    schema = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("x", size=3)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("v", dtype="float64", dimensions=("time", "x"))
        .build()
    )
    n = days * 4
    time = numpy.datetime64(start, "ns") + numpy.arange(n) * numpy.timedelta64(6, "h")
    values = numpy.arange(n * 3, dtype="float64").reshape(n, 3)
    return zc.Dataset(
        schema,
        [zc.Variable(schema.variables["time"], time), zc.Variable(schema.variables["v"], values)],
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, zcc.Connection, int]]:
    ds = _dataset("2024-01-20", 20)
    zc.create_collection(
        str(tmp_path / "alti"),
        schema=ds.schema,
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="M"),
    ).insert(ds)
    server = ZCollectionFlightServer(ServerSettings(root=str(tmp_path), port=0))
    connection = zcc.connect(f"grpc://127.0.0.1:{server.port}")
    try:
        yield tmp_path, connection, server.port
    finally:
        connection.close()
        server.shutdown()


VIEW_VAR = zc.VariableSchema(
    "doubled", dtype="float64", dimensions=("time", "x"), fill_value=numpy.float64("nan")
)


def test_create_list_describe_and_errors(served: Any) -> None:
    _, connection, _ = served
    view = connection.create_view("alti", "extra", variables=[VIEW_VAR])
    assert isinstance(view, zcc.RemoteView)
    assert view.variables == ("doubled",)
    assert connection.list_views("alti") == ["extra"]
    assert connection.open_view("alti", "extra").view_schema == view.view_schema
    with pytest.raises(zc.CollectionExistsError):
        connection.create_view("alti", "extra", variables=[VIEW_VAR])
    with pytest.raises(zc.CollectionNotFoundError):
        connection.open_view("alti", "missing")
    with pytest.raises(zc.SchemaError):
        connection.create_view("alti", "../escape", variables=[VIEW_VAR])


def test_update_then_query_matches_the_engine_view(served: Any) -> None:
    root, connection, _ = served
    view = connection.create_view("alti", "extra", variables=[VIEW_VAR])
    empty = view.query(variables=["doubled"])
    assert empty is not None and numpy.isnan(empty["doubled"].to_numpy()).all()
    written = view.update(lambda ds: {"doubled": ds["v"].to_numpy() * 2}, filters="month == 1")
    assert written == ["year=2024/month=01"]
    remote = view.query()
    local_base = zc.open_collection(str(root / "alti"))
    local = View.open(zc.open_store(str(root / "alti" / "_views" / "extra")), base=local_base)
    expected = local.query()
    assert remote is not None and expected is not None
    for name in ("time", "v", "doubled"):
        assert remote[name].to_numpy().tobytes() == expected[name].to_numpy().tobytes()
    january = remote["time"].to_numpy() < numpy.datetime64("2024-02-01")
    numpy.testing.assert_array_equal(
        remote["doubled"].to_numpy()[january], remote["v"].to_numpy()[january] * 2
    )
    assert numpy.isnan(remote["doubled"].to_numpy()[~january]).all()


def test_view_update_refuses_unknown_variables_and_read_only(served: Any) -> None:
    _, connection, _ = served
    connection.create_view("alti", "extra", variables=[VIEW_VAR])
    view = connection.open_view("alti", "extra")
    with pytest.raises(zc.SchemaError):
        view.update(lambda ds: {"nope": ds["v"].to_numpy()})
    with pytest.raises(zc.ReadOnlyError):
        connection.open_view("alti", "extra", read_only=True).update(lambda ds: {})


def test_a_plain_flight_client_reads_a_view(served: Any) -> None:
    _, connection, port = served
    view = connection.create_view("alti", "extra", variables=[VIEW_VAR])
    view.update(lambda ds: {"doubled": ds["v"].to_numpy() * 2})
    client = flight.connect(f"grpc://127.0.0.1:{port}")
    command = {"query": {"collection": "alti", "view": "extra", "variables": ["doubled"]}}
    info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(command)))
    tables = [client.do_get(e.ticket).read_all() for e in info.endpoints]
    got = numpy.concatenate([zp.table_to_dataset(t)["doubled"].to_numpy() for t in tables])
    expected = view.base.query(variables=["v"])
    assert expected is not None
    numpy.testing.assert_array_equal(got, expected["v"].to_numpy() * 2)
