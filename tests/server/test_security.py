"""Names coming from clients: nothing outside the served root is read, written or deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import zcollection_proto as zp

BAD_NAMES = [
    "..",
    "../outside/victim",
    "alti/../../outside/victim",
    "alti/..",
    "./alti",
    "/tmp",
    "/alti",
    "alti/",
    "a//b",
    "alti\x00",
    "alti\x00/../../outside",
    "%2e%2e/outside/victim",
    "..%2Foutside%2Fvictim",
    "alti%00",
    "..\\outside\\victim",
    "alti\\..\\..",
    "C:\\outside",
    "~",
    "~/x",
    "",
    " alti",
    "-rf",
    "_views",
    "a" * 600,
    "/".join(["a"] * 9),
]

BAD_PARTITIONS = [
    "..",
    "../../outside/victim",
    "year=2024/month=01/../../../outside",
    "/etc/passwd",
    "/year=2024/month=01/..",
    "year=2024/month=01\x00",
    "year=2024%2Fmonth=01",
    "year%3D2024/month%3D01",
    "year=2024\\month=01",
    "year=2024/month=1",
    "year=2024/month=01/extra",
    "month=01/year=2024",
    "year=2024",
    "",
]


@pytest.fixture
def layout(tmp_path: Path, h: Any) -> dict[str, Path]:
    """A served root next to an outside folder holding a collection and symlinks to it."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    h.make_alti(str(root / "alti"), months=1)
    h.make_alti(str(outside / "victim"), months=1)
    (root / "evil").symlink_to(outside / "victim", target_is_directory=True)
    (root / "gateway").symlink_to(outside, target_is_directory=True)
    return {"root": root, "outside": outside, "tmp": tmp_path}


def _all_calls(h: Any, client: flight.FlightClient, name: str) -> list[Any]:
    """Every way a client can hand the server a collection name."""
    create = zp.CreateCollection(
        collection=name,
        schema=json.dumps(h.alti_schema().to_json()),
        axis="time",
        partitioning=json.dumps(h.monthly().to_json()),
        overwrite=True,
    )
    table = zp.dataset_to_table(h.alti_dataset("2024-01-05", 2), axis="time")

    def put(descriptor: flight.FlightDescriptor) -> None:
        writer, reader = client.do_put(descriptor, table.schema)
        writer.write_table(table)
        writer.done_writing()
        while reader.read() is not None:
            pass
        writer.close()

    return [
        lambda: client.get_flight_info(flight.FlightDescriptor.for_path(name)),
        lambda: client.get_flight_info(h.query_descriptor(collection=name)),
        lambda: client.get_flight_info(h.query_descriptor(as_json=True, collection=name)),
        lambda: h.read(client, zp.encode_command(zp.Query(collection=name))),
        lambda: h.read(client, zp.encode_command(zp.ImmutableTicket(collection=name))),
        lambda: h.read(
            client,
            zp.encode_command(zp.PartitionTicket(collection=name, partition="year=2024/month=01")),
        ),
        lambda: put(flight.FlightDescriptor.for_path(name)),
        lambda: put(
            flight.FlightDescriptor.for_command(
                zp.encode_command(zp.Insert(collection=name, merge="upsert"))
            )
        ),
        lambda: h.action(client, "describe", zp.Describe(collection=name), as_json=True),
        lambda: h.action(
            client, "list_partitions", zp.ListPartitions(collection=name), as_json=False
        ),
        lambda: h.action(
            client, "drop_partitions", zp.DropPartitions(collection=name, all=True), as_json=False
        ),
        lambda: h.action(client, "repair_catalog", zp.RepairCatalog(collection=name), as_json=True),
        lambda: h.action(
            client, "delete_collection", zp.DeleteCollection(collection=name), as_json=False
        ),
        lambda: h.action(client, "create_collection", create, as_json=False),
    ]


def _refused(h: Any, call: Any, kinds: set[str]) -> None:
    with pytest.raises(h.SERVER_ERRORS) as caught:
        call()
    info = h.error_info(caught.value)
    assert info["kind"] in kinds, str(caught.value)


