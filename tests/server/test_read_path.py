"""The per-call work of reads: partition tickets checked against their own partition only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp

JANUARY = "year=2024/month=01"
FEBRUARY = "year=2024/month=02"


def _view_variable() -> str:
    schema = (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_variable("extra", dtype="float32", dimensions=("time",))
        .build()
    )
    return json.dumps(schema.all_variables()["/extra"].to_json())


def _ticket(partition: str, collection: str = "alti") -> flight.Ticket:
    return flight.Ticket(
        zp.encode_command(zp.PartitionTicket(collection=collection, partition=partition))
    )


def _not_found(h: Any, call: Any) -> None:
    with pytest.raises(h.SERVER_ERRORS) as caught:
        call()
    assert h.error_info(caught.value)["code"] == "COLLECTION_NOT_FOUND"


@pytest.mark.parametrize("catalog", [False, True])
def test_a_partition_ticket_needs_a_complete_partition(
    h: Any, start_server: Any, tmp_path: Path, catalog: bool
) -> None:
    """A partition exists when its group carries the partition key (what a listing checks),
    with or without a catalog: a folder left by an unfinished write is not one."""
    root = tmp_path / "root"
    h.make_alti(str(root / "alti"), months=2, catalog=catalog)
    unfinished = root / "alti" / "year=2024" / "month=05"
    unfinished.mkdir(parents=True)
    (unfinished / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    running = start_server(root)
    client = running.client
    listed = h.action(
        client, "list_partitions", zp.ListPartitions(collection="alti"), as_json=False
    ).partitions
    assert list(listed) == [JANUARY, FEBRUARY]
    for partition in listed:
        assert h.read(client, _ticket(partition)).table.num_rows > 0
        assert client.get_schema(flight.FlightDescriptor.for_path("alti", partition)).schema
    for partition in ["year=2024/month=05", "year=2031/month=01"]:
        _not_found(h, lambda p=partition: h.read(client, _ticket(p)))
        _not_found(
            h, lambda p=partition: client.get_schema(flight.FlightDescriptor.for_path("alti", p))
        )
        _not_found(
            h,
            lambda p=partition: client.get_flight_info(flight.FlightDescriptor.for_path("alti", p)),
        )


def test_a_partition_ticket_of_a_view_checks_the_base_partition(
    h: Any, start_server: Any, write_root: Path
) -> None:
    running = start_server(write_root)
    client = running.client
    h.action(
        client,
        "create_view",
        zp.CreateView(collection="alti", view="extra", variables=[_view_variable()]),
        as_json=False,
    )
    ticket = zp.PartitionTicket(collection="alti", partition=JANUARY, view="extra")
    assert h.read(client, zp.encode_command(ticket)).table.num_rows > 0
    ticket.partition = "year=2031/month=01"
    _not_found(h, lambda: h.read(client, zp.encode_command(ticket)))
