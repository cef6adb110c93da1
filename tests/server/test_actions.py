"""The zcollection.v1.* actions, bodies as protobuf and as JSON (results in the same encoding)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp

ENCODINGS = pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])

#: Actions served by this test suite (the view actions are out of its scope).
COLLECTION_ACTIONS = {
    "list_collections",
    "describe",
    "create_collection",
    "delete_collection",
    "list_partitions",
    "drop_partitions",
    "repair_catalog",
    "server_info",
    "health",
}


def _error(h: Any, call: Any) -> tuple[Exception, dict[str, Any]]:
    with pytest.raises(h.SERVER_ERRORS) as caught:
        call()
    return caught.value, h.error_info(caught.value)


def test_list_actions_describes_every_action(read_server: Any) -> None:
    actions = list(read_server.client.list_actions())
    names = [a.type for a in actions]
    assert sorted(names) == sorted(zp.ACTIONS)
    assert len(names) == len(set(names))
    assert {zp.action_name(v) for v in COLLECTION_ACTIONS} <= set(names)
    for action in actions:
        assert action.type.startswith("zcollection.v1.")
        text = action.description
        assert text and text.strip() == text and "\n" not in text, action
        assert len(text) < 100


@ENCODINGS
def test_list_collections(h: Any, read_server: Any, as_json: bool) -> None:
    result = h.action(read_server.client, "list_collections", as_json=as_json)
    assert list(result.collections) == ["alti", "mem", "seq/orbits"]


def test_empty_body_is_the_default_message(read_server: Any) -> None:
    results = list(
        read_server.client.do_action(flight.Action(zp.action_name("list_collections"), b""))
    )
    result = zp.ListCollectionsResult.FromString(results[0].body.to_pybytes())
    assert list(result.collections) == ["alti", "mem", "seq/orbits"]


@ENCODINGS
@pytest.mark.parametrize("name", ["alti", "seq/orbits", "mem"])
def test_describe(h: Any, read_server: Any, as_json: bool, name: str) -> None:
    result = h.action(read_server.client, "describe", zp.Describe(collection=name), as_json=as_json)
    info = result.info
    if name == "mem":
        collection = zc.open_collection(read_server.server.settings.collections["mem"])
    else:
        collection = zc.open_collection(str(read_server.root / name))
    assert info.collection == name
    assert json.loads(info.schema) == collection.schema.to_json()
    assert zc.DatasetSchema.from_json(json.loads(info.schema)) == collection.schema
    assert info.axis == collection.axis
    assert json.loads(info.partitioning) == collection.partitioning.to_json()
    assert info.catalog_enabled is (name != "mem")
    assert info.partition_count == len(list(collection.partitions()))
    assert info.format_version == 1
    assert info.read_only is False  # the server writes what it serves


@ENCODINGS
def test_create_and_delete_a_collection(
    h: Any, start_server: Any, tmp_path: Path, as_json: bool
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    running = start_server(root)
    client = running.client
    message = zp.CreateCollection(
        collection="team/new",
        schema=json.dumps(h.alti_schema().to_json()),
        axis="time",
        partitioning=json.dumps(h.monthly().to_json()),
        catalog_enabled=True,
    )
    info = h.action(client, "create_collection", message, as_json=as_json).info
    assert info.collection == "team/new"
    assert info.catalog_enabled and info.axis == "time" and info.partition_count == 0
    assert info.read_only is False
    collection = zc.open_collection(str(root / "team" / "new"))
    assert collection.schema == h.alti_schema().with_partition_axis("time")
    assert collection.catalog_enabled
    assert list(h.action(client, "list_collections", as_json=as_json).collections) == ["team/new"]

    # it already exists
    _, extra = _error(h, lambda: h.action(client, "create_collection", message, as_json=as_json))
    assert (extra["code"], extra["kind"]) == ("COLLECTION_EXISTS", "already_exists")
    # ... unless overwritten
    message.overwrite = True
    message.catalog_enabled = False
    info = h.action(client, "create_collection", message, as_json=as_json).info
    assert not info.catalog_enabled

    # a collection inside another one is refused
    inner = zp.CreateCollection()
    inner.CopyFrom(message)
    inner.collection = "team/new/inner"
    inner.overwrite = False
    _, extra = _error(h, lambda: h.action(client, "create_collection", inner, as_json=as_json))
    assert extra["code"] == "INVALID_NAME"
    assert not (root / "team" / "new" / "inner").exists()

    # delete
    result = h.action(
        client, "delete_collection", zp.DeleteCollection(collection="team/new"), as_json=as_json
    )
    assert result.deleted and result.collection == "team/new"
    assert not (root / "team" / "new").exists()
    assert list(h.action(client, "list_collections", as_json=as_json).collections) == []
    _, extra = _error(
        h,
        lambda: h.action(
            client, "delete_collection", zp.DeleteCollection(collection="team/new"), as_json=as_json
        ),
    )
    assert (extra["code"], extra["kind"]) == ("COLLECTION_NOT_FOUND", "not_found")


def test_a_collection_around_another_one_is_refused(
    h: Any, start_server: Any, write_root: Path
) -> None:
    """Creating ``a`` over an existing ``a/b`` would let deleting ``a`` delete ``a/b``."""
    h.make_seq(str(write_root / "outer" / "inner"))
    running = start_server(write_root)
    before = h.snapshot(write_root)
    for overwrite in (False, True):
        message = zp.CreateCollection(
            collection="outer",
            schema=json.dumps(h.alti_schema().to_json()),
            axis="time",
            partitioning=json.dumps(h.monthly().to_json()),
            overwrite=overwrite,
        )
        _, extra = _error(
            h, lambda m=message: h.action(running.client, "create_collection", m, as_json=False)
        )
        assert extra["code"] == "INVALID_NAME"
        assert h.snapshot(write_root) == before


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"schema": "{not json", "axis": "time"}, "SCHEMA_ERROR"),
        ({"axis": ""}, "SCHEMA_ERROR"),
        ({"axis": "x_ac"}, "SCHEMA_ERROR"),
        ({"partitioning": '{"name": "nope"}', "axis": "time"}, None),
        ({"collection": "../escape", "axis": "time"}, "INVALID_NAME"),
    ],
    ids=["bad schema JSON", "no axis", "axis not partitioned", "unknown partitioning", "bad name"],
)
def test_create_collection_refusals(
    h: Any, start_server: Any, tmp_path: Path, fields: dict[str, Any], code: str | None
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    running = start_server(root)
    message = zp.CreateCollection(
        collection="new",
        schema=json.dumps(h.alti_schema().to_json()),
        partitioning=json.dumps(h.monthly().to_json()),
    )
    for key, value in fields.items():
        setattr(message, key, value)
    error, extra = _error(
        h, lambda: h.action(running.client, "create_collection", message, as_json=True)
    )
    h.error_info(error)
    assert extra["kind"] == "invalid_argument"
    if code is not None:
        assert extra["code"] == code
    assert list(tmp_path.rglob("*")) == [root]


@ENCODINGS
def test_list_partitions_with_filters(h: Any, read_server: Any, as_json: bool) -> None:
    client = read_server.client
    everything = h.action(
        client, "list_partitions", zp.ListPartitions(collection="alti"), as_json=as_json
    )
    assert list(everything.partitions) == [f"year=2024/month=0{m}" for m in (1, 2, 3)]
    some = h.action(
        client,
        "list_partitions",
        zp.ListPartitions(collection="alti", filters="month != 2"),
        as_json=as_json,
    )
    assert list(some.partitions) == ["year=2024/month=01", "year=2024/month=03"]
    seq = h.action(
        client,
        "list_partitions",
        zp.ListPartitions(collection="seq/orbits", filters="num >= -1"),
        as_json=as_json,
    )
    assert list(seq.partitions) == ["num=1", "num=2", "num=10"]
    _, extra = _error(
        h,
        lambda: h.action(
            client,
            "list_partitions",
            zp.ListPartitions(collection="alti", filters="cycle == 1"),
            as_json=as_json,
        ),
    )
    assert extra["code"] == "EXPRESSION_ERROR"


@ENCODINGS
def test_drop_partitions(h: Any, start_server: Any, write_root: Path, as_json: bool) -> None:
    running = start_server(write_root)
    client = running.client
    before = h.snapshot(write_root)
    # Without filters, all=true is required.
    for message in (
        zp.DropPartitions(collection="alti"),
        zp.DropPartitions(collection="alti", filters=""),
        zp.DropPartitions(collection="alti", filters="month == 1", all=True),
    ):
        error, extra = _error(
            h, lambda m=message: h.action(client, "drop_partitions", m, as_json=as_json)
        )
        assert (extra["code"], extra["kind"]) == ("INVALID_REQUEST", "invalid_argument")
        assert "all" in str(error)
        assert h.snapshot(write_root) == before

    result = h.action(
        client,
        "drop_partitions",
        zp.DropPartitions(collection="alti", filters="month == 1"),
        as_json=as_json,
    )
    assert list(result.partitions) == ["year=2024/month=01"]
    assert list(zc.open_collection(str(write_root / "alti")).partitions()) == ["year=2024/month=02"]
    h.make_alti(str(write_root / "other"), months=3)
    result = h.action(
        client, "drop_partitions", zp.DropPartitions(collection="other", all=True), as_json=as_json
    )
    assert list(result.partitions) == [f"year=2024/month=0{m}" for m in (1, 2, 3)]
    assert list(zc.open_collection(str(write_root / "other")).partitions()) == []
    assert list(zc.open_collection(str(write_root / "alti")).partitions()) == ["year=2024/month=02"]


@ENCODINGS
def test_repair_catalog(h: Any, start_server: Any, tmp_path: Path, as_json: bool) -> None:
    root = tmp_path / "root"
    h.make_seq(str(root / "seq"), catalog=True)
    h.make_alti(str(root / "alti"), months=1)
    running = start_server(root)
    client = running.client
    shutil.rmtree(root / "seq" / "num=2")  # the catalog still lists it
    listed = h.action(client, "describe", zp.Describe(collection="seq"), as_json=as_json)
    assert listed.info.partition_count == 3
    result = h.action(client, "repair_catalog", zp.RepairCatalog(collection="seq"), as_json=as_json)
    assert list(result.partitions) == ["num=1", "num=10"]
    listed = h.action(client, "describe", zp.Describe(collection="seq"), as_json=as_json)
    assert listed.info.partition_count == 2
    _, extra = _error(
        h,
        lambda: h.action(
            client, "repair_catalog", zp.RepairCatalog(collection="alti"), as_json=as_json
        ),
    )
    assert (extra["code"], extra["kind"]) == ("CATALOG_DISABLED", "invalid_argument")


@ENCODINGS
def test_server_info_and_health(h: Any, read_server: Any, as_json: bool) -> None:
    info = h.action(read_server.client, "server_info", as_json=as_json)
    assert info.protocol == zp.PROTOCOL == "zcollection.flight.v1"
    assert info.version
    assert info.format_version == 1
    assert info.max_batch_bytes == 4096
    assert {"replace", "concat", "time_series", "upsert", "upsert_within"} <= set(
        info.merge_strategies
    )
    health = h.action(read_server.client, "health", as_json=as_json)
    assert health.status == zp.HealthResult.SERVING


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("zcollection.v1.nope", b"", "INVALID_REQUEST"),
        ("describe", b"", "INVALID_REQUEST"),
        ("zcollection.v2.describe", b"", "INVALID_REQUEST"),
        ("zcollection.v1.describe", b"\xff\xff\xff", "INVALID_COMMAND"),
        ("zcollection.v1.describe", b'{"collection": "alti", "extra": 1}', "INVALID_COMMAND"),
        ("zcollection.v1.describe", b'{"collection": ', "INVALID_COMMAND"),
        ("zcollection.v1.describe", b"", "INVALID_NAME"),
        ("zcollection.v1.describe", b'{"collection": "nope"}', "COLLECTION_NOT_FOUND"),
        ("zcollection.v1.list_partitions", b'{"collection": "/etc"}', "INVALID_NAME"),
    ],
    ids=[
        "unknown",
        "unversioned",
        "other version",
        "garbage body",
        "unknown field",
        "truncated json",
        "no collection",
        "unknown collection",
        "absolute name",
    ],
)
def test_bad_actions(h: Any, read_server: Any, name: str, body: bytes, code: str) -> None:
    client = read_server.client
    with pytest.raises(h.SERVER_ERRORS) as caught:
        list(client.do_action(flight.Action(name, body)))
    info = h.error_info(caught.value)
    assert info["code"] == code, str(caught.value)
    assert info["kind"] == ("not_found" if code == "COLLECTION_NOT_FOUND" else "invalid_argument")
    # the server keeps serving
    assert h.action(client, "health", as_json=True).status == zp.HealthResult.SERVING