def test_bad_collection_names_are_refused(
    h: Any, start_server: Any, layout: dict[str, Path]
) -> None:
    running = start_server(layout["root"])
    before = h.snapshot(layout["tmp"])
    for name in BAD_NAMES:
        for call in _all_calls(h, running.client, name):
            _refused(h, call, {"invalid_argument"})
        assert h.snapshot(layout["tmp"]) == before, name
    names = h.action(running.client, "list_collections", as_json=True).collections
    assert list(names) == ["alti"]


@pytest.mark.parametrize("name", ["evil", "gateway/victim"])
def test_symlinks_out_of_the_root_are_not_served(
    h: Any, start_server: Any, layout: dict[str, Path], name: str
) -> None:
    running = start_server(layout["root"])
    client = running.client
    before = h.snapshot(layout["tmp"])
    assert [i.descriptor.path for i in client.list_flights()] == [[b"alti"]]
    assert list(h.action(client, "list_collections", as_json=False).collections) == ["alti"]
    for call in _all_calls(h, client, name):
        _refused(h, call, {"not_found", "invalid_argument"})
    # a new collection under a link leading outside is refused too
    create = zp.CreateCollection(
        collection="gateway/new",
        schema=json.dumps(h.alti_schema().to_json()),
        axis="time",
        partitioning=json.dumps(h.monthly().to_json()),
    )
    _refused(h, lambda: h.action(client, "create_collection", create, as_json=True), {"not_found"})
    assert h.snapshot(layout["tmp"]) == before
    assert not (layout["outside"] / "new").exists()
    assert client.get_flight_info(flight.FlightDescriptor.for_path("alti")).total_records == 31 * 4


def test_a_symlinked_root_and_links_inside_it_still_work(
    h: Any, start_server: Any, layout: dict[str, Path]
) -> None:
    alias = layout["tmp"] / "alias"
    alias.symlink_to(layout["root"], target_is_directory=True)
    (layout["root"] / "same").symlink_to(layout["root"] / "alti", target_is_directory=True)
    running = start_server(alias)
    names = list(h.action(running.client, "list_collections", as_json=False).collections)
    assert names == ["alti", "same"]
    info = running.client.get_flight_info(flight.FlightDescriptor.for_path("same"))
    assert info.total_records == 31 * 4


def test_bad_partition_paths_are_refused(
    h: Any, start_server: Any, layout: dict[str, Path]
) -> None:
    running = start_server(layout["root"])
    client = running.client
    before = h.snapshot(layout["tmp"])
    for path in BAD_PARTITIONS:
        calls = [
            lambda p=path: client.get_flight_info(flight.FlightDescriptor.for_path("alti", p)),
            lambda p=path: client.get_schema(flight.FlightDescriptor.for_path("alti", p)),
            lambda p=path: h.read(
                client, zp.encode_command(zp.PartitionTicket(collection="alti", partition=p))
            ),
            lambda p=path: h.read(
                client,
                zp.encode_command(zp.PartitionTicket(collection="alti", partition=p), as_json=True),
            ),
        ]
        for call in calls[:1] + calls[2:]:
            _refused(h, call, {"invalid_argument"})
        with pytest.raises(Exception, match=r"\[(INVALID_NAME|INVALID_REQUEST)\]"):
            calls[1]()
    assert h.snapshot(layout["tmp"]) == before
    # the canonical path, with or without surrounding slashes, is served
    info = client.get_flight_info(flight.FlightDescriptor.for_path("alti", "/year=2024/month=01/"))
    assert [zp.decode_command(e.ticket.ticket).partition.partition for e in info.endpoints] == [
        "year=2024/month=01"
    ]


def test_filters_cannot_run_code(h: Any, start_server: Any, layout: dict[str, Path]) -> None:
    running = start_server(layout["root"])
    marker = layout["tmp"] / "pwned"
    for filters in [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        "open('/etc/passwd').read()",
        "year.__class__.__mro__",
        "[x for x in ().__class__.__base__.__subclasses__()]",
        "lambda: 1",
        "year == 2024; import os",
    ]:
        _refused(
            h,
            lambda f=filters: running.client.get_flight_info(
                h.query_descriptor(collection="alti", filters=f)
            ),
            {"invalid_argument"},
        )
    assert not marker.exists()
