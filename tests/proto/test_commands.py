"""Commands and action bodies: protobuf and JSON round trips, strict decoding, typed values."""

from __future__ import annotations

import json
from typing import Any

import numpy
import pytest
import zcollection_proto as zp
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection.errors import ZCollectionError

names = st.text(min_size=1, max_size=12)
texts = st.text(max_size=20)
units = st.sampled_from(["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"])

scalars = st.one_of(
    st.builds(zp.Scalar, bool_value=st.booleans()),
    st.builds(zp.Scalar, int_value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(zp.Scalar, uint_value=st.integers(0, 2**64 - 1)),
    st.builds(zp.Scalar, float_value=st.floats(allow_nan=False)),
    st.builds(zp.Scalar, string_value=texts),
    st.builds(zp.Scalar, bytes_value=st.binary(max_size=8)),
    st.builds(
        zp.Scalar,
        datetime_value=st.builds(zp.TimeValue, count=st.integers(-(2**63), 2**63 - 1), unit=units),
    ),
    st.builds(
        zp.Scalar,
        timedelta_value=st.builds(zp.TimeValue, count=st.integers(-(2**63), 2**63 - 1), unit=units),
    ),
)
bounds = st.one_of(
    st.builds(zp.Bound, text=texts, inclusive=st.booleans()),
    st.builds(zp.Bound, scalar=scalars, inclusive=st.booleans()),
)
selections = st.builds(
    zp.RowSelection,
    variable=st.one_of(st.just(""), names),
    lower=st.one_of(st.none(), bounds),
    upper=st.one_of(st.none(), bounds),
)
optional_text = st.one_of(st.none(), texts)


def _query(**kwargs: Any) -> zp.Query:
    return zp.Query(**{k: v for k, v in kwargs.items() if v is not None})


def _partition(**kwargs: Any) -> zp.PartitionTicket:
    return zp.PartitionTicket(**{k: v for k, v in kwargs.items() if v is not None})


bodies = st.one_of(
    st.builds(
        _query,
        collection=names,
        filters=optional_text,
        variables=st.lists(names, max_size=3),
        selection=st.one_of(st.none(), selections),
        view=optional_text,
        max_batch_bytes=st.integers(0, 2**64 - 1),
    ),
    st.builds(
        _partition,
        collection=names,
        partition=texts,
        variables=st.lists(names, max_size=3),
        selection=st.one_of(st.none(), selections),
        view=optional_text,
    ),
    st.builds(zp.ImmutableTicket, collection=names, variables=st.lists(names, max_size=3)),
    st.builds(
        zp.Insert,
        collection=names,
        merge=st.sampled_from(["", "replace", "concat", "time_series", "upsert", "upsert_within"]),
        tolerance=st.one_of(
            st.none(), st.builds(zp.Tolerance, value=st.floats(allow_nan=False), unit=units)
        ),
        overwrite=st.one_of(st.none(), st.booleans()),
    ),
)


@settings(max_examples=150, deadline=None)
@given(body=bodies, as_json=st.booleans())
def test_commands_round_trip(body: Message, as_json: bool) -> None:
    data = zp.encode_command(body, as_json=as_json)
    if as_json:
        json.loads(data.decode("utf-8"))
    command = zp.decode_command(data)
    assert zp.command_body(command) == body
    assert command == zp.make_command(body)


def test_documented_json_example() -> None:
    data = (
        b'{"query": {"collection": "altimetry", "filters": "year == 2024 and month == 1",'
        b' "variables": ["time", "ssh"]}}'
    )
    query = zp.command_body(zp.decode_command(data))
    assert isinstance(query, zp.Query)
    assert query.collection == "altimetry"
    assert query.filters == "year == 2024 and month == 1"
    assert list(query.variables) == ["time", "ssh"]
    assert not query.HasField("selection")
    assert not query.HasField("view")


def test_json_accepts_camel_case_whitespace_and_str() -> None:
    text = '\n  {"insert": {"collection": "c", "merge": "upsert_within",'
    text += ' "tolerance": {"value": 500, "unit": "ms"}, "overwrite": false}}'
    for data in (text, text.encode()):
        insert = zp.command_body(zp.decode_command(data))
        assert isinstance(insert, zp.Insert)
        assert insert.HasField("overwrite") and not insert.overwrite
        assert zp.tolerance_from_proto(insert.tolerance) == numpy.timedelta64(500, "ms")
    query = zp.command_body(
        zp.decode_command(b'{"query": {"collection": "c", "maxBatchBytes": 9}}')
    )
    assert isinstance(query, zp.Query)
    assert query.max_batch_bytes == 9


def test_overwrite_absent_means_engine_default() -> None:
    insert = zp.command_body(zp.decode_command(b'{"insert": {"collection": "c"}}'))
    assert isinstance(insert, zp.Insert)
    assert not insert.HasField("overwrite")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage!!",
        b"\xff\xff\xff\xff",
        b"\x08\x01",  # a varint where no field is one
        b"\x0a\x00",  # a query without collection
        b"\x0a\x02\x08\x01",  # a query holding an unknown field
        b"{not json",
        b"{}",
        b"null",
        b"[]",
        b'{"nope": {}}',
        b'{"query": {"colection": "x"}}',
        b'{"query": {"collection": ""}}',
        b'{"query": {"collection": "a"}, "insert": {"collection": "b"}}',
        b'{"query": {"collection": "\xff"}}',
        b'{"query": {"collection": "c", "max_batch_bytes": -1}}',
    ],
)
def test_garbage_is_a_command_error(data: bytes) -> None:
    with pytest.raises(zp.CommandError) as info:
        zp.decode_command(data)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ZCollectionError)
    assert info.value.code == "INVALID_COMMAND"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        command = zp.decode_command(data)
    except zp.CommandError:
        return
    assert zp.command_body(command).collection


