"""The per-call work of reads: opened collections kept by name (never stale) and partition
tickets checked against their own partition only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from zcollection._sync import run_sync
from zcollection_server.registry import Registry

JANUARY = "year=2024/month=01"
FEBRUARY = "year=2024/month=02"


def _other_schema() -> zc.DatasetSchema:
    """Another schema on the same axis and partitioning as ``alti``."""
    return (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("swh", dtype="float64", dimensions=("time",), fill_value=-1.0)
        .build()
    )


def _other_dataset(rows: int) -> zc.Dataset:
    schema = _other_schema()
    known = schema.all_variables()
    time = numpy.datetime64("2024-01-01", "ns") + numpy.arange(rows) * numpy.timedelta64(1, "h")
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(known["/time"], time),
            "swh": zc.Variable(known["/swh"], numpy.arange(rows, dtype="float64") / 4),
        },
    )


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


@pytest.mark.parametrize("how", ["actions", "store"])
def test_a_recreated_collection_is_served_with_its_new_schema(
    h: Any, start_server: Any, write_root: Path, how: str
) -> None:
    """Whether the collection is deleted and created again through the actions or behind the
    server's back, the next calls see the new schema and the new partitions."""
    running = start_server(write_root)
    client = running.client
    path = flight.FlightDescriptor.for_path("alti", JANUARY)
    assert "ssh" in client.get_schema(path).schema.names
    assert "ssh" in h.read(client, _ticket(JANUARY)).table.column_names
    assert h.read(client, _ticket(FEBRUARY)).table.num_rows > 0

    if how == "actions":
        deleted = h.action(
            client, "delete_collection", zp.DeleteCollection(collection="alti"), as_json=False
        )
        assert deleted.deleted
        h.action(
            client,
            "create_collection",
            zp.CreateCollection(
                collection="alti",
                schema=json.dumps(_other_schema().to_json()),
                axis="time",
                partitioning=json.dumps(h.monthly().to_json()),
            ),
            as_json=False,
        )
        collection = zc.open_collection(str(write_root / "alti"), mode="rw")
    else:
        shutil.rmtree(write_root / "alti")
        collection = zc.create_collection(
            str(write_root / "alti"),
            schema=_other_schema(),
            axis="time",
            partitioning=h.monthly(),
        )
    collection.insert(_other_dataset(48))  # two days of January

    assert client.get_schema(path).schema.names == ["time", "swh"]
    info = client.get_flight_info(h.query_descriptor(collection="alti"))
    assert info.schema.names == ["time", "swh"]
    assert info.total_records == 48
    table = h.read(client, _ticket(JANUARY)).table
    assert table.column_names == ["time", "swh"]
    assert table.column("swh").to_pylist() == [i / 4 for i in range(48)]
    # February went with the old collection
    _not_found(h, lambda: h.read(client, _ticket(FEBRUARY)))
    _not_found(h, lambda: client.get_schema(flight.FlightDescriptor.for_path("alti", FEBRUARY)))


def test_a_collection_deleted_behind_the_server_is_not_found(
    h: Any, start_server: Any, write_root: Path
) -> None:
    running = start_server(write_root)
    client = running.client
    assert h.read(client, _ticket(JANUARY)).table.num_rows > 0
    shutil.rmtree(write_root / "alti")
    _not_found(h, lambda: h.read(client, _ticket(JANUARY)))
    _not_found(h, lambda: client.get_schema(flight.FlightDescriptor.for_path("alti")))
    _not_found(h, lambda: client.get_flight_info(h.query_descriptor(collection="alti")))


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


def test_the_registry_opens_a_collection_again_only_when_its_config_changed(
    h: Any, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    h.make_alti(str(root / "alti"), months=1)
    registry = Registry(str(root), {})
    first = run_sync(registry.open_async("alti"))
    assert first.read_only
    assert run_sync(registry.open_async("alti")) is first  # the same config: kept
    writable = run_sync(registry.open_async("alti", writable=True))
    assert not writable.read_only and writable.partitioning is first.partitioning  # parsed once
    assert run_sync(registry.open_async("alti", writable=True)) is not writable
    zc.create_collection(
        str(root / "alti"),
        schema=h.alti_schema(),
        axis="time",
        partitioning=h.monthly(),
        catalog_enabled=True,
        overwrite=True,
    )
    third = run_sync(registry.open_async("alti"))
    assert third.catalog_enabled and not first.catalog_enabled
    assert third.partitioning is not first.partitioning
    assert run_sync(registry.open_async("alti")) is third
    shutil.rmtree(root / "alti")
    with pytest.raises(zc.CollectionNotFoundError):
        run_sync(registry.open_async("alti"))


def test_collections_of_memory_stores_are_opened_for_each_call(h: Any) -> None:
    """MemoryStore.forget makes a named memory store anew: a kept one would read the old."""
    url = "memory://server-read-path-" + str(id(h))
    h.make_alti(url, months=1)
    registry = Registry(None, {"mem": url})
    first = run_sync(registry.open_async("mem"))
    second = run_sync(registry.open_async("mem"))
    assert first is not second and second.partitioning is first.partitioning
    zc.MemoryStore.forget(url.removeprefix("memory://"))
    with pytest.raises(zc.CollectionNotFoundError):
        run_sync(registry.open_async("mem"))