@pytest.mark.parametrize(
    ("spec_name", "message"),
    [
        ("zcollection.v1.list_partitions", zp.ListPartitions(collection="c", filters="x == 1")),
        (
            "zcollection.v1.create_collection",
            zp.CreateCollection(
                collection="c",
                schema='{"name": "/"}',
                axis="time",
                partitioning='{"name": "date"}',
                catalog_enabled=True,
            ),
        ),
        ("zcollection.v1.drop_partitions", zp.DropPartitions(collection="c", all=True)),
        ("zcollection.v1.create_view", zp.CreateView(collection="c", view="v", variables=["{}"])),
        ("zcollection.v1.health", zp.Health()),
    ],
)
def test_action_bodies_round_trip(spec_name: str, message: Message) -> None:
    spec = zp.ACTIONS[spec_name]
    assert isinstance(message, spec.request)
    for as_json in (False, True):
        data = zp.encode_message(message, as_json=as_json)
        assert zp.decode_message(data, spec.request) == message
    with pytest.raises(zp.CommandError):
        zp.decode_message(b'{"unknown_field": 1}', spec.request)


def test_action_results_round_trip() -> None:
    result = zp.HealthResult(status=zp.HealthResult.SERVING, detail="ok")
    assert json.loads(zp.encode_message(result, as_json=True)) == {
        "status": "SERVING",
        "detail": "ok",
    }
    assert zp.decode_message(zp.encode_message(result), zp.HealthResult) == result
    info = zp.DescribeResult(
        info=zp.CollectionInfo(collection="c", axis="time", views=["v"], format_version=1)
    )
    assert zp.decode_message(zp.encode_message(info, as_json=True), zp.DescribeResult) == info


def test_actions_are_versioned_and_described() -> None:
    verbs = {
        "list_collections",
        "describe",
        "create_collection",
        "delete_collection",
        "list_partitions",
        "drop_partitions",
        "repair_catalog",
        "create_view",
        "describe_view",
        "list_views",
        "server_info",
        "health",
    }
    assert set(zp.ACTIONS) == {zp.action_name(v) for v in verbs}
    for name, spec in zp.ACTIONS.items():
        assert name.startswith("zcollection.v1.") and spec.name == name
        assert spec.description and "\n" not in spec.description
        assert spec.result.DESCRIPTOR.name == spec.request.DESCRIPTOR.name + "Result"
        assert spec.request.DESCRIPTOR.full_name.startswith("zcollection.flight.v1.")


def test_field_names_follow_the_engine() -> None:
    fields = {f.name for f in zp.Query.DESCRIPTOR.fields}
    assert {"collection", "filters", "variables"} <= fields
    assert {f.name for f in zp.Insert.DESCRIPTOR.fields} >= {"collection", "merge", "overwrite"}
    assert {f.name for f in zp.CreateCollection.DESCRIPTOR.fields} == {
        "collection",
        "schema",
        "axis",
        "partitioning",
        "catalog_enabled",
        "overwrite",
    }
    assert json_format.MessageToDict(
        zp.make_command(zp.Query(collection="c")), preserving_proto_field_name=True
    ) == {"query": {"collection": "c"}}


TIME_UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]


@pytest.mark.parametrize("unit", TIME_UNITS)
def test_time_scalars_round_trip_every_unit(unit: str) -> None:
    for count in (0, -5, 2**62, numpy.iinfo(numpy.int64).min):
        value = numpy.array(count, dtype="i8").view(f"M8[{unit}]")[()]
        back = zp.from_scalar(zp.decode_message(zp.encode_message(zp.to_scalar(value)), zp.Scalar))
        assert back.dtype == value.dtype
        assert back.view("i8") == value.view("i8")
        delta = numpy.array(count, dtype="i8").view(f"m8[{unit}]")[()]
        assert zp.from_scalar(zp.to_scalar(delta)).view("i8") == delta.view("i8")


@pytest.mark.parametrize(
    "value",
    [True, False, 0, -1, 2**63 - 1, 2**64 - 1, numpy.uint64(7), numpy.int8(-3), 1.5, "x", b"\x00"],
)
def test_scalars_round_trip(value: Any) -> None:
    back = zp.from_scalar(zp.to_scalar(value))
    assert back == value
    assert type(back) is type(value) or not isinstance(value, bool | str | bytes)


def test_scalar_errors() -> None:
    with pytest.raises(zp.CommandError):
        zp.to_scalar(object())
    with pytest.raises(zp.CommandError):
        zp.from_scalar(zp.Scalar())
    with pytest.raises(zp.CommandError):
        zp.from_scalar(zp.Scalar(datetime_value=zp.TimeValue(count=1, unit="lightyear")))
    with pytest.raises(zp.CommandError):
        zp.to_scalar(numpy.array(1, dtype="i8").view("M8[15s]")[()])


def test_tolerances() -> None:
    assert zp.tolerance_to_proto(None) is None
    for value in (numpy.timedelta64(500, "ms"), numpy.timedelta64(3, "D")):
        message = zp.tolerance_to_proto(value)
        assert message is not None
        back = zp.tolerance_from_proto(message)
        assert isinstance(back, numpy.timedelta64)
        assert back == value and back.dtype == value.dtype
    message = zp.tolerance_to_proto(1e-6)
    assert message is not None and zp.tolerance_from_proto(message) == 1e-6
    with pytest.raises(zp.CommandError, match="whole"):
        zp.tolerance_from_proto(zp.Tolerance(value=1.5, unit="s"))
    with pytest.raises(zp.CommandError, match="unit"):
        zp.tolerance_from_proto(zp.Tolerance(value=1, unit="parsec"))
    with pytest.raises(zp.CommandError):
        zp.tolerance_to_proto("1s")


def test_binary_commands_that_look_like_json_decode() -> None:
    """A binary Command starts with a tag byte and a length: tag 0x0a is a newline and a
    length of 123 is "{", so the body looks like JSON. It decodes as protobuf all the same,
    with bytes that are not UTF-8 (a large varint) or that are."""
    for batch_bytes in (0, 2**40):
        body = zp.Query(collection="", max_batch_bytes=batch_bytes)
        body.collection = "a" * (123 - 2 - len(body.SerializeToString()))
        data = zp.encode_command(body)
        assert data[:2] == b"\n{", data[:4]
        assert zp.command_body(zp.decode_command(data)) == body
